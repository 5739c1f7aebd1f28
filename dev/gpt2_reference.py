#!/usr/bin/env python3
"""
Reference GPT-2 for the C trainer's tests: a tiny model, one forward/backward pass and
10 AdamW steps, all computed in float64 with PyTorch, written to small files that the C
test suite compares against, tensor by tensor.

    python3 dev/gpt2_reference.py              # (re)write dev/ref/*.bin
    python3 dev/gpt2_reference.py --out DIR    # write into DIR instead
    python3 dev/gpt2_reference.py --check      # regenerate into a temporary directory and
                                               # compare byte for byte with dev/ref (or --out)

Only the Python standard library and torch are used.

The tiny model
--------------
    maxT = 16   max sequence length          L  = 2   layers
    V    = 61   real vocabulary (prime)      NH = 4   heads
    Vp   = 64   padded vocabulary            C  = 32  channels (head size hs = C/NH = 8)

Initialisation (float32, one torch.Generator seeded with 42, tensors drawn in checkpoint
order, then the batch):
    wte rows 0..V-1, wpe, qkvw, fcw         N(0, 0.02)
    attprojw, fcprojw (residual projections) N(0, 0.02/sqrt(2L))
    every bias (qkvb, attprojb, fcb, fcprojb) N(0, 0.02)       (non-zero on purpose)
    layernorm weights                        1 + N(0, 0.1)      (non-trivial on purpose)
    layernorm biases                         N(0, 0.02)
    wte rows V..Vp-1                         exactly 0
The batch: B=2, T=8, x then y, each torch.randint(0, V, (B, T)).

The maths (what the C code must reproduce)
------------------------------------------
    h = wte[x] + wpe[:T]                                       (B,T,C)
    for each layer l:
        a   = LN(h; ln1w[l], ln1b[l])                         (B,T,C)
        qkv = a @ qkvw[l]^T + qkvb[l]                         (B,T,3C) packed [q; k; v]
        head n of q uses q[..., n*hs:(n+1)*hs] (same for k, v)
        att = softmax(q k^T / sqrt(hs), causal)               (B,NH,T,T)
        y   = att @ v, heads concatenated back                (B,T,C)
        h   = h + y @ attprojw[l]^T + attprojb[l]
        m   = LN(h; ln2w[l], ln2b[l])
        u   = GELU_tanh(m @ fcw[l]^T + fcb[l])                (B,T,4C)
        h   = h + u @ fcprojw[l]^T + fcprojb[l]
    hf     = LN(h; lnfw, lnfb)                                (B,T,C)
    logits = hf @ wte^T                                       (B,T,Vp)  all Vp rows
    loss   = mean over B*T of  logsumexp(logits[..., :V]) - logits[..., y]
             (the padded logits are computed and dumped but take no part in the loss)
    LN(z; w, b) = (z - mean) / sqrt(var + 1e-5) * w + b, var the biased (1/C) variance.
    GELU_tanh(z) = 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))).

Training (10 steps on the same batch, float64):
    g       = grads of the loss
    norm    = sqrt(sum of g^2 over all 16 tensors, padded wte rows included (they are 0))
    g      *= min(1, 1.0 / (norm + 1e-6))         (torch.nn.utils.clip_grad_norm_, max 1.0)
    AdamW (torch.optim.AdamW), step t = 1..10, lr 1e-3, b1 0.9, b2 0.999, eps 1e-8:
        p  *= 1 - lr * wd      wd = 0.1 for wte, wpe, qkvw, attprojw, fcw, fcprojw, else 0
        m   = b1 m + (1-b1) g
        v   = b2 v + (1-b2) g^2
        p  -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    The loss is recorded before each of the 10 updates (step loss 0 = the loss above).

Files written (all little-endian; every header is 256 int32 = 1024 bytes)
------------------------------------------------------------------------
gpt2_tiny.bin       llm.c model checkpoint, version 3 (fp32):
    header [0]=20240326 [1]=3 [2]=maxT [3]=V [4]=L [5]=NH [6]=C [7]=Vp, rest 0
    then the 16 tensors as float32, in this order (weights (out, in) row-major):
        wte (Vp,C)  wpe (maxT,C)  ln1w (L,C)  ln1b (L,C)  qkvw (L,3C,C)  qkvb (L,3C)
        attprojw (L,C,C)  attprojb (L,C)  ln2w (L,C)  ln2b (L,C)  fcw (L,4C,C)
        fcb (L,4C)  fcprojw (L,C,4C)  fcprojb (L,C)  lnfw (C)  lnfb (C)
    num_params = 28032 values -> 1024 + 4*28032 = 113152 bytes.
gpt2_tiny_bf16.bin  the same model, version 5: same header with [1]=5, every tensor as
    bf16 (uint16), rounded to nearest even from the float32 values -> 57088 bytes.
gpt2_tiny_ref.bin   the reference results:
    header [0]=20240327 [1]=3 [2]=B [3]=T [4]=nsteps (10), rest 0
    x            int32   B*T
    y            int32   B*T
    logits       float32 B*T*Vp        (all Vp columns, padded ones included)
    loss         float32 1
    grads        float32 num_params    (16 tensors, checkpoint order, before clipping)
    step_losses  float32 nsteps        (loss before update 1..10)
    params_after float32 num_params    (parameters after the 10th update, checkpoint order)
    -> 1024 + 4*(2*B*T + B*T*Vp + 1 + num_params + nsteps + num_params) bytes.
All results are computed in float64 and rounded (to nearest) to float32 for storage.
"""

import argparse
import array
import math
import os
import sys
import tempfile
import time

import torch

# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------
MAXT, V, VP, L, NH, C = 16, 61, 64, 2, 4, 32
B, T = 2, 8
NSTEPS = 10
SEED = 42
LR, BETAS, EPS, WD, CLIP = 1e-3, (0.9, 0.999), 1e-8, 0.1, 1.0
LN_EPS = 1e-5

MODEL_MAGIC, REF_MAGIC = 20240326, 20240327
REF_VERSION = 3

# Checkpoint order and shapes of the 16 parameter tensors.
PARAM_SHAPES = [
    ("wte", (VP, C)),
    ("wpe", (MAXT, C)),
    ("ln1w", (L, C)),
    ("ln1b", (L, C)),
    ("qkvw", (L, 3 * C, C)),
    ("qkvb", (L, 3 * C)),
    ("attprojw", (L, C, C)),
    ("attprojb", (L, C)),
    ("ln2w", (L, C)),
    ("ln2b", (L, C)),
    ("fcw", (L, 4 * C, C)),
    ("fcb", (L, 4 * C)),
    ("fcprojw", (L, C, 4 * C)),
    ("fcprojb", (L, C)),
    ("lnfw", (C,)),
    ("lnfb", (C,)),
]
PARAM_NAMES = [n for n, _ in PARAM_SHAPES]
DECAYED = {"wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw"}  # weight decay 0.1; rest 0


# ---------------------------------------------------------------------------------------
# Initialisation (float32, CPU generator, bit-reproducible)
# ---------------------------------------------------------------------------------------
def init_params(g):
    """Returns {name: float32 tensor} in checkpoint order, drawn from generator g."""
    std, res_std = 0.02, 0.02 / math.sqrt(2 * L)

    def normal(shape, s):
        return torch.randn(shape, generator=g, dtype=torch.float32) * s

    p = {}
    for name, shape in PARAM_SHAPES:
        if name == "wte":
            # real rows drawn, padded rows V..Vp-1 exactly zero
            p[name] = torch.cat([normal((V, C), std), torch.zeros(VP - V, C)], dim=0)
        elif name in ("attprojw", "fcprojw"):
            p[name] = normal(shape, res_std)
        elif name in ("ln1w", "ln2w", "lnfw"):
            p[name] = 1.0 + normal(shape, 0.1)
        else:  # wpe, qkvw, fcw, every bias, layernorm biases
            p[name] = normal(shape, std)
        assert p[name].shape == shape and p[name].dtype == torch.float32
    return p


# ---------------------------------------------------------------------------------------
# The model, written out (float64 parameters; autograd does the backward pass)
# ---------------------------------------------------------------------------------------
def layernorm(z, w, b):
    # z (B,T,C); w, b (C)
    mean = z.mean(dim=-1, keepdim=True)                       # (B,T,1)
    var = ((z - mean) ** 2).mean(dim=-1, keepdim=True)         # (B,T,1) biased variance
    return (z - mean) / torch.sqrt(var + LN_EPS) * w + b       # (B,T,C)


def gelu_tanh(z):
    return 0.5 * z * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))


def attention(a, qkvw, qkvb):
    # a (B,T,C); qkvw (3C,C); qkvb (3C)
    Bb, Tt, Cc = a.shape
    hs = Cc // NH
    qkv = a @ qkvw.t() + qkvb                                  # (B,T,3C) = [q | k | v]
    q, k, v = qkv[..., :Cc], qkv[..., Cc:2 * Cc], qkv[..., 2 * Cc:]   # each (B,T,C)
    # head n owns channels n*hs .. (n+1)*hs-1 of each of q, k, v
    q = q.reshape(Bb, Tt, NH, hs).transpose(1, 2)              # (B,NH,T,hs)
    k = k.reshape(Bb, Tt, NH, hs).transpose(1, 2)              # (B,NH,T,hs)
    v = v.reshape(Bb, Tt, NH, hs).transpose(1, 2)              # (B,NH,T,hs)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)         # (B,NH,T,T)
    causal = torch.ones(Tt, Tt, dtype=torch.bool).tril()       # key j visible to query i iff j <= i
    scores = scores.masked_fill(~causal, float("-inf"))
    att = torch.softmax(scores, dim=-1)                        # (B,NH,T,T)
    y = att @ v                                                # (B,NH,T,hs)
    return y.transpose(1, 2).reshape(Bb, Tt, Cc)               # (B,T,C) heads side by side


def forward(p, x, y):
    """p: {name: float64 tensor}; x, y: (B,T) int64. Returns logits (B,T,Vp), loss ()."""
    Bb, Tt = x.shape
    h = p["wte"][x] + p["wpe"][:Tt]                            # (B,T,C)
    for l in range(L):
        a = layernorm(h, p["ln1w"][l], p["ln1b"][l])           # (B,T,C)
        att = attention(a, p["qkvw"][l], p["qkvb"][l])         # (B,T,C)
        h = h + att @ p["attprojw"][l].t() + p["attprojb"][l]  # (B,T,C) residual
        m = layernorm(h, p["ln2w"][l], p["ln2b"][l])           # (B,T,C)
        u = gelu_tanh(m @ p["fcw"][l].t() + p["fcb"][l])       # (B,T,4C)
        h = h + u @ p["fcprojw"][l].t() + p["fcprojb"][l]      # (B,T,C) residual
    hf = layernorm(h, p["lnfw"], p["lnfb"])                    # (B,T,C)
    logits = hf @ p["wte"].t()                                 # (B,T,Vp) every padded row too
    real = logits[..., :V]                                     # (B,T,V)  the loss sees only these
    logprobs = real - torch.logsumexp(real, dim=-1, keepdim=True)            # (B,T,V)
    loss = -logprobs.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean()          # ()
    return logits, loss


# ---------------------------------------------------------------------------------------
# Binary writing helpers (little-endian, no numpy)
# ---------------------------------------------------------------------------------------
def _le(arr):
    if sys.byteorder != "little":
        arr.byteswap()
    return arr.tobytes()


def header(values):
    h = [0] * 256
    h[:len(values)] = values
    return _le(array.array("i", h))


def f32_bytes(t):
    """Any float tensor -> float32 (round to nearest, by torch) -> bytes."""
    return _le(array.array("f", t.detach().to(torch.float32).reshape(-1).tolist()))


def i32_bytes(t):
    return _le(array.array("i", t.reshape(-1).tolist()))


def bf16_bytes(t):
    """float32 tensor -> bf16 bits, round to nearest even (no NaN/Inf occur here)."""
    bits = t.to(torch.float32).contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return _le(array.array("H", rounded.reshape(-1).tolist()))


# ---------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------
def generate(out_dir, verbose=True):
    t0 = time.time()
    torch.set_num_threads(1)   # fixed summation order in float64 matmuls
    g = torch.Generator(device="cpu")
    g.manual_seed(SEED)

    p32 = init_params(g)                                               # float32 model
    x = torch.randint(0, V, (B, T), generator=g, dtype=torch.int64)    # (B,T) inputs
    y = torch.randint(0, V, (B, T), generator=g, dtype=torch.int64)    # (B,T) targets
    num_params = sum(t.numel() for t in p32.values())

    # --- checkpoints: exactly the float32 values the float64 reference starts from ---
    model_hdr = [MODEL_MAGIC, 3, MAXT, V, L, NH, C, VP]
    ckpt = header(model_hdr) + b"".join(f32_bytes(p32[n]) for n in PARAM_NAMES)
    model_hdr[1] = 5
    ckpt_bf16 = header(model_hdr) + b"".join(bf16_bytes(p32[n]) for n in PARAM_NAMES)

    # --- float64 forward + backward ---
    p = {n: p32[n].to(torch.float64).requires_grad_(True) for n in PARAM_NAMES}
    logits, loss = forward(p, x, y)
    loss.backward()
    grads = {n: p[n].grad.detach().clone() for n in PARAM_NAMES}
    grad_norm = math.sqrt(sum(float((gr ** 2).sum()) for gr in grads.values()))
    logits = logits.detach().clone()
    loss0 = float(loss)

    # --- 10 AdamW steps on the same batch (the first reuses the gradients above) ---
    groups = [
        {"params": [p[n] for n in PARAM_NAMES if n in DECAYED], "weight_decay": WD},
        {"params": [p[n] for n in PARAM_NAMES if n not in DECAYED], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS)
    step_losses = []
    for step in range(NSTEPS):
        if step > 0:
            opt.zero_grad(set_to_none=True)
            _, loss = forward(p, x, y)
            loss.backward()
        step_losses.append(float(loss))
        torch.nn.utils.clip_grad_norm_([p[n] for n in PARAM_NAMES], CLIP)
        opt.step()
    assert step_losses[0] == loss0
    assert float(p["wte"][V:].abs().max()) == 0.0   # padded rows never move

    ref = b"".join([
        header([REF_MAGIC, REF_VERSION, B, T, NSTEPS]),
        i32_bytes(x),
        i32_bytes(y),
        f32_bytes(logits),
        f32_bytes(torch.tensor([loss0], dtype=torch.float64)),
        b"".join(f32_bytes(grads[n]) for n in PARAM_NAMES),
        f32_bytes(torch.tensor(step_losses, dtype=torch.float64)),
        b"".join(f32_bytes(p[n]) for n in PARAM_NAMES),
    ])
    expect = 1024 + 4 * (2 * B * T + B * T * VP + 1 + num_params + NSTEPS + num_params)
    assert len(ref) == expect and len(ckpt) == 1024 + 4 * num_params
    assert len(ckpt_bf16) == 1024 + 2 * num_params

    os.makedirs(out_dir, exist_ok=True)
    files = {"gpt2_tiny.bin": ckpt, "gpt2_tiny_bf16.bin": ckpt_bf16, "gpt2_tiny_ref.bin": ref}
    for name, data in files.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)

    if verbose:
        print(f"tiny GPT-2: maxT={MAXT} V={V} Vp={VP} L={L} NH={NH} C={C}, "
              f"num_params={num_params}; batch B={B} T={T}")
        print(f"x[0] = {x[0].tolist()}\ny[0] = {y[0].tolist()}")
        print(f"logits {tuple(logits.shape)}, loss {loss0:.9f} (ln V = {math.log(V):.6f}), "
              f"grad norm {grad_norm:.9f}")
        print("step losses: " + " ".join(f"{s:.6f}" for s in step_losses))
        for name, data in files.items():
            print(f"wrote {os.path.join(out_dir, name)} ({len(data)} bytes)")
        print(f"took {time.time() - t0:.2f} s")
    return files


def check(ref_dir):
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(tmp, verbose=False)
        ok = True
        for name, data in files.items():
            path = os.path.join(ref_dir, name)
            if not os.path.exists(path):
                print(f"FAIL {path}: missing", file=sys.stderr)
                ok = False
                continue
            with open(path, "rb") as f:
                old = f.read()
            if old == data:
                print(f"ok   {path} ({len(data)} bytes) is reproduced byte for byte")
                continue
            ok = False
            if len(old) != len(data):
                print(f"FAIL {path}: {len(old)} bytes committed, {len(data)} regenerated",
                      file=sys.stderr)
            else:
                ndiff = sum(a != b for a, b in zip(old, data))
                first = next(i for i, (a, b) in enumerate(zip(old, data)) if a != b)
                print(f"FAIL {path}: {ndiff} bytes differ, first at offset {first} "
                      f"(torch {torch.__version__})", file=sys.stderr)
    return 0 if ok else 1


def main():
    default_out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=default_out, help="output directory (default dev/ref)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temporary directory and compare byte for byte "
                         "with the files in --out; exit 1 if they differ")
    args = ap.parse_args()
    if args.check:
        sys.exit(check(args.out))
    generate(args.out)


if __name__ == "__main__":
    main()
