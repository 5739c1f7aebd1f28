#!/bin/bash
# dev/bench/cpu.sh — this project's CPU trainer vs PyTorch (Debian's python3-torch on OpenBLAS),
# measured in the same run on the same machine, plus our matrix product vs OpenBLAS's sgemm.
#   bash dev/bench/cpu.sh            (from the repository root; THREADS=2 by default)
# Both sides run the same number of steps (STEPS_124M, STEPS_TINY); tokens/s is B*T over the MEDIAN
# step after the first (the first warms up), on both sides; the ratio of the means is printed too.
# Why medians: on a shared 2-core machine a single stalled step (another process, the hypervisor)
# moves a mean of 8 steps by tens of percent; and PyTorch's own step time varies by +-40% from step
# to step (much of it page faults: memory returned to the system and faulted back every step).
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

ours() { # model descriptor, shard, B, T, steps, adapter -> median ms per step, mean ms per step (after the first)
  ./train_gpt2 -e "$1" -i "$OUT/$2.bin" -b "$3" -t "$4" -x "$5" --adapter "$6" --rank 16 -v 0 -s 0 --threads "$THREADS" \
    --print-every 1 | awk '/^step +[0-9]+\/[0-9]+ \|/ { for (i = 1; i < NF; i++) if ($(i + 1) == "ms") { n++; if (n > 1) t[n - 1] = $i } }
      END { m = n - 1; for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (t[j] < t[i]) { x = t[i]; t[i] = t[j]; t[j] = x }
            s = 0; for (i = 1; i <= m; i++) s += t[i]; print (t[int((m + 1) / 2)] + t[int(m / 2) + 1]) / 2, s / m }'
}
theirs() { # layers channels heads vocab ctx B T steps lora -> median ms per step, mean ms per step
  [ $have_torch = 1 ] || { echo "nan nan"; return; }
  $PY dev/bench/torch_gpt2.py --layers "$1" --channels "$2" --heads "$3" --vocab "$4" --ctx "$5" --batch "$6" --seq "$7" \
    --steps "$8" --lora "$9" --threads "$THREADS" | awk '{print $8, $6}'
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads, load $(cut -d' ' -f1-3 /proc/loadavg); steps: 124M $S124, tiny $STINY; tokens/s from the median step after the first"
printf "\n| %-28s | %14s | %14s | %8s | %13s |\n" "config" "ours tok/s" "PyTorch tok/s" "ratio" "ratio (means)"
printf "|%s|%s|%s|%s|%s|\n" "------------------------------" "----------------" "----------------" "----------" "---------------"
declare -A R
run() { # label, ours args..., theirs args...
  local label=$1; shift
  read -r omed omean < <(ours "$1" "$2" "$3" "$4" "$5" "$6")
  read -r tmed tmean < <(theirs "${@:7}")
  R[$label]=$omed
  local tok=$(( $3 * $4 ))
  printf "| %-28s | %14s | %14s | %8s | %13s |\n" "$label" "$(awk -v t=$tok -v m="$omed" 'BEGIN{printf "%.0f", 1000*t/m}')" \
    "$(awk -v t=$tok -v m="$tmed" 'BEGIN{ if (m+0>0) printf "%.1f", 1000*t/m; else print "-" }')" \
    "$(awk -v a="$omed" -v b="$tmed" 'BEGIN{ if (b+0>0) printf "%.2fx", b/a; else print "-" }')" \
    "$(awk -v a="$omean" -v b="$tmean" 'BEGIN{ if (b+0>0) printf "%.2fx", b/a; else print "-" }')"
}
run "124M full, B=4 T=64"      d12 gpt2 4 64 "$S124" none   12 768 12 50257 1024 4 64 "$S124" 0
run "124M LoRA r=16, B=4 T=64" d12 gpt2 4 64 "$S124" lora   12 768 12 50257 1024 4 64 "$S124" 16
run "tiny full, B=16 T=128"    "L=4,C=128,H=4,V=257,T=128" bytes 16 128 "$STINY" none   4 128 4 257 128 16 128 "$STINY" 0
run "tiny LoRA r=16, B=16 T=128" "L=4,C=128,H=4,V=257,T=128" bytes 16 128 "$STINY" lora 4 128 4 257 128 16 128 "$STINY" 16
echo
echo "124M median step time: LoRA ${R["124M LoRA r=16, B=4 T=64"]} ms / full ${R["124M full, B=4 T=64"]} ms = $(awk -v a="${R["124M LoRA r=16, B=4 T=64"]}" -v b="${R["124M full, B=4 T=64"]}" 'BEGIN{printf "%.2f", a/b}')"
echo
if [ -f dev/bench/gemm.sh ]; then bash dev/bench/gemm.sh || echo "(gemm table skipped: see dev/bench/gemm.sh)"; fi
