#!/usr/bin/env python3
"""
jsonl_to_shards.py — prompt/answer pairs (JSONL) as an llm.c shard with a loss mask, GPT-2 BPE.

    python3 dev/data/jsonl_to_shards.py train.jsonl data/mytask/train.bin
    python3 dev/data/jsonl_to_shards.py val.jsonl   data/mytask/val.bin
    ./train_lori -e gpt2_124M.bin -i data/mytask/train.bin -j data/mytask/val.bin ...

Input: one JSON object per line with string fields "prompt" and "answer" (other fields are
ignored and counted; blank lines are skipped). Every other problem stops the script with the file
and line: invalid JSON or UTF-8, a field missing or not a string, a duplicated key, an empty answer.

Output: OUT.bin (llm.c shard: header [0]=20240520 [1]=1 [2]=ntok, uint16 tokens) and OUT.lossmask
(header [0]=20240522 [1]=1 [2]=ntok, then one uint8 per token: 1 = a counted target), plus
tokenizer.bin beside them. Each example is one document: the end-of-text token (mask 0), the
prompt's tokens (mask 0), the answer's tokens (mask 1). Prompt and answer are tokenized apart, so
the mask boundary is a token boundary. The trainer's loss (and gradient) then counts the answer
tokens only (data/dataloader.h reads X.lossmask beside X.bin).

The answer's end: a final "\\n" is appended to answers that lack one, so the model learns where an
answer stops (and the project's exact-match scorer, --eval-em, finds it); --keep-answers writes
the answers as given. --eval-em scores BPE shards as well as --bytes ones (it reads tokenizer.bin
beside the shard and finds the answer's end at its first token containing a newline).

--bytes: the project's byte-level tokenizer (ids 0..255 = the UTF-8 bytes, 256 = end-of-text,
vocab 257; no tiktoken needed): the format of the embedded task suite (data/tasks.h), for the
tiny models and for tests offline.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llmc_shards  # noqa: E402

InputError = llmc_shards.InputError


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicated key {k!r}")
        d[k] = v
    return d


def read_examples(path):
    """Yields (line number, prompt, answer); raises InputError naming the line on any problem."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}")
    extra = {}
    examples = []
    with f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{where}: not UTF-8 (byte {e.start}: {e.reason})")
            if not line.strip():
                continue
            try:
                obj = json.loads(line, object_pairs_hook=_no_duplicates)
            except ValueError as e:  # json.JSONDecodeError is a ValueError, and so is a duplicated key
                raise InputError(f"{where}: not a valid JSON line: {e}")
            if not isinstance(obj, dict):
                raise InputError(f"{where}: expected a JSON object with \"prompt\" and \"answer\", got {type(obj).__name__}")
            for key in ("prompt", "answer"):
                if key not in obj:
                    raise InputError(f"{where}: missing field \"{key}\"")
                if not isinstance(obj[key], str):
                    raise InputError(f"{where}: field \"{key}\" must be a string, got {type(obj[key]).__name__}")
            if obj["answer"] == "":
                raise InputError(f"{where}: empty answer: nothing to train on")
            for k in obj:
                if k not in ("prompt", "answer"):
                    extra[k] = extra.get(k, 0) + 1
            examples.append((lineno, obj["prompt"], obj["answer"]))
    if not examples:
        raise InputError(f"{path}: no examples (one JSON object per line with \"prompt\" and \"answer\")")
    return examples, extra


def build(examples, tok, keep_answers):
    tokens, mask = [], []
    nanswer, longest = 0, 0
    for lineno, prompt, answer in examples:
        if not keep_answers and not answer.endswith("\n"):
            answer += "\n"
        p, a = tok.encode(prompt), tok.encode(answer)
        tokens.append(tok.eot)
        tokens.extend(p)
        tokens.extend(a)
        mask.append(0)
        mask.extend([0] * len(p))
        mask.extend([1] * len(a))
        nanswer += len(a)
        longest = max(longest, 1 + len(p) + len(a))
    return tokens, mask, nanswer, longest


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Turn a prompt/answer JSONL file into an llm.c shard (GPT-2 BPE via tiktoken) and a loss mask "
                    "that counts the answer tokens only.",
        epilog="Writes OUTPUT (X.bin), X.lossmask and tokenizer.bin beside them. Each line of INPUT: "
               "{\"prompt\": \"...\", \"answer\": \"...\"}.")
    p.add_argument("input", help="JSONL file: one {\"prompt\": str, \"answer\": str} object per line")
    p.add_argument("output", help="output shard, named X.bin (the loss mask goes to X.lossmask)")
    p.add_argument("--bytes", action="store_true",
                   help="the project's byte-level tokenizer (ids 0..255 = bytes, 256 = end-of-text) instead of GPT-2 BPE: "
                        "offline, for the tiny models and tests")
    p.add_argument("--keep-answers", action="store_true", help="do not append a final newline to answers that lack one")
    args = p.parse_args(argv)
    try:
        if not args.output.endswith(".bin"):
            raise InputError(f"{args.output}: the output must be named X.bin (its loss mask is X.lossmask)")
        examples, extra = read_examples(args.input)
        tok = llmc_shards.make_tokenizer(args.bytes)
        tokens, mask, nanswer, longest = build(examples, tok, args.keep_answers)
        outdir = os.path.dirname(os.path.abspath(args.output))
        os.makedirs(outdir, exist_ok=True)
        llmc_shards.write_shard(args.output, tokens, mask)
        tpath = llmc_shards.write_tokenizer(outdir, tok)
    except InputError as e:
        llmc_shards.fail(str(e))
    print(f"{len(examples):,} examples, {len(tokens):,} {tok.name} tokens ({nanswer:,} answer tokens counted, "
          f"{100.0 * nanswer / len(tokens):.1f}%), longest document {longest} tokens")
    print(f"wrote {args.output}, {args.output[:-4]}.lossmask, {tpath}")
    if extra:
        print("ignored fields: " + ", ".join(f"{k} ({n} lines)" for k, n in sorted(extra.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
