#!/bin/sh
# dev/bench/gpu.sh — GPT-2 124M's shape on this GPU: our CUDA trainers next to llm.c and PyTorch + PEFT,
# and the tiny comparison model's step; one table, every ratio from this one run.
#   sh dev/bench/gpu.sh                 (from anywhere; builds what it needs; STEPS=30 PEFT_STEPS=20 to change)
#   SKIP_PEFT=1 / PEFT_MODES=compile   no PyTorch rows / only the compiled one
#   LLMC_DIR=path/to/llm.c              llm.c's train_gpt2cu rows, built here with and without cuDNN (on a copy,
#                                       with the one patch CUDA 13 needs: cudaMemAdvise takes a cudaMemLocation)
#   USE_CUDNN=1                         our rows also from the USE_CUDNN=1 build (cuda/cuda.mk finds cuDNN and
#                                       cudnn-frontend; CUDNN_FRONTEND_PATH= is passed on, to llm.c's build too;
#                                       every other build is made with USE_CUDNN=0 explicitly)
#   BASE_DIR=path/to/older/checkout     the tiny model's step timed with that version's binaries too
#   BUILD_ONLY=1 / NO_BUILD=1           stop after the builds / use the last ones (the tests, test_gpt2cu, are
#                                       built beside each flavour's trainers in $OUT/src_plain, $OUT/src_cudnn)
# Shape: -e d12 (12 layers, 12 heads, 768 channels, vocab 50257 padded to 50304), random init,
# B=16, T=1024, bf16, one random uint16 shard written here. Rows: full fine-tuning, LoRA r=16 and
# LoRI-S r=16 (90% sparse random mask: the speed of any mask) on all four linear layers of every
# block; llm.c: full fine-tuning (its defaults: recompute GELU, -r 1; and -r 0); PEFT: LoRA r=16 on
# c_attn, c_proj, c_fc (the same four matrices), bf16 autocast, eager and torch.compile
# (dev/bench/peft_bench.py). Tiny: L=4, C=128, H=4, V=257, B=16, T=64 (the comparison's model), LoRA
# r=16 and full fine-tuning, TINY_STEPS=300.
# tokens/s: ours and llm.c's = B*T / the median step time of steps 6.. (ours: each step synchronised,
# data loading included); PEFT's = B*T*steps / wall time of the timed steps.
# MFU = FLOPs/token * tokens/s / 989 TFLOP/s (H100/H200 SXM dense bf16), FLOPs/token = 6N + 6LCT for
# full fine-tuning and 4N + 6LCT with a frozen base (no weight gradients), N = 124.4M parameters,
# 6LCT the causal attention (forward + backward). Peak memory: ours = every device buffer the trainer
# allocates (parameters, optimizer, activations, scratch, cuBLASLt and cuDNN workspaces); PEFT's =
# torch.cuda.max_memory_allocated. Neither counts the CUDA context.
set -e
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${BENCH_OUT:-dev/bench/out}
STEPS=${STEPS:-30}
PEFT_STEPS=${PEFT_STEPS:-20}
TINY_STEPS=${TINY_STEPS:-300}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
J=$(nproc 2>/dev/null || echo 4)
FE=${CUDNN_FRONTEND_PATH:-$(for d in "$HOME/cudnn-frontend/include" cudnn-frontend/include; do [ -f "$d/cudnn_frontend.h" ] && { cd "$d"; pwd; } && break; done)}
CUDNN_DIR=$(python3 -c "import nvidia.cudnn as m; print(m.__path__[0])" 2>/dev/null || true)

# ---- builds, all at once (then nothing else competes with the timed runs for the CPU)
BINS="train_gpt2cu train_loracu train_loricu"
build_ours() { # flavour (plain|cudnn)
  d=$OUT/src_$1; rm -rf "$d"; mkdir -p "$d" "$OUT/bin_$1"
  tar -C "$ROOT" --exclude=./build --exclude=./dev/bench/out --exclude=./.git -cf - . | tar -C "$d" -xf -
  if [ "$1" = cudnn ]; then flags="USE_CUDNN=1 CUDNN_FRONTEND_PATH=$FE"; else flags="USE_CUDNN=0"; fi
  (cd "$d" && make -s -j"$J" -f cuda/cuda.mk $flags $BINS test_gpt2cu && cp $BINS "$OUT/bin_$1/") > "$OUT/build_$1.log" 2>&1
}
build_llmc() { # flavour (plain|cudnn)
  d=$OUT/llmc_$1; rm -rf "$d"; cp -r "$LLMC_DIR" "$d"
  sed -i 's/cudaMemAdviseSetPreferredLocation, cudaCpuDeviceId)/cudaMemAdviseSetPreferredLocation, cudaMemLocation{cudaMemLocationTypeHost, 0})/' "$d/llmc/cuda_utils.cuh"
  mkdir -p "$d/libs"; ld="-lcublas -lcublasLt -lnvidia-ml -L/usr/local/cuda/lib64/stubs"; extra="USE_CUDNN=0"
  if [ "$1" = cudnn ]; then
    ln -sf "$CUDNN_DIR/lib/libcudnn.so.9" "$d/libs/libcudnn.so"   # (the wheel has no unversioned one)
    [ -e "$d/cudnn-frontend" ] || ln -s "$(dirname "$FE")" "$d/cudnn-frontend"  # where llm.c's Makefile looks
    ld="$ld -L$d/libs -lcudnn -lnvrtc -lcuda -Xlinker -rpath,$CUDNN_DIR/lib"; extra="USE_CUDNN=1 CUDNN_FRONTEND_PATH=$FE"
  fi
  (cd "$d" && make -j"$J" train_gpt2cu NO_MULTI_GPU=1 NO_USE_MPI=1 GPU_COMPUTE_CAPABILITY=90 $extra \
     NVCC_INCLUDES="-I$FE -I$CUDNN_DIR/include" NVCC_LDFLAGS="$ld") > "$OUT/build_llmc_$1.log" 2>&1
}
if [ -z "$NO_BUILD" ]; then
  echo "== building (logs in $OUT/build_*.log)" >&2
  build_ours plain & p1=$!
  p2=; p3=; p4=; p5=
  if [ -n "$USE_CUDNN" ]; then build_ours cudnn & p2=$!; fi
  if [ -n "$LLMC_DIR" ]; then build_llmc plain & p3=$!; build_llmc cudnn & p4=$!; fi
  if [ -n "$BASE_DIR" ]; then
    (cd "$BASE_DIR" && make -s -j"$J" -f cuda/cuda.mk USE_CUDNN=0 train_loracu train_gpt2cu) > "$OUT/build_base.log" 2>&1 & p5=$!
  fi
  for p in $p1 $p2 $p3 $p4 $p5; do wait $p || echo "a build failed (pid $p): see $OUT/build_*.log" >&2; done
fi
[ -z "$BUILD_ONLY" ] || exit 0

# ---- data: one random shard for 124M's shape, one for the tiny model
python3 dev/bench/bench_data.py "$OUT" $(( (STEPS + 2) * 16 * 1024 + 1 )) $(( (TINY_STEPS + 2) * 16 * 64 + 1 )) || exit 1

# ---- the runs
COMMON="-e d12 -i $OUT/bench_train.bin -b 16 -t 1024 -x $STEPS -l 1e-4 -s 0 -v 0 --shuffle 0 --print-every 1"
TINY="-e L=4,C=128,H=4,V=257,T=128 -i $OUT/bench_tiny.bin -b 16 -t 64 -x $TINY_STEPS -l 1e-3 -s 0 -v 0 --shuffle 0 --print-every 1000"
run() { # name binary flags...
  name=$1; bin=$2; shift 2
  echo "== $name: $bin $*" >&2
  timeout 300 "$bin" "$@" > "$OUT/$name.log" 2>&1 || { echo "$name failed:" >&2; tail -5 "$OUT/$name.log" >&2; }
}
for fl in plain cudnn; do
  [ -x "$OUT/bin_$fl/train_gpt2cu" ] || continue
  run ours_${fl}_full "$OUT/bin_$fl/train_gpt2cu" $COMMON --adapter none
  run ours_${fl}_lora "$OUT/bin_$fl/train_loracu" $COMMON --adapter lora --rank 16 --targets all
  run ours_${fl}_lori "$OUT/bin_$fl/train_loricu" $COMMON --adapter lori --lori-stage s --mask random --sparsity 0.9 --rank 16 --targets all
done
# the tiny model: our newest build (its train.csv has the step times to 1 us), and BASE_DIR's
TB=$OUT/bin_plain
for side in new base; do
  d=$TB; [ $side = base ] && { [ -n "$BASE_DIR" ] && d=$BASE_DIR || continue; }
  run tiny_${side}_lora "$d/train_loracu" $TINY --adapter lora --rank 16 --targets all -o "$OUT/tiny_${side}_lora"
  run tiny_${side}_full "$d/train_gpt2cu" $TINY --adapter none -o "$OUT/tiny_${side}_full"
done
if [ -n "$LLMC_DIR" ]; then
  LL="-e d12 -i $OUT/bench_train.bin -j $OUT/bench_train.bin -b 16 -t 1024 -x $STEPS -v 100000 -s 100000 -m 1 -h 0"
  for fl in plain cudnn; do
    [ -x "$OUT/llmc_$fl/train_gpt2cu" ] || continue
    (cd "$OUT/llmc_$fl" && LD_LIBRARY_PATH="$CUDNN_DIR/lib:$LD_LIBRARY_PATH" run llmc_${fl} ./train_gpt2cu $LL)
    (cd "$OUT/llmc_$fl" && LD_LIBRARY_PATH="$CUDNN_DIR/lib:$LD_LIBRARY_PATH" run llmc_${fl}_r0 ./train_gpt2cu $LL -r 0)
  done
fi
if [ -z "$SKIP_PEFT" ]; then
  for mode in ${PEFT_MODES:-eager compile}; do
    echo "== peft_$mode" >&2
    timeout 400 python3 dev/bench/peft_bench.py --mode $mode --steps $PEFT_STEPS > "$OUT/peft_$mode.json" 2> "$OUT/peft_$mode.err" \
      || { echo "peft $mode failed:" >&2; tail -5 "$OUT/peft_$mode.err" >&2; }
  done
fi

# ---- the table
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
python3 - "$OUT" "$GPU" <<'EOF'
import json, os, re, statistics, sys
out, gpu = sys.argv[1], sys.argv[2]
N, L, C, T, BT = 124475904, 12, 768, 1024, 16 * 1024
peak = 989e12 if ("H100" in gpu or "H200" in gpu) else None
def read(name):
    try: return open(os.path.join(out, name + ".log")).read()
    except OSError: return None
def ours(name):
    txt = read(name)
    if txt is None: return None
    ms = [float(m) for m in re.findall(r"^step\s+\d+/\d+ \|.*?\| ([0-9.]+) ms \|", txt, re.M)]
    mem = re.findall(r"peak ([0-9.]+) MiB", txt)
    if len(ms) < 6: return None
    return BT / (statistics.median(ms[5:]) / 1000), float(mem[-1]) * 2**20 if mem else float("nan")
def llmc(name):
    txt = read(name)
    if txt is None: return None
    ms = [float(m) for m in re.findall(r"^step\s+\d+/\d+ \|.*?\| ([0-9.]+) ms \|", txt, re.M)]
    if len(ms) < 6: return None
    return BT / (statistics.median(ms[5:]) / 1000), float("nan")
def peft(mode):
    try: j = json.loads(open(os.path.join(out, "peft_%s.json" % mode)).read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError): return None
    return j["tok_per_s"], j["peak_bytes"]
def tiny(name): # median step (ms) of steps 11.. from train.csv (column 6: ms, 3 decimals)
    try: rows = open(os.path.join(out, name, "train.csv")).read().strip().splitlines()[1:]
    except OSError: return None
    ms = [float(r.split(",")[5]) for r in rows if len(r.split(",")) >= 7]
    return statistics.median(ms[10:]) if len(ms) > 20 else None
def best(*rs):
    rs = [r for r in rs if r]
    return max(rs, key=lambda r: r[0]) if rs else None
R = {}
for fl in ("plain", "cudnn"):
    for k in ("full", "lora", "lori"): R[fl + "_" + k] = ours("ours_%s_%s" % (fl, k))
R["llmc_plain"] = best(llmc("llmc_plain"), llmc("llmc_plain_r0"))
R["llmc_cudnn"] = best(llmc("llmc_cudnn"), llmc("llmc_cudnn_r0"))
R["peft_eager"], R["peft_compile"] = peft("eager"), peft("compile")
rows = [("ours, full fine-tuning", "plain_full", 6), ("ours, LoRA r=16", "plain_lora", 4),
        ("ours, LoRI-S r=16 (90% sparse B)", "plain_lori", 4),
        ("ours + cuDNN attention, full FT", "cudnn_full", 6), ("ours + cuDNN attention, LoRA r=16", "cudnn_lora", 4),
        ("ours + cuDNN attention, LoRI-S r=16", "cudnn_lori", 4),
        ("llm.c train_gpt2cu (best of -r 1, -r 0)", "llmc_plain", 6), ("llm.c train_gpt2cu, USE_CUDNN=1", "llmc_cudnn", 6),
        ("PyTorch+PEFT LoRA r=16, eager", "peft_eager", 4), ("PyTorch+PEFT LoRA r=16, torch.compile", "peft_compile", 4)]
print("\nGPT-2 124M shape (d12), B=16, T=1024, bf16 on %s" % (gpu or "an unknown GPU"))
print("| %-40s | %12s | %6s | %14s |" % ("trainer", "tokens/s", "MFU", "peak GPU mem"))
print("|%s|%s|%s|%s|" % ("-" * 42, "-" * 14, "-" * 8, "-" * 16))
for name, key, k in rows:
    r = R.get(key)
    if r is None:
        print("| %-40s | %12s | %6s | %14s |" % (name, "not run" if key.startswith(("cudnn", "llmc")) else "failed", "", "")); continue
    tps, mem = r
    mfu = "%5.1f%%" % (100 * (k * N + 6 * L * C * T) * tps / peak) if peak else "n/a"
    print("| %-40s | %12.0f | %6s | %14s |" % (name, tps, mfu, "%10.2f GiB" % (mem / 2**30) if mem == mem else ""))
def ratio(a, b, what, target):
    if R.get(a) and R.get(b): print("%-62s %.2fx (target %s)" % (what, R[a][0] / R[b][0], target))
print()
for fl in ("plain", "cudnn"):
    tag = "" if fl == "plain" else " (cuDNN build)"
    ratio(fl + "_full", "llmc_cudnn", "full FT / llm.c with cuDNN%s:" % tag, ">= 1.2x")
    ratio(fl + "_full", "llmc_plain", "full FT / llm.c without cuDNN%s:" % tag, "-")
    ratio(fl + "_lora", "peft_compile", "LoRA / PEFT-compiled tokens/s%s:" % tag, ">= 2x")
    if R.get(fl + "_lora") and R.get("peft_compile"):
        print("%-62s %.2fx (target <= 1x)" % ("LoRA / PEFT-compiled GPU memory%s:" % tag, R[fl + "_lora"][1] / R["peft_compile"][1]))
    ratio(fl + "_lori", fl + "_lora", "LoRI-S / LoRA tokens/s%s:" % tag, ">= 1")
print("\ntiny model (L=4, C=128, V=257, B=16, T=64), median ms per step (train.csv):")
for k in ("lora", "full"):
    a, b = tiny("tiny_new_" + k), tiny("tiny_base_" + k)
    line = "  %-5s this build %s" % (k, "%.3f ms" % a if a else "failed")
    if b: line += ", BASE_DIR's %.3f ms: %.2fx faster (target >= 3x for LoRA)" % (b, b / a if a else 0)
    print(line)
EOF
