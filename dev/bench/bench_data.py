#!/usr/bin/env python3
"""dev/bench/bench_data.py OUT N NT — the GPU benchmarks' random token shards (llm.c's format, seed 1234):
OUT/bench_train.bin with N tokens below GPT-2's vocabulary (50257) and OUT/bench_tiny.bin with NT below
the byte-level one (257). A shard already there with the right size is kept. Used by dev/bench/gpu.sh and
dev/bench/gemm_choice.sh."""
import array, os, random, struct, sys

out, n, nt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for name, count, vocab in (("bench_train.bin", n, 50257), ("bench_tiny.bin", nt, 257)):
    path = os.path.join(out, name)
    if os.path.exists(path) and os.path.getsize(path) == 1024 + 2 * count:
        continue
    random.seed(1234)
    tok = array.array("H", (random.randrange(vocab) for _ in range(count)))
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", 20240520, 1, count, *([0] * 253)))
        f.write(tok.tobytes())
