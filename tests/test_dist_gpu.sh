#!/bin/sh
# tests/test_dist_gpu.sh — the GPU trainer's NCCL path at world size 1, on one GPU.
#  1. ./test_nccl under mpirun -np 1 (tests/test_nccl.c): the communicator from the MPI-broadcast id,
#     and an exact all-reduce on the stream. Under mpirun -np N on N GPUs the same program checks
#     the sum over N ranks (issue #17).
#  2. `mpirun -np 1 ./train_loracu ...` (NCCL's all-reduce of the trainable gradients over a
#     one-rank communicator) against the same run without mpirun, for full fine-tuning, LoRA, LoRI
#     (D then S) and PLoRA, in fp32, by tests/dist_compare.h's criteria (losses within 1e-6
#     relative, final parameters within 1e-6 of the largest entry); and full fine-tuning with -z 1
#     (ZeRO-1: one shard, through NCCL's reduce-scatter and all-gather) against the plain run.
#  3. The control: the same run twice without mpirun must agree by the same criteria. cuBLASLt's
#     algorithm is its heuristic's first choice (cuda/gemm.cuh), the same in every process; with
#     GPU_GEMM_AUTOTUNE=1 (timed choice) two runs could differ in the last bits (seen in bf16 on an
#     H200, 2026-12-01: LoRA's first loss 5.490594 vs 5.490679, before any all-reduce).
# Needs a GPU, NCCL and mpirun. From the repository root:
#   make train_loracu test_nccl dist_compare make_tasks && sh tests/test_dist_gpu.sh
set -u
BIN=${BIN:-./train_loracu}
D=${D:-/tmp/test_dist_gpu}
unset GPU_GEMM_AUTOTUNE
export NCCL_NVLS_ENABLE=0 # NVLink multicast stays off on shared machines
MPIRUN="mpirun --allow-run-as-root -np 1 -x NCCL_NVLS_ENABLE"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok:   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

rm -rf "$D" && mkdir -p "$D" && ./make_tasks -q -o "$D/tasks" || { echo "FAIL: cannot write the task suite"; exit 1; }
if ldd "$BIN" | grep -q "libnccl.*not found"; then
    bad "$BIN: libnccl not found at run time (the rpath); going on with LD_LIBRARY_PATH"
    export LD_LIBRARY_PATH="$(python3 -c 'import nvidia.nccl as m; print(m.__path__[0])')/lib:${LD_LIBRARY_PATH:-}"
fi
if $MPIRUN ./test_nccl > "$D/test_nccl.log" 2>&1; then ok "test_nccl: $(grep -m1 'summed' "$D/test_nccl.log")"
else bad "test_nccl (log below)"; cat "$D/test_nccl.log"; fi
COMMON="--precision fp32 -e L=2,C=64,H=4,V=257,T=64 -i $D/tasks/classify_train.bin -j $D/tasks/classify_val.bin -b 4 -t 32 -d 256
        -l 1e-2 -v 3 -m 4 -s 0 --print-every 1 --rank 4 --alpha 8 --grad-clip 0"

# run NAME LAUNCHER FLAGS...: the trainer into $D/NAME (log $D/NAME.log)
run() {
    rname=$1 rlaunch=$2; shift 2
    $rlaunch $BIN $COMMON "$@" -o "$D/$rname" > "$D/$rname.log" 2>&1 || { bad "$rname: exit status $? (log below)"; tail -20 "$D/$rname.log"; return 1; }
}

# variant NAME model|adapter FLAGS...: plain vs mpirun -np 1, compared
variant() {
    v=$1 vkind=$2; shift 2
    run "${v}_plain" "" "$@" || return
    run "${v}_nccl" "$MPIRUN" "$@" || return
    if grep -q "NCCL data parallel: 1 rank, rank 0 on GPU 0" "$D/${v}_nccl.log"; then ok "$v: the mpirun run used NCCL"
    else bad "$v: no 'NCCL data parallel' in the mpirun run's log (built without NCCL?)"; fi
    if ./dist_compare "$D/${v}_nccl" "$D/${v}_plain" "$vkind"; then ok "$v: NCCL (world size 1) = without NCCL"
    else bad "$v: NCCL (world size 1) differs from the run without NCCL"; fi
}

variant lora adapter --adapter lora -x 8
variant lori adapter --adapter lori --lori-stage ds -x 5 --sparsity 0.8
variant plora model --adapter plora -x 8 --plora-every 3
variant full model --adapter none -x 6 -l 1e-3
# ZeRO-1 at world size 1: the sharded path (reduce-scatter, the shard's norm, all-gather) with one shard
variant zero model --adapter none -x 6 -l 1e-3 -c 0.1 -z 1
if grep -q "ZeRO-1: AdamW's moments sharded over 1 rank" "$D/zero_nccl.log"; then ok "zero: the mpirun run sharded (ZeRO-1)"
else bad "zero: no ZeRO-1 line in the mpirun run's log"; fi
# control: the same run twice without NCCL
control() {
    v=$1 vkind=$2; shift 2
    run "${v}_control" "" "$@" || return
    if ./dist_compare "$D/${v}_control" "$D/${v}_plain" "$vkind"; then ok "$v: two runs without NCCL agree (reproducible)"
    else bad "$v: two runs without NCCL differ (is GPU_GEMM_AUTOTUNE set?)"; fi
}
control lora adapter --adapter lora -x 8
control full model --adapter none -x 6 -l 1e-3
grep -h "^model:" "$D/lora_nccl.log"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
