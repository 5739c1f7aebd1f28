#!/usr/bin/env python3
"""
tinyshakespeare.py — TinyShakespeare as llm.c shards, tokenized with GPT-2 BPE (tiktoken).

    python3 dev/data/tinyshakespeare.py input.txt               # a copy you downloaded
    python3 dev/data/tinyshakespeare.py --download              # fetches it first (needs internet)
    python3 dev/data/tinyshakespeare.py --bytes input.txt       # the project's byte-level tokenizer

Writes into -o DIR (default data/tinyshakespeare): tiny_shakespeare_val.bin, tiny_shakespeare_train.bin
and tokenizer.bin, the layout of llm.c's dev/data/tinyshakespeare.py: the text is cut at every blank
line ("\\n\\n"); each section becomes the end-of-text token (50256) followed by the section's tokens,
the "\\n\\n" kept on every section but the last; the first 32,768 tokens are the validation split,
the rest the training split. On the usual input.txt (karpathy/char-rnn, 1,115,394 characters) this
gives llm.c's files: 32,768 val and 305,260 train tokens (the script says whether they match).
Plain text shards, no loss mask: every token is a target. Nothing is downloaded unless --download
is given; tiktoken itself fetches GPT-2's BPE files the first time it is used.
"""
import argparse
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llmc_shards  # noqa: E402

URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
VAL_TOKENS = 32768
LLMC_GPT2_COUNTS = (32768, 305260)  # llm.c's val and train shards of the usual input.txt


def tokenize_sections(text, tok):
    sections = text.split("\n\n")
    tokens = []
    for i, s in enumerate(sections):
        tokens.append(tok.eot)
        tokens.extend(tok.encode(s + "\n\n" if i + 1 < len(sections) else s))
    return tokens


def read_text(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise llmc_shards.InputError(f"cannot read {path}: {e.strerror}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise llmc_shards.InputError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})")
    if not text.strip():
        raise llmc_shards.InputError(f"{path}: empty")
    return text


def download(path):
    if os.path.exists(path):
        print(f"{path} is already there: not downloading")
        return
    print(f"downloading {URL} -> {path}")
    try:
        with urllib.request.urlopen(URL, timeout=60) as r:
            data = r.read()
    except Exception as e:  # network errors of every kind: say what happened, exit 1
        raise llmc_shards.InputError(f"download failed: {e}; download {URL} yourself and pass the file")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Tokenize TinyShakespeare into llm.c shards (train/val, uint16) with GPT-2 BPE via tiktoken.",
        epilog="Output: DIR/tiny_shakespeare_{val,train}.bin and DIR/tokenizer.bin. Val = the first 32,768 tokens, "
               "as llm.c. Fine-tune on it with e.g. ./train_lori -e gpt2_124M.bin -i DIR/tiny_shakespeare_train.bin "
               "-j DIR/tiny_shakespeare_val.bin (see README).")
    p.add_argument("input", nargs="?", help="TinyShakespeare text file (karpathy/char-rnn's input.txt); "
                                            "with --download: where to save it (default DIR/tiny_shakespeare.txt)")
    p.add_argument("-o", "--output-dir", default="data/tinyshakespeare", help="output directory (default: %(default)s)")
    p.add_argument("--download", action="store_true", help=f"download the text first from {URL} (needs internet)")
    p.add_argument("--bytes", action="store_true",
                   help="the project's byte-level tokenizer (ids 0..255 = bytes, 256 = end-of-text, vocab 257) "
                        "instead of GPT-2 BPE: for the tiny models, and offline (no tiktoken needed)")
    p.add_argument("--val-tokens", type=int, default=VAL_TOKENS, help="tokens in the validation split (default: %(default)s, llm.c's)")
    args = p.parse_args(argv)
    try:
        if args.val_tokens <= 0:
            raise llmc_shards.InputError("--val-tokens must be > 0")
        os.makedirs(args.output_dir, exist_ok=True)
        path = args.input
        if args.download:
            path = path or os.path.join(args.output_dir, "tiny_shakespeare.txt")
            download(path)
        elif not path:
            raise llmc_shards.InputError("give the TinyShakespeare text file (or --download to fetch it); see --help")
        text = read_text(path)
        if "\r" in text:
            print("warning: the text has carriage returns (\\r): sections are cut at \"\\n\\n\" only", file=sys.stderr)
        tok = llmc_shards.make_tokenizer(args.bytes)
        tokens = tokenize_sections(text, tok)
        if len(tokens) <= args.val_tokens:
            raise llmc_shards.InputError(f"{path}: only {len(tokens)} tokens, not enough for a {args.val_tokens}-token "
                                         "validation split and a training split")
        val, train = tokens[:args.val_tokens], tokens[args.val_tokens:]
        out_val = os.path.join(args.output_dir, "tiny_shakespeare_val.bin")
        out_train = os.path.join(args.output_dir, "tiny_shakespeare_train.bin")
        llmc_shards.write_shard(out_val, val)
        llmc_shards.write_shard(out_train, train)
        tpath = llmc_shards.write_tokenizer(args.output_dir, tok)
    except llmc_shards.InputError as e:
        llmc_shards.fail(str(e))
    print(f"{tok.name} tokens: {len(val):,} val -> {out_val}, {len(train):,} train -> {out_train}; tokenizer -> {tpath}")
    if not args.bytes and args.val_tokens == VAL_TOKENS:
        if (len(val), len(train)) == LLMC_GPT2_COUNTS:
            print("the same token counts as llm.c's TinyShakespeare shards")
        else:
            print(f"note: llm.c's shards of the usual input.txt have {LLMC_GPT2_COUNTS[0]:,} val and {LLMC_GPT2_COUNTS[1]:,} "
                  "train tokens: this input differs from it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
