#!/bin/sh
# dev/bench/gpu.sh — GPT-2 124M's shape on this GPU: our CUDA trainers next to PyTorch + PEFT, one table.
#   sh dev/bench/gpu.sh            (from anywhere; builds what it needs; STEPS=30 PEFT_STEPS=20 to change)
#   SKIP_PEFT=1 sh dev/bench/gpu.sh  our trainers only
# Shape: -e d12 (12 layers, 12 heads, 768 channels, vocab 50257 padded to 50304), random init,
# B=16, T=1024, bf16, one random uint16 shard written here. Rows: full fine-tuning, LoRA r=16 and
# LoRI-S r=16 (90% sparse random mask: the speed of any mask) on all four linear layers of every
# block; PEFT: LoRA r=16 on c_attn, c_proj, c_fc (the same four matrices), bf16 autocast, eager and
# torch.compile (dev/bench/peft_bench.py).
# tokens/s: ours = B*T / the median step time of steps 6.. (each step synchronised, data loading
# included); PEFT's = B*T*steps / wall time of the timed steps.
# MFU = FLOPs/token * tokens/s / 989 TFLOP/s (H100/H200 SXM dense bf16), FLOPs/token = 6N + 6LCT for
# full fine-tuning and 4N + 6LCT with a frozen base (no weight gradients), N = 124.4M parameters,
# 6LCT the causal attention (forward + backward). Peak memory: ours = every device buffer the trainer
# allocates (parameters, optimizer, activations, scratch, cuBLASLt workspace); PEFT's =
# torch.cuda.max_memory_allocated. Neither counts the CUDA context.
set -e
cd "$(dirname "$0")/../.."
OUT=${BENCH_OUT:-dev/bench/out}
STEPS=${STEPS:-30}
PEFT_STEPS=${PEFT_STEPS:-20}
mkdir -p "$OUT"
[ -n "$NO_BUILD" ] || make -s -f cuda/cuda.mk train_gpt2cu train_loracu train_loricu
python3 - "$OUT/bench_train.bin" $(( (STEPS + 2) * 16 * 1024 + 1 )) <<'EOF'
import os, struct, sys, array, random
path, n = sys.argv[1], int(sys.argv[2])
if not (os.path.exists(path) and os.path.getsize(path) == 1024 + 2 * n):
    random.seed(1234)
    tok = array.array("H", (random.randrange(50257) for _ in range(n)))
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", 20240520, 1, n, *([0] * 253)))
        f.write(tok.tobytes())
EOF
COMMON="-e d12 -i $OUT/bench_train.bin -b 16 -t 1024 -x $STEPS -l 1e-4 -s 0 -v 0 --shuffle 0 --print-every 1"
run() { # name binary flags...
  name=$1; bin=$2; shift 2
  echo "== $name: ./$bin $COMMON $*" >&2
  timeout 300 ./$bin $COMMON "$@" > "$OUT/$name.log" 2>&1 || { echo "$name failed:" >&2; tail -5 "$OUT/$name.log" >&2; }
}
run ours_full train_gpt2cu --adapter none
run ours_lora train_loracu --adapter lora --rank 16 --targets all
run ours_lori train_loricu --adapter lori --lori-stage s --mask random --sparsity 0.9 --rank 16 --targets all
if [ -z "$SKIP_PEFT" ]; then
  for mode in eager compile; do
    echo "== peft_$mode" >&2
    timeout 400 python3 dev/bench/peft_bench.py --mode $mode --steps $PEFT_STEPS > "$OUT/peft_$mode.json" 2> "$OUT/peft_$mode.err" \
      || { echo "peft $mode failed:" >&2; tail -5 "$OUT/peft_$mode.err" >&2; }
  done
fi
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
python3 - "$OUT" "$GPU" <<'EOF'
import json, os, re, statistics, sys
out, gpu = sys.argv[1], sys.argv[2]
N, L, C, T, BT = 124475904, 12, 768, 1024, 16 * 1024
peak = 989e12 if ("H100" in gpu or "H200" in gpu) else None
def ours(name):
    try: txt = open(os.path.join(out, name + ".log")).read()
    except OSError: return None
    ms = [float(m) for m in re.findall(r"^step\s+\d+/\d+ \|.*?\| ([0-9.]+) ms \|", txt, re.M)]
    mem = re.findall(r"peak ([0-9.]+) MiB", txt)
    if len(ms) < 6: return None
    return BT / (statistics.median(ms[5:]) / 1000), float(mem[-1]) * 2**20 if mem else float("nan")
def peft(mode):
    try: j = json.loads(open(os.path.join(out, "peft_%s.json" % mode)).read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError): return None
    return j["tok_per_s"], j["peak_bytes"]
rows = [("ours, full fine-tuning", ours("ours_full"), 6),
        ("ours, LoRA r=16", ours("ours_lora"), 4),
        ("ours, LoRI-S r=16 (90% sparse B)", ours("ours_lori"), 4),
        ("PyTorch+PEFT LoRA r=16, eager", peft("eager"), 4),
        ("PyTorch+PEFT LoRA r=16, torch.compile", peft("compile"), 4)]
print("\nGPT-2 124M shape (d12), B=16, T=1024, bf16 on %s" % (gpu or "an unknown GPU"))
print("| %-38s | %12s | %6s | %14s |" % ("trainer", "tokens/s", "MFU", "peak GPU mem"))
print("|%s|%s|%s|%s|" % ("-" * 40, "-" * 14, "-" * 8, "-" * 16))
for name, r, k in rows:
    if r is None:
        print("| %-38s | %12s | %6s | %14s |" % (name, "failed", "", "")); continue
    tps, mem = r
    mfu = "%5.1f%%" % (100 * (k * N + 6 * L * C * T) * tps / peak) if peak else "n/a"
    print("| %-38s | %12.0f | %6s | %10.2f GiB |" % (name, tps, mfu, mem / 2**30))
lora, comp = ours("ours_lora"), peft("compile")
if lora and comp:
    print("\nLoRA: %.2fx PEFT-compiled tokens/s (target >= 1.5x), %.2fx its memory (target <= 1x)" % (lora[0] / comp[0], lora[1] / comp[1]))
lori = ours("ours_lori")
if lora and lori: print("LoRI-S / LoRA tokens/s: %.2f (target >= 1)" % (lori[0] / lora[0]))
full = ours("ours_full")
if full: print("full fine-tuning: %.0f tokens/s (llm.c: about 358k on an H200)" % full[0])
EOF
