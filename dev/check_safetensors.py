#!/usr/bin/env python3
"""
dev/check_safetensors.py — an independent check of an exported PEFT adapter (standard library only).

    python3 dev/check_safetensors.py DIR [--layers L --channels C] [--base BASE.bin --merged MERGED.bin]

Reads DIR/adapter_config.json and DIR/adapter_model.safetensors with Python's own json and struct
(not our C reader) and checks: 8-byte little-endian header length N, header JSON padded to a
multiple of 8, every tensor F32/F16/BF16 with [begin, end) matching its shape, tensors contiguous
from 0 with no holes or overlaps, 8 + N + data == file size; every key is
base_model.model.transformer.h.{l}.{attn.c_attn|attn.c_proj|mlp.c_fc|mlp.c_proj}.lora_{A|B}.weight,
lora_A (r, in) and lora_B (out, r) for GPT-2's shapes, both present for every module the config's
target_modules selects, r equal to the config's; every value finite. Exit status 0 = valid.

With --base and --merged (llm.c fp32 checkpoints, version 3): PEFT's own arithmetic on the values,
W + s B A with s = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora), computed here in double
for every adapted matrix of BASE, must equal MERGED (e.g. the trainer's --merge-out, or a PLoRA
run's model.bin, against the ORIGINAL base) to float32 rounding: |diff| <= 1e-6 x (1 + max |W|) per
matrix (measured: about 1e-7 x); every other tensor of MERGED must equal BASE's bit for bit.
"""
import argparse
import json
import math
import os
import re
import struct
import sys

MODULES = {  # module -> (in, out) in units of C
    "attn.c_attn": (1, 3),
    "attn.c_proj": (1, 1),
    "mlp.c_fc": (1, 4),
    "mlp.c_proj": (4, 1),
}
DTYPES = {"F32": (4, "f"), "F16": (2, "e"), "BF16": (2, None)}
KEY = re.compile(r"^base_model\.model\.transformer\.h\.(0|[1-9][0-9]*)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.lora_([AB])\.weight$")


def fail(msg):
    print(f"check_safetensors: FAIL: {msg}")
    sys.exit(1)


def selects(entry, module):
    # PEFT's rule for a list entry: the full name equals it or ends with "." + entry
    return module == entry or module.endswith("." + entry)


CKPT_TENSORS = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
                "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"]
MODULE_TENSOR = {"attn.c_attn": "qkvw", "attn.c_proj": "attprojw", "mlp.c_fc": "fcw", "mlp.c_proj": "fcprojw"}


def read_checkpoint(path):
    """llm.c's fp32 checkpoint: header 256 int32, then the 16 tensors; returns (config, {name: floats})."""
    raw = open(path, "rb").read()
    if len(raw) < 1024:
        fail(f"{path}: shorter than a checkpoint header")
    h = struct.unpack("<256i", raw[:1024])
    if h[0] != 20240326 or h[1] != 3:
        fail(f"{path}: not an llm.c fp32 checkpoint (magic {h[0]}, version {h[1]})")
    maxT, V, L, NH, C, Vp = h[2], h[3], h[4], h[5], h[6], h[7]
    sizes = [Vp * C, maxT * C, L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C,
             L * C, L * C, L * 4 * C * C, L * 4 * C, L * 4 * C * C, L * C, C, C]
    if 1024 + 4 * sum(sizes) != len(raw):
        fail(f"{path}: {len(raw)} bytes, the header implies {1024 + 4 * sum(sizes)}")
    out, off = {}, 1024
    for name, n in zip(CKPT_TENSORS, sizes):
        out[name] = struct.unpack(f"<{n}f", raw[off:off + 4 * n])
        off += 4 * n
    return {"L": L, "C": C}, out


def check_merged(cfg, tensors, base_path, merged_path):
    bc, base = read_checkpoint(base_path)
    mc, merged = read_checkpoint(merged_path)
    if bc != mc:
        fail(f"{base_path} and {merged_path} have different shapes")
    L, C = bc["L"], bc["C"]
    r = cfg["r"]
    s = cfg["lora_alpha"] / (math.sqrt(r) if cfg.get("use_rslora") else r)
    adapted = {}
    for (layer, module), (A, B) in tensors.items():
        adapted.setdefault(MODULE_TENSOR[module], {})[layer] = (A, B)
    worst = 0.0
    for name in CKPT_TENSORS:
        if name not in adapted:
            if base[name] != merged[name]:
                fail(f"{name}: not adapted, yet {merged_path} differs from {base_path}")
            continue
        fin, fout = {"qkvw": (1, 3), "attprojw": (1, 1), "fcw": (1, 4), "fcprojw": (4, 1)}[name]
        nin, nout = fin * C, fout * C
        per = nin * nout
        for layer in range(L):
            W0 = base[name][layer * per:(layer + 1) * per]
            W1 = merged[name][layer * per:(layer + 1) * per]
            if layer not in adapted[name]:
                if W0 != W1:
                    fail(f"{name} layer {layer}: not adapted, yet it differs")
                continue
            A, B = adapted[name][layer]  # A (r, in), B (out, r), row-major
            scale = 1.0 + max(abs(x) for x in W1)
            err = 0.0
            for o in range(nout):
                brow = B[o * r:(o + 1) * r]
                for i in range(nin):
                    d = W0[o * nin + i] + s * sum(brow[k] * A[k * nin + i] for k in range(r))
                    err = max(err, abs(d - W1[o * nin + i]))
            worst = max(worst, err / scale)
            if err > 1e-6 * scale:
                fail(f"{name} layer {layer}: W + s B A differs from {merged_path} by {err:.3g} (scale {scale:.3g})")
    print(f"check_safetensors: OK: {base_path} + s B A (s = {s:g}) equals {merged_path}: "
          f"max |diff| {worst:.3g} x (1 + max |W|)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--channels", type=int, default=None)
    ap.add_argument("--base", default=None, help="llm.c fp32 checkpoint the adapter applies to")
    ap.add_argument("--merged", default=None, help="llm.c fp32 checkpoint that must equal BASE + s B A")
    args = ap.parse_args()
    if (args.base is None) != (args.merged is None):
        fail("--base and --merged go together")
    with open(os.path.join(args.dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    for k in ("peft_type", "r", "lora_alpha", "target_modules", "fan_in_fan_out", "bias", "base_model_name_or_path"):
        if k not in cfg:
            fail(f"config lacks {k}")
    if cfg["peft_type"] != "LORA" or cfg["bias"] != "none" or cfg["fan_in_fan_out"] is not True:
        fail("config: peft_type LORA, bias none, fan_in_fan_out true expected")
    r = cfg["r"]
    path = os.path.join(args.dir, "adapter_model.safetensors")
    raw = open(path, "rb").read()
    if len(raw) < 8:
        fail("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n % 8 != 0:
        fail(f"header length {n} is not a multiple of 8")
    if 8 + n > len(raw):
        fail("header runs past the end of the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    if meta is not None and meta.get("format") != "pt":
        fail(f"__metadata__ format is {meta.get('format')!r}, PEFT expects 'pt'")
    data = raw[8 + n:]
    spans, modules, C, values = [], {}, args.channels, {}
    for name, t in header.items():
        m = KEY.match(name)
        if not m:
            fail(f"unexpected key {name}")
        if set(t) != {"dtype", "shape", "data_offsets"}:
            fail(f"{name}: fields {sorted(t)}")
        if t["dtype"] not in DTYPES:
            fail(f"{name}: dtype {t['dtype']}")
        shape, (b, e) = t["shape"], t["data_offsets"]
        if len(shape) != 2:
            fail(f"{name}: shape {shape} is not 2-D")
        size, fmt = DTYPES[t["dtype"]]
        if e - b != shape[0] * shape[1] * size:
            fail(f"{name}: offsets [{b},{e}] do not match shape {shape} x {size} bytes")
        layer, module, ab = int(m.group(1)), m.group(2), m.group(3)
        fin, fout = MODULES[module]
        if ab == "A":
            if shape[0] != r:
                fail(f"{name}: shape {shape}, rank {r} expected first")
            if C is None:
                C = shape[1] // fin
            if shape[1] != fin * C:
                fail(f"{name}: shape {shape}, expected [{r}, {fin * C}]")
        else:
            if shape[1] != r:
                fail(f"{name}: shape {shape}, rank {r} expected second")
            if C is None:
                C = shape[0] // fout
            if shape[0] != fout * C:
                fail(f"{name}: shape {shape}, expected [{fout * C}, {r}]")
        modules.setdefault((layer, module), set()).add(ab)
        spans.append((b, e, name))
        chunk = data[b:e]
        if fmt is not None:
            vals = struct.unpack(f"<{len(chunk) // size}{fmt}", chunk)
        else:
            vals = [struct.unpack("<f", b"\0\0" + chunk[i:i + 2])[0] for i in range(0, len(chunk), 2)]
        if not all(math.isfinite(v) for v in vals):
            fail(f"{name}: non-finite value")
        values.setdefault((layer, module), [None, None])["AB".index(ab)] = vals
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            fail(f"{name}: starts at {b}, expected {pos} (hole or overlap)")
        pos = e
    if 8 + n + pos != len(raw):
        fail(f"8 + {n} + {pos} != file size {len(raw)}")
    layers = sorted({l for l, _ in modules})
    L = args.layers if args.layers is not None else (layers[-1] + 1 if layers else 0)
    targets = cfg["target_modules"]
    want = {mod for mod in MODULES if any(selects(e, mod) for e in targets)} if isinstance(targets, list) else {m for _, m in modules}
    lt = cfg.get("layers_to_transform")
    lset = set(range(L)) if lt is None else ({lt} if isinstance(lt, int) else set(lt))
    for l in sorted(lset):
        for mod in sorted(want):
            if modules.get((l, mod)) != {"A", "B"}:
                fail(f"layer {l} {mod}: lora_A and lora_B expected, found {sorted(modules.get((l, mod), []))}")
    if set(modules) - {(l, m) for l in lset for m in want}:
        fail("tensors for modules outside target_modules / layers_to_transform")
    if args.base is not None:
        check_merged(cfg, values, args.base, args.merged)
    print(f"check_safetensors: OK: {len(header)} tensors, {len(modules)} modules, r={r}, C={C}, "
          f"{len(raw)} bytes, header {n}")


if __name__ == "__main__":
    main()
