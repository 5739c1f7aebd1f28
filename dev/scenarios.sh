#!/bin/bash
# dev/scenarios.sh — record the CPU trainers' observable behaviour, to check that a change that
# should not change behaviour (a restructuring) does not.
#   bash dev/scenarios.sh OUTDIR [BINDIR]   runs every scenario with BINDIR's binaries (default .)
#   bash dev/scenarios.sh --diff A B        compares two recorded OUTDIRs, timings aside (exit 1 on a difference)
# BINDIR must hold train_gpt2, train_lora, train_lori, train_plora, merge_adapters, compare and
# make_tasks built from one tree, run from that tree's root (the embedded default caches its base
# model in out/base; give BINDIR as a relative path, ".": the command lines stored in adapter files
# name the binary). Two recordings cannot run at the same time (one work folder, /tmp/scenarios.work). Every scenario runs with 2 threads, so the results are bit for bit
# reproducible. Recorded per scenario: stdout+stderr with timings blanked (ms, tok/s, ETA, seconds),
# train.csv without its timing columns, and every output file's bytes (SHA-256); MANIFEST lists them.
# Scenarios: full fine-tuning, LoRA (dropout, rsLoRA, gaussian), LoRI-D, LoRI-S (mask file),
# LoRI ds (model/layer/matrix/random masks), PLoRA (plain, momentum, stage schedule), grad
# accumulation, resume mid-phase (LoRI ds and PLoRA), PEFT out and in, merge_adapters (each method),
# --merge-out, --eval-em, ./compare --quick, and the embedded default (./train_lori, no flags).
set -eu
# what varies between two runs of the same code: the machine's load and every duration
timing() {
  sed -E -e 's/load average [0-9.]+/load average _/g' -e 's/_ at the start, [0-9.]+ at the end/_ at the start, _ at the end/' -e 's/done in [0-9hm_]+s/done in _/' -e 's/(elapsed|wall time) [0-9hm_]+s/\1 _/g' -e 's/ +_s/ _s/g' \
         -e 's/ +_ (ms|tok\/s)/ _ \1/g' -e 's/\| [0-9.]+ +\| [0-9.]+ +\|$/| _ | _ |/' -e '/"[a-z_]*(seconds|per_second)": /d' \
         -e 's/\| [0-9.]+ +\|$/| _ |/' -e '/  log\.txt$/d'
}
if [ "${1:-}" = "--diff" ]; then
  [ $# -eq 3 ] || { echo "usage: $0 --diff A B" >&2; exit 2; }
  status=0; n=0
  for f in $(cd "$2" && find . -type f | sort); do
    n=$((n + 1))
    [ -f "$3/$f" ] || { echo "only in $2: $f"; status=1; continue; }
    if ! diff <(timing <"$2/$f") <(timing <"$3/$f") >/dev/null 2>&1; then
      echo "differs: $f"; diff <(timing <"$2/$f") <(timing <"$3/$f") | head -8; status=1
    fi
  done
  [ $status -eq 0 ] && echo "scenarios: identical ($n files, timings aside)" || echo "scenarios: DIFFERENT" >&2
  exit $status
fi
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [BINDIR] | --diff A B" >&2; exit 2; }
OUT=$(mkdir -p "$1" && cd "$1" && pwd); BIN=${2:-.}
# one fixed work folder: the runs' command lines (stored in adapter files) name their paths
W=/tmp/scenarios.work; rm -rf "$W"; mkdir -p "$W"; trap 'rm -rf "$W"' EXIT
D=data/tasks
[ -f $D/arith_train.bin ] || "$BIN/make_tasks" >/dev/null
M="-e L=2,C=64,H=2,V=257,T=64 --threads 2 -t 64 -b 4 -v 4 -s 4 -g 8 -m 4"
A="-i $D/arith_train.bin -j $D/arith_val.bin --eval-em $D/arith_test.bin --eval-examples 8"
S="-i $D/safety_train.bin -j $D/safety_val.bin --eval-em $D/safety_test.bin --eval-examples 8"

blank() { # timings out of a log: ms, tok/s, ETA, seconds, dates
  sed -E -e 's/[0-9.]+ ms/_ ms/g' -e 's/[0-9.]+ tok\/s/_ tok\/s/g' -e 's/ETA [0-9hms]+/ETA _/g' \
         -e 's/[0-9.]+ ?s\b/_s/g' -e 's/[0-9.]+ tokens\/s/_ tokens\/s/g' -e "s#$W#W#g"
}
record() { # record NAME DIR LOG: the run's files into OUT/NAME
  n=$1; d=$2; mkdir -p "$OUT/$n"; blank <"$3" >"$OUT/$n/log.txt"
  [ -d "$d" ] || return 0
  find "$d" -type f | sort | while read -r f; do
    rel=${f#"$d"/}; case "$rel" in
      *.csv) cut -d, -f1-5 "$f" >"$OUT/$n/$(echo "$rel" | tr / _)" ;;
      *.json|*.md|*.svg|*.txt) blank <"$f" >"$OUT/$n/$(echo "$rel" | tr / _)" ;;
      *) echo "$(sha256sum <"$f" | cut -c1-64)  $rel" >>"$OUT/$n/sha256.txt" ;;
    esac
  done
}
run() { # run NAME BINARY ARGS...: one training run in its own -o folder
  n=$1; b=$2; shift 2; rm -rf "$W/$n"
  "$BIN/$b" "$@" -o "$W/$n" >"$W/$n.log" 2>&1 || echo "exit $?" >>"$W/$n.log"
  record "$n" "$W/$n" "$W/$n.log"
}
run full      train_gpt2  $M $A -x 8 -l 1e-3
run full_accum train_gpt2 $M $A -x 4 -d 512 -k linear -u 2 -c 0.1
run lora      train_lora  $M $A -x 8 -l 3e-3 --dropout 0.1 --export-peft "$W/peft_lora" --merge-out "$W/lora/merged.bin"
record peft_lora_out "$W/peft_lora" /dev/null
run lora_rs   train_lora  $M $S -x 6 --rslora --init gaussian --targets qkv,fc --rank 4
run lora_peft_in train_lora $M $A -x 4 --import-peft "$W/peft_lora"
run lora_in   train_gpt2  $M $A -x 0 --adapter lora --adapter-in "$W/lora/adapter.bin"
run lori_d    train_lori  $M $A -x 8 --lori-stage d -l 5e-3
run lori_ds   train_lori  $M $S -x 6 -l 5e-3 --lori-steps-s 4
run lori_s    train_lori  $M $A -x 6 --lori-stage s --mask "$W/lori_ds/mask.bin"
for mk in layer matrix random; do run lori_mask_$mk train_lori $M $A -x 4 --mask $mk --sparsity 0.8; done
run lori_newa train_lori  $M $A -x 4 --lori-new-a --lori-init gaussian
run plora     train_plora $M $A -x 9 --plora-every 3 -l 3e-3
run plora_m   train_plora $M $A -x 9 --plora-every 3 --plora-momentum 0.5 --plora-schedule stage
# resume mid-phase: stop inside LoRI-S / inside a PLoRA stage, then resume; compare with uninterrupted
run lori_stop train_lori  $M $S -x 6 -l 5e-3 --lori-steps-s 4 --stop-at 8 -n 3
cp -r "$W/lori_stop" "$W/lori_resume"; "$BIN/train_lori" $M $S -x 6 -l 5e-3 --lori-steps-s 4 -o "$W/lori_resume" -y 1 >"$W/lr.log" 2>&1 || echo "exit $?" >>"$W/lr.log"
record lori_resume "$W/lori_resume" "$W/lr.log"
run plora_stop train_plora $M $A -x 9 --plora-every 3 -l 3e-3 --stop-at 4
cp -r "$W/plora_stop" "$W/plora_resume"; "$BIN/train_plora" $M $A -x 9 --plora-every 3 -l 3e-3 -o "$W/plora_resume" -y 1 >"$W/pr.log" 2>&1 || echo "exit $?" >>"$W/pr.log"
record plora_resume "$W/plora_resume" "$W/pr.log"
# merging: every method over LoRA's and LoRI-D's adapters
for mth in cat linear ties dare_linear dare_ties magnitude_prune svd; do
  mkdir -p "$W/merge_$mth"
  "$BIN/merge_adapters" -m $mth -w 0.6,0.4 --density 0.5 --seed 3 "$W/lora/adapter.bin" "$W/lori_d/adapter.bin" \
    -o "$W/merge_$mth/merged.bin" --export-peft "$W/merge_$mth/peft" >"$W/m.log" 2>&1 || echo "exit $?" >>"$W/m.log"
  record merge_$mth "$W/merge_$mth" "$W/m.log"
done
# bad input: a clear error and an exit status
run bad_flag  train_lora  $M $A -x 2 --rank 0
run bad_file  train_gpt2  -e /nonexistent.bin $A -x 2
# the comparison (CI profile) and the embedded default (pretrains and caches out/base on first use)
"$BIN/compare" --quick -o "$W/compare" >"$W/c.log" 2>&1 || echo "exit $?" >>"$W/c.log"
record compare_quick "$W/compare" "$W/c.log"
"$BIN/train_lori" >"$W/def.log" 2>&1 || echo "exit $?" >>"$W/def.log"
record default "out/lori_classify" "$W/def.log"
( cd "$OUT" && find . -type f | sort | grep -v MANIFEST ) >"$OUT/MANIFEST"
echo "scenarios: $(wc -l <"$OUT/MANIFEST") files recorded in $OUT"
