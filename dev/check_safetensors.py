#!/usr/bin/env python3
"""
dev/check_safetensors.py — an independent check of an exported PEFT adapter (standard library only).

    python3 dev/check_safetensors.py DIR [--layers L --channels C]

Reads DIR/adapter_config.json and DIR/adapter_model.safetensors with Python's own json and struct
(not our C reader) and checks: 8-byte little-endian header length N, header JSON padded to a
multiple of 8, every tensor F32/F16/BF16 with [begin, end) matching its shape, tensors contiguous
from 0 with no holes or overlaps, 8 + N + data == file size; every key is
base_model.model.transformer.h.{l}.{attn.c_attn|attn.c_proj|mlp.c_fc|mlp.c_proj}.lora_{A|B}.weight,
lora_A (r, in) and lora_B (out, r) for GPT-2's shapes, both present for every module the config's
target_modules selects, r equal to the config's; every value finite. Exit status 0 = valid.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--channels", type=int, default=None)
    args = ap.parse_args()
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
    spans, modules, C = [], {}, args.channels
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
    print(f"check_safetensors: OK: {len(header)} tensors, {len(modules)} modules, r={r}, C={C}, "
          f"{len(raw)} bytes, header {n}")


if __name__ == "__main__":
    main()
