#!/bin/bash
# dev/bench/cpu.sh — this project's CPU trainer vs PyTorch (Debian's python3-torch on OpenBLAS),
# measured in the same run on the same machine, plus our matrix product vs OpenBLAS's sgemm.
#   bash dev/bench/cpu.sh            (from the repository root; THREADS=2 by default)
# Both sides run the same number of steps (STEPS_124M, STEPS_TINY) and report the mean step after
# the first. PyTorch's step time varies by +-40% from step to step here (most of its time is page
# faults and memory returned to the system), hence the many steps.
# Needs: a C compiler; /usr/bin/python3 with torch (apt-get install python3-torch libopenblas0-pthread)
# for the PyTorch columns; libopenblas-dev for the GEMM table (dev/bench/gemm.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${THREADS:-2}
S124=${STEPS_124M:-8}
STINY=${STEPS_TINY:-30}
OUT=dev/bench/out
mkdir -p "$OUT"
make -s train_gpt2 >/dev/null
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
PY=/usr/bin/python3
have_torch=1
$PY -c "import torch" 2>/dev/null || { have_torch=0; echo "note: /usr/bin/python3 has no torch: PyTorch columns skipped (apt-get install python3-torch libopenblas0-pthread)"; }

# random-token shards for each vocabulary
$PY - <<'PY'
import random, struct
for name, V in [("gpt2", 50257), ("bytes", 257)]:
    random.seed(1); n = 300000
    with open(f"dev/bench/out/{name}.bin", "wb") as f:
        f.write(struct.pack("<256i", *([20240520, 1, n] + [0] * 253)))
        f.write(struct.pack(f"<{n}H", *[random.randrange(V) for _ in range(n)]))
PY

ours() { # model descriptor, shard, B, T, steps, adapter -> tokens/s and ms per step (mean after the first step)
  ./train_gpt2 -e "$1" -i "$OUT/$2.bin" -b "$3" -t "$4" -x "$5" --adapter "$6" --rank 16 -v 0 -s 0 --threads "$THREADS" \
    --print-every 1000 | awk '/^average step/ {print $5, $3}'
}
theirs() { # layers channels heads vocab ctx B T steps lora
  [ $have_torch = 1 ] || { echo "nan nan"; return; }
  $PY dev/bench/torch_gpt2.py --layers "$1" --channels "$2" --heads "$3" --vocab "$4" --ctx "$5" --batch "$6" --seq "$7" \
    --steps "$8" --lora "$9" --threads "$THREADS" | awk '{print $4, $6}'
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads, load $(cut -d' ' -f1-3 /proc/loadavg); steps: 124M $S124, tiny $STINY (mean after the first)"
printf "\n| %-28s | %14s | %14s | %8s |\n" "config" "ours tok/s" "PyTorch tok/s" "ratio"
printf "|%s|%s|%s|%s|\n" "------------------------------" "----------------" "----------------" "----------"
declare -A R
run() { # label, ours args..., theirs args...
  local label=$1; shift
  read -r ot oms < <(ours "$1" "$2" "$3" "$4" "$5" "$6")
  read -r tt tms < <(theirs "${@:7}")
  R[$label]=$oms
  printf "| %-28s | %14s | %14s | %8s |\n" "$label" "$ot" "$tt" "$(awk -v a="$ot" -v b="$tt" 'BEGIN{ if (b+0>0) printf "%.2fx", a/b; else print "-" }')"
}
run "124M full, B=4 T=64"      d12 gpt2 4 64 "$S124" none   12 768 12 50257 1024 4 64 "$S124" 0
run "124M LoRA r=16, B=4 T=64" d12 gpt2 4 64 "$S124" lora   12 768 12 50257 1024 4 64 "$S124" 16
run "tiny full, B=16 T=128"    "L=4,C=128,H=4,V=257,T=128" bytes 16 128 "$STINY" none   4 128 4 257 128 16 128 "$STINY" 0
run "tiny LoRA r=16, B=16 T=128" "L=4,C=128,H=4,V=257,T=128" bytes 16 128 "$STINY" lora 4 128 4 257 128 16 128 "$STINY" 16
echo
echo "124M step time: LoRA ${R["124M LoRA r=16, B=4 T=64"]} ms / full ${R["124M full, B=4 T=64"]} ms = $(awk -v a="${R["124M LoRA r=16, B=4 T=64"]}" -v b="${R["124M full, B=4 T=64"]}" 'BEGIN{printf "%.2f", a/b}')"
echo
if [ -f dev/bench/gemm.sh ]; then bash dev/bench/gemm.sh || echo "(gemm table skipped: see dev/bench/gemm.sh)"; fi
