#!/usr/bin/env python3
"""
tests/check_hf_export.py — a reader that is not ours: checks a folder written by --export-hf against
the llm.c checkpoint it came from, with Python's standard library only (json, struct, array).

    python3 tests/check_hf_export.py HF_DIR MODEL.bin

Checks: config.json (architectures, model_type, the shape keys, gelu_new, layer_norm_epsilon 1e-5);
model.safetensors parsed from its bytes (header length, JSON header, {"format": "pt"}, F32 only,
contiguous data_offsets, file size) with exactly GPT2LMHeadModel's tensor names; every tensor equal,
value for value (bit for bit), to the checkpoint's tensor: wte unpadded, Conv1D weights transposed
back to llm.c's (out, in). Exit status 0 when all holds, 1 with the first difference otherwise.
"""
import array
import json
import os
import struct
import sys


def fail(msg):
    print(f"check_hf_export: FAIL: {msg}")
    sys.exit(1)


def read_llmc(path):
    with open(path, "rb") as f:
        data = f.read()
    h = struct.unpack("<256i", data[:1024])
    if h[0] != 20240326 or h[1] != 3:
        fail(f"{path}: not an llm.c v3 checkpoint")
    T, V, L, NH, C, Vp = h[2], h[3], h[4], h[5], h[6], h[7]
    sizes = [Vp * C, T * C, L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C, L * C, L * C,
             L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C, C, C]
    vals = array.array("f")
    vals.frombytes(data[1024:])
    if len(vals) != sum(sizes):
        fail(f"{path}: {len(vals)} values, the header implies {sum(sizes)}")
    tensors, off = [], 0
    for s in sizes:
        tensors.append(vals[off:off + s])
        off += s
    return dict(T=T, V=V, L=L, NH=NH, C=C, Vp=Vp), tensors


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    if n % 8 != 0:
        fail(f"{path}: header length {n} is not a multiple of 8")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    if meta != {"format": "pt"}:
        fail(f"{path}: __metadata__ is {meta!r}, expected {{'format': 'pt'}}")
    body = data[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    pos = 0
    for b, e, k in spans:
        if b != pos:
            fail(f"{path}: tensor {k} starts at {b}, expected {pos}")
        pos = e
    if pos != len(body):
        fail(f"{path}: data is {len(body)} bytes, the offsets cover {pos}")
    out = {}
    for k, v in header.items():
        if v["dtype"] != "F32":
            fail(f"{path}: {k} has dtype {v['dtype']}, expected F32")
        b, e = v["data_offsets"]
        a = array.array("f")
        a.frombytes(body[b:e])
        count = 1
        for d in v["shape"]:
            count *= d
        if len(a) != count:
            fail(f"{path}: {k}: {len(a)} values for shape {v['shape']}")
        out[k] = (v["shape"], a)
    return out


def transpose(a, rows, cols):
    """a is (rows, cols) row-major; returns (cols, rows)."""
    out = array.array("f", bytes(4 * rows * cols))
    for r in range(rows):
        out[r::rows] = a[r * cols:(r + 1) * cols]
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    hf_dir, ckpt = sys.argv[1], sys.argv[2]
    cfg, p = read_llmc(ckpt)
    T, V, L, C = cfg["T"], cfg["V"], cfg["L"], cfg["C"]
    with open(os.path.join(hf_dir, "config.json")) as f:
        hc = json.load(f)
    want = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V, "n_positions": T,
            "n_embd": C, "n_layer": L, "n_head": cfg["NH"], "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
    for k, v in want.items():
        if hc.get(k) != v:
            fail(f"config.json: {k} is {hc.get(k)!r}, expected {v!r}")
    st = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
    # name -> (llm.c tensor index, layer or None, HF shape, transposed)
    expect = {"transformer.wte.weight": (0, None, [V, C], False), "transformer.wpe.weight": (1, None, [T, C], False),
              "transformer.ln_f.weight": (14, None, [C], False), "transformer.ln_f.bias": (15, None, [C], False)}
    per_layer = [("ln_1.weight", 2, [C], False), ("ln_1.bias", 3, [C], False),
                 ("attn.c_attn.weight", 4, [C, 3 * C], True), ("attn.c_attn.bias", 5, [3 * C], False),
                 ("attn.c_proj.weight", 6, [C, C], True), ("attn.c_proj.bias", 7, [C], False),
                 ("ln_2.weight", 8, [C], False), ("ln_2.bias", 9, [C], False),
                 ("mlp.c_fc.weight", 10, [C, 4 * C], True), ("mlp.c_fc.bias", 11, [4 * C], False),
                 ("mlp.c_proj.weight", 12, [4 * C, C], True), ("mlp.c_proj.bias", 13, [C], False)]
    for l in range(L):
        for name, idx, shape, tr in per_layer:
            expect[f"transformer.h.{l}.{name}"] = (idx, l, shape, tr)
    if set(st) != set(expect):
        fail(f"tensor names: missing {sorted(set(expect) - set(st))[:5]}, unexpected {sorted(set(st) - set(expect))[:5]}")
    nvalues = 0
    for name, (idx, l, shape, tr) in expect.items():
        got_shape, got = st[name]
        if got_shape != shape:
            fail(f"{name}: shape {got_shape}, expected {shape}")
        n = 1
        for d in shape:
            n *= d
        src = p[idx]
        ref = src[l * n:(l + 1) * n] if l is not None else src[:n]   # wte: the first V rows of Vp
        if tr:  # HF (in, out) = transpose of llm.c's (out, in)
            ref = transpose(ref, shape[1], shape[0])
        if got.tobytes() != ref.tobytes():
            bad = next(i for i in range(n) if struct.pack("<f", got[i]) != struct.pack("<f", ref[i]))
            fail(f"{name}: value {bad} is {got[bad]!r}, the checkpoint's {ref[bad]!r}")
        nvalues += n
    print(f"check_hf_export: {hf_dir} = {ckpt}: {len(expect)} tensors, {nvalues} values bit for bit "
          f"(L={L} C={C} V={V} T={T}; {cfg['Vp'] - V} padded rows dropped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
