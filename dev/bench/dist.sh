#!/bin/sh
# dev/bench/dist.sh — data-parallel speed: tokens/s and the all-reduce's share of a step.
#   sh dev/bench/dist.sh            the CPU side: ranks x threads on this machine (1x1, 1xN, Nx1, ...)
#   GPU=1 sh dev/bench/dist.sh      the GPU side too: 1, 2, 4, 8 GPUs (as many as nvidia-smi lists)
# CPU: the same total batch in every configuration (RANKS x ACCUM micro-batches of B x T), so the
# runs train the same model; tokens/s from the median step of train.csv after the first; the
# all-reduce's ms per step from CPU_PROFILE's "gradient all-reduce" line (rank 0's: it includes the
# wait for the slower rank, so it is the communication's cost, not the wire's). MODEL, B, T,
# STEPS, MB (micro-batches per step) change the shape (default: the tiny model, B=16 T=64, 4 of them).
# GPU: GPT-2 124M's shape (-e d12), B=16, T=1024 per GPU, bf16, full fine-tuning and LoRA r=16;
# efficiency = tokens/s / (N x one GPU's). NCCL_NVLS_ENABLE=0 (NVLink multicast off) throughout.
# Results go to dev/bench/out/dist/ and a table to stdout; dev/bench/dist_model.py turns the
# measured step times and the links' bandwidths into the README's scaling model.
set -e
cd "$(dirname "$0")/../.."
OUT=${BENCH_OUT:-dev/bench/out}/dist
mkdir -p "$OUT"
MPIRUN=${MPIRUN:-"mpirun --allow-run-as-root --oversubscribe --bind-to none"}
MODEL=${MODEL:-L=4,C=128,H=4,V=257,T=128}
B=${B:-16} T=${T:-64} STEPS=${STEPS:-30} MB=${MB:-4}
CORES=$(nproc)
export NCCL_NVLS_ENABLE=0

[ -n "$NO_BUILD" ] || make -s train_lora make_tasks >/dev/null
[ -f data/tasks/classify_train.bin ] || ./make_tasks -q

# median of a train.csv's ms column over the steps after the first
median_ms() { awk -F, 'NR > 2 && $2 != "" { print $6 }' "$1/train.csv" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $CORES cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model $MODEL, B=$B T=$T, $MB micro-batches per step ($((MB * B * T)) tokens), $STEPS steps"
printf "| variant | ranks x threads | ms/step | tokens/s | all-reduce ms/step | bytes all-reduced/step |\n|---|---|---:|---:|---:|---:|\n"
for variant in none lora; do
    done21=
    for cfg in "1 1" "1 $CORES" "$CORES 1" "2 $((CORES / 2))"; do
        set -- $cfg
        r=$1 th=$2
        [ "$th" -ge 1 ] && [ $((MB % r)) = 0 ] || continue
        [ "$r $th" != "2 1" ] || [ "$CORES" != 2 ] || [ -z "$done21" ] || continue
        [ "$r $th" != "2 1" ] || done21=1
        d="$OUT/cpu_${variant}_${r}x${th}"
        flags="-e $MODEL -i data/tasks/classify_train.bin -b $B -t $T -d $((MB * B * T)) -x $STEPS -l 1e-3 -v 0 -s 0 --threads $th --adapter $variant -o $d"
        if [ "$r" = 1 ]; then CPU_PROFILE=1 ./train_lora $flags > "$d.log" 2>&1
        else CPU_PROFILE=1 $MPIRUN -np "$r" ./train_lora $flags > "$d.log" 2>&1; fi
        ms=$(median_ms "$d")
        ar=$(awk '/gradient all-reduce/ { print $(NF-2) }' "$d.log")
        n=$(awk '/^parameters:/ { print $4 }' "$d.log")
        printf "| %s | %s x %s | %s | %.0f | %s | %s |\n" "$variant" "$r" "$th" "$ms" "$(awk "BEGIN { print $MB * $B * $T * 1000 / $ms }")" \
            "${ar:-0}" "$([ "$r" = 1 ] && echo 0 || echo $((n * 4)))"
    done
done

[ -n "$GPU" ] || exit 0
NGPU=$(nvidia-smi -L | wc -l)
[ -n "$NO_BUILD" ] || make -s train_gpt2cu train_loracu
python3 - "$OUT/bench_train.bin" $(( (STEPS + 2) * 16 * 1024 * NGPU + 1 )) <<'EOF'
import os, sys, array, random
path, n = sys.argv[1], int(sys.argv[2])
if not (os.path.exists(path) and os.path.getsize(path) == 1024 + 2 * n):
    random.seed(1234)
    tok = array.array("H", (random.randrange(50257) for _ in range(n)))
    with open(path, "wb") as f:
        f.write(array.array("i", [20240520, 1, n] + [0] * 253).tobytes())
        f.write(tok.tobytes())
EOF
echo "GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) x $NGPU"
printf "| trainer | GPUs | ms/step | tokens/s | efficiency |\n|---|---:|---:|---:|---:|\n"
for bin in train_gpt2cu train_loracu; do
    one=
    for n in 1 2 4 8; do
        [ "$n" -le "$NGPU" ] || break
        d="$OUT/gpu_${bin}_$n"
        flags="-e d12 -i $OUT/bench_train.bin -b 16 -t 1024 -d $((16 * 1024 * n)) -x $STEPS -l 1e-4 -v 0 -s 0 --rank 16 -o $d"
        $MPIRUN -np "$n" -x NCCL_NVLS_ENABLE ./$bin $flags > "$d.log" 2>&1
        ms=$(median_ms "$d")
        tps=$(awk "BEGIN { print $n * 16 * 1024 * 1000 / $ms }")
        [ -n "$one" ] || one=$tps
        printf "| %s | %d | %s | %.0f | %.1f%% |\n" "$bin" "$n" "$ms" "$tps" "$(awk "BEGIN { print 100 * $tps / ($n * $one) }")"
    done
done
