#!/usr/bin/env python3
"""dev/bench/torch_gpt2.py — the PyTorch peer for dev/bench/cpu.sh: a minimal GPT-2 (the same
architecture as train_gpt2.c: pre-LN blocks, causal attention, GELU-tanh MLP, tied LM head) with an
optional LoRA on the four linears of every block, trained with AdamW on random tokens on the CPU.

    /usr/bin/python3 dev/bench/torch_gpt2.py --layers 12 --channels 768 --heads 12 --vocab 50257 \
        --batch 4 --seq 64 --steps 5 [--lora 16] [--threads 2]

Prints one line: `torch <full|lora> tokens/s <x> step_ms <y> median_step_ms <z>` (the mean and the
median over the steps after the first, which warms up). Uses Debian's python3-torch (with libopenblas0-pthread, PyTorch's BLAS is
OpenBLAS).
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    """y = W x + b + (alpha / r) B A x, with W, b frozen (no gradient) when r > 0."""

    def __init__(self, fin, fout, r, alpha):
        super().__init__()
        self.base = nn.Linear(fin, fout)
        self.r = r
        if r > 0:
            self.base.weight.requires_grad_(False)
            self.base.bias.requires_grad_(False)
            self.A = nn.Parameter(torch.empty(r, fin).uniform_(-1 / math.sqrt(fin), 1 / math.sqrt(fin)))
            self.B = nn.Parameter(torch.zeros(fout, r))
            self.scale = alpha / r

    def forward(self, x):
        y = self.base(x)
        if self.r > 0:
            y = y + self.scale * ((x @ self.A.t()) @ self.B.t())
        return y


class Block(nn.Module):
    def __init__(self, C, H, r, alpha):
        super().__init__()
        self.H = H
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv = LoRALinear(C, 3 * C, r, alpha)
        self.proj = LoRALinear(C, C, r, alpha)
        self.fc = LoRALinear(C, 4 * C, r, alpha)
        self.fcproj = LoRALinear(4 * C, C, r, alpha)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.H))  # (Debian's torch 1.13: no SDPA)
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L, C, H, V, maxT, r, alpha):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(maxT, C)
        self.blocks = nn.ModuleList(Block(C, H, r, alpha) for _ in range(L))
        self.lnf = nn.LayerNorm(C)
        if r > 0:  # with an adapter, everything but A and B is frozen
            for p in [self.wte.weight, self.wpe.weight, self.lnf.weight, self.lnf.bias]:
                p.requires_grad_(False)
            for b in self.blocks:
                for p in list(b.ln1.parameters()) + list(b.ln2.parameters()):
                    p.requires_grad_(False)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x)
        logits = self.lnf(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--channels", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--lora", type=int, default=0, help="LoRA rank on the four linears (0: full fine-tuning)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT(a.layers, a.channels, a.heads, a.vocab, a.ctx, a.lora, 2.0 * a.lora)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    x = torch.randint(0, a.vocab, (a.batch, a.seq))
    y = torch.randint(0, a.vocab, (a.batch, a.seq))
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    timed = sorted(times[1:]) or times
    dt = sum(timed) / len(timed)
    med = (timed[(len(timed) - 1) // 2] + timed[len(timed) // 2]) / 2
    print(f"torch {'lora' if a.lora else 'full'} tokens/s {a.batch * a.seq / dt:.1f} step_ms {dt * 1000:.1f} "
          f"median_step_ms {med * 1000:.1f}")


if __name__ == "__main__":
    main()
