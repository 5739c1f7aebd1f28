#!/bin/sh
# dev/fuzz/run_fuzz.sh SECONDS JOBS NAME... — runs build/fuzz/fuzz_NAME for SECONDS each (libFuzzer
# fork mode with JOBS processes, crashes counted and fuzzing continued) on a fresh copy of its seed
# corpus, then prints per reader the inputs tried and the crashes. Exits 1 if anything crashed,
# timed out (10 s per input) or ran out of memory. Called by `make fuzz` (dev/fuzz/fuzz.mk).
# Outputs: build/fuzz/logs/NAME.log, crashing inputs in build/fuzz/crashes/NAME/ (to turn one into
# a test: copy it to dev/fuzz/regressions/NAME/, see test_readers.c).
secs=$1; jobs=$2; shift 2
status=0
summary=""
for name in "$@"; do
  bin=build/fuzz/fuzz_$name
  seeds=dev/fuzz/corpus/$name
  [ "$name" = peft ] && seeds=dev/fuzz/seeds
  work=build/fuzz/work/$name; crashes=build/fuzz/crashes/$name; log=build/fuzz/logs/$name.log
  rm -rf "$work" "$crashes"; mkdir -p "$work" "$crashes" build/fuzz/logs
  cp "$seeds"/* "$work"/
  dict=""
  [ -f "dev/fuzz/$name.dict" ] && dict="-dict=dev/fuzz/$name.dict"
  echo "fuzz $name: ${secs}s, $jobs jobs, seeds from $seeds"
  # -close_fd_mask=3: the readers' own messages are not wanted; libFuzzer and the sanitizers still report
  "$bin" -fork="$jobs" -ignore_crashes=1 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -close_fd_mask=3 -artifact_prefix="$crashes/" $dict "$work" > "$log" 2>&1
  rc=$?
  last=$(grep -E '^#[0-9]+: ' "$log" | tail -n 1)
  execs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
  fails=$(echo "$last" | sed -n 's/.*oom\/timeout\/crash: \([0-9]*\/[0-9]*\/[0-9]*\).*/\1/p')
  oom=$(echo "${fails:-0/0/0}" | cut -d/ -f1); tmo=$(echo "${fails:-0/0/0}" | cut -d/ -f2); crash=$(echo "${fails:-0/0/0}" | cut -d/ -f3)
  nfiles=$(ls "$crashes" | wc -l)
  line=$(printf '%-11s %10s inputs tried   %s crashes   %s timeouts   %s out-of-memory' "$name" "${execs:-?}" "$crash" "$tmo" "$oom")
  summary="$summary
$line"
  if [ -z "$execs" ] || [ "$crash" != 0 ] || [ "$tmo" != 0 ] || [ "$oom" != 0 ] || [ "$nfiles" != 0 ]; then
    status=1
    echo "fuzz $name: FAILED (rc $rc); inputs in $crashes/, log $log:"
    # fork mode logs only the first line of a crash: replay the inputs for the reports
    for f in $(ls "$crashes" | head -n 3); do
      echo "--- $crashes/$f:"
      "$bin" "$crashes/$f" 2>&1 | grep -E 'runtime error|ERROR: |SUMMARY|^    #[0-9]+ .* in ' | grep -vE ' in (fuzzer::|__libc_start|_start|main)' | head -n 20
    done
  fi
done
echo "
fuzzing summary (${secs}s per reader):$summary"
[ $status = 0 ] && echo "no crashes" || echo "CRASHES: see build/fuzz/crashes/ and build/fuzz/logs/"
exit $status
