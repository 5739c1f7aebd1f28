#!/bin/sh
# dev/bench/gemm_choice.sh — what the reproducible cuBLASLt choice costs: the GPU trainers with the
# heuristic's first algorithm per shape (the default, the same in every process) against
# GPU_GEMM_AUTOTUNE=1 (16 candidates per shape timed, the fastest kept), in the same run, on the
# GPU at hand. GPT-2 124M's shape (-e d12, random init), B=16, T=1024, bf16, random tokens; and the
# tiny model of the comparison (L=4, C=128, B=16, T=64). tokens/s = B*T / the median step time of
# steps 6.. (124M) or the median of train.csv's step times from step 11 (tiny). Prints a table with
# the ratio autotuned / heuristic per trainer, and the reruns' spread (each run twice, alternating).
#   make -j cuda && sh dev/bench/gemm_choice.sh            [STEPS=30 TINY_STEPS=400 OUT=dev/bench/out/gemm_choice]
set -u
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-30}
TINY_STEPS=${TINY_STEPS:-400}
OUT=${OUT:-dev/bench/out/gemm_choice}
mkdir -p "$OUT"
for b in train_gpt2cu train_loracu; do
    [ -x "./$b" ] || { echo "error: ./$b not built (make -j cuda)" >&2; exit 1; }
done
python3 dev/bench/bench_data.py "$OUT" $(( (STEPS + 2) * 16 * 1024 + 1 )) $(( (TINY_STEPS + 2) * 16 * 64 + 1 )) || exit 1
BIG="-e d12 -i $OUT/bench_train.bin -b 16 -t 1024 -x $STEPS -l 1e-4 -s 0 -v 0 --shuffle 0 --print-every 1"
TINY="-e L=4,C=128,H=4,V=257,T=128 -i $OUT/bench_tiny.bin -b 16 -t 64 -x $TINY_STEPS -l 1e-3 -s 0 -v 0 --shuffle 0 --print-every 1000"
run() { # name autotune binary flags...
    name=$1; at=$2; bin=$3; shift 3
    echo "== $name (GPU_GEMM_AUTOTUNE=$at): $bin $*" >&2
    GPU_GEMM_AUTOTUNE=$at timeout 300 "$bin" "$@" > "$OUT/$name.log" 2>&1 || { echo "$name failed:" >&2; tail -5 "$OUT/$name.log" >&2; }
}
for rep in 1 2; do
    for at in 0 1; do
        run "full_${at}_$rep" $at ./train_gpt2cu $BIG --adapter none
        run "lora_${at}_$rep" $at ./train_loracu $BIG --adapter lora --rank 16 --targets all
        run "tiny_lora_${at}_$rep" $at ./train_loracu $TINY --adapter lora --rank 16 --targets all -o "$OUT/tiny_lora_${at}_$rep"
    done
done
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
python3 - "$OUT" "$GPU" <<'EOF'
import os, re, statistics, sys
out, gpu = sys.argv[1], sys.argv[2]
def big(name):
    try: txt = open(os.path.join(out, name + ".log")).read()
    except OSError: return None
    ms = [float(m) for m in re.findall(r"^step\s+\d+/\d+ \|.*?\| ([0-9.]+) ms \|", txt, re.M)]
    return 16 * 1024 / (statistics.median(ms[5:]) / 1000) if len(ms) > 6 else None
def tiny(name):
    try: rows = open(os.path.join(out, name, "train.csv")).read().strip().splitlines()[1:]
    except OSError: return None
    ms = [float(r.split(",")[5]) for r in rows if len(r.split(",")) >= 7 and r.split(",")[5]]
    return 16 * 64 / (statistics.median(ms[10:]) / 1000) if len(ms) > 20 else None
print("# cuBLASLt algorithm choice, %s: tokens/s, heuristic (default) vs GPU_GEMM_AUTOTUNE=1, each run twice" % gpu)
print("| trainer | heuristic (runs) | autotuned (runs) | autotuned / heuristic |")
print("|---|---:|---:|---:|")
for label, key, f in (("full fine-tuning, 124M", "full", big), ("LoRA r=16, 124M", "lora", big), ("LoRA r=16, tiny (L=4 C=128, T=64)", "tiny_lora", tiny)):
    h = [f("%s_0_%d" % (key, r)) for r in (1, 2)]
    a = [f("%s_1_%d" % (key, r)) for r in (1, 2)]
    if None in h or None in a:
        print("| %s | failed | failed | |" % label); continue
    mh, ma = statistics.mean(h), statistics.mean(a)
    print("| %s | %.0f (%.0f, %.0f) | %.0f (%.0f, %.0f) | %.3f |" % (label, mh, h[0], h[1], ma, a[0], a[1], ma / mh))
EOF
