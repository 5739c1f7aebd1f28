"""
llmc_shards.py — the Python writer of llm.c's data files, for the scripts in dev/data/.
data/dataloader.h is the reader; lora/METHODS.md §5 and data/tasks.h give the formats. Little-endian,
every header 256 int32 (1024 bytes):

    shard      X.bin       [0]=20240520 [1]=1 [2]=ntok, then ntok uint16 tokens (llm.c's format)
    loss mask  X.lossmask  [0]=20240522 [1]=1 [2]=ntok, then ntok uint8 in {0,1}; 1 = token i is a
                           counted prediction target (ours; llm.c ignores it)
    tokenizer  tokenizer.bin  [0]=20240328 [1]=2 [2]=vocab [3]=eot, then per token a uint8 length
                           and its bytes (llm.c's version 2)

Two tokenizers: GPT-2 BPE through tiktoken (vocab 50257, end-of-text 50256), and the project's
byte-level one (ids 0..255 are bytes, 256 is end-of-text, vocab 257: data/tasks.h's), which needs
nothing installed: the tiny models of this project read it, and the tests use it offline.
Every file is written to a temporary name and renamed; a mask before its shard.
"""
import os
import struct
import sys

SHARD_MAGIC, SHARD_VERSION = 20240520, 1
LOSSMASK_MAGIC, LOSSMASK_VERSION = 20240522, 1
TOKENIZER_MAGIC, TOKENIZER_VERSION = 20240328, 2
HEADER_INTS = 256


class InputError(Exception):
    """A problem with the user's input: printed as 'error: ...' and exit status 1."""


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


# ----------------------------------------------------------------------------
# tokenizers

class BytesTokenizer:
    name = "bytes"
    eot = 256
    vocab = 257

    def encode(self, text):
        return list(text.encode("utf-8"))

    def token_bytes(self):
        return [bytes([i]) for i in range(256)] + [b"<|endoftext|>"]


class GPT2Tokenizer:
    name = "gpt2"

    def __init__(self):
        try:
            import tiktoken
        except ImportError:
            raise InputError("tiktoken is not installed: `pip install tiktoken` (it fetches GPT-2's BPE files on first use, "
                             "then caches them), or use --bytes for the project's byte-level tokenizer")
        self.enc = tiktoken.get_encoding("gpt2")
        self.eot = self.enc.eot_token          # 50256
        self.vocab = self.enc.n_vocab          # 50257

    def encode(self, text):
        # ordinary: "<|endoftext|>" inside the text is text, never the special token
        return self.enc.encode_ordinary(text)

    def token_bytes(self):
        return [self.enc.decode_single_token_bytes(i) for i in range(self.vocab)]


def make_tokenizer(use_bytes):
    return BytesTokenizer() if use_bytes else GPT2Tokenizer()


# ----------------------------------------------------------------------------
# writers

def _header(magic, version, *words):
    h = [magic, version, *words] + [0] * (HEADER_INTS - 2 - len(words))
    return struct.pack(f"<{HEADER_INTS}i", *h)


def _write_atomic(path, parts):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for p in parts:
            f.write(p)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _check_count(n, what):
    if n >= 2 ** 31:
        raise InputError(f"{what}: {n} tokens do not fit the int32 count of an llm.c header; split the input")


def shard_bytes(tokens):
    _check_count(len(tokens), "shard")
    for i, t in enumerate(tokens):
        if not 0 <= t < 65536:
            raise InputError(f"token id {t} at position {i} does not fit uint16 (llm.c's shards)")
    return _header(SHARD_MAGIC, SHARD_VERSION, len(tokens)) + struct.pack(f"<{len(tokens)}H", *tokens)


def lossmask_bytes(mask):
    _check_count(len(mask), "loss mask")
    if any(m not in (0, 1) for m in mask):
        raise InputError("loss mask values must be 0 or 1")
    return _header(LOSSMASK_MAGIC, LOSSMASK_VERSION, len(mask)) + bytes(mask)


def tokenizer_bytes(tok):
    parts = [_header(TOKENIZER_MAGIC, TOKENIZER_VERSION, tok.vocab, tok.eot)]
    for i, b in enumerate(tok.token_bytes()):
        if not 0 < len(b) < 256:
            raise InputError(f"token {i} is {len(b)} bytes long; llm.c's tokenizer file stores 1..255")
        parts.append(bytes([len(b)]) + b)
    return b"".join(parts)


def write_shard(path, tokens, mask=None):
    """Writes path (which must end in .bin) and, with a mask, path's .lossmask first."""
    if mask is not None:
        if not path.endswith(".bin"):
            raise InputError(f"{path}: a shard with a loss mask must be named X.bin (the mask is X.lossmask)")
        if len(mask) != len(tokens):
            raise InputError("loss mask and tokens differ in length")
        _write_atomic(path[:-4] + ".lossmask", [lossmask_bytes(mask)])
    _write_atomic(path, [shard_bytes(tokens)])


def write_tokenizer(dirname, tok):
    """Writes dirname/tokenizer.bin (the trainer decodes samples with it); refuses to replace a different one."""
    path = os.path.join(dirname, "tokenizer.bin")
    data = tokenizer_bytes(tok)
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return path
        raise InputError(f"{path} exists and holds a different tokenizer: shards of two tokenizers would share a "
                         "directory; use another output directory or remove it")
    _write_atomic(path, [data])
    return path
