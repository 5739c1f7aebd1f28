#!/bin/sh
# Runs each test given as an argument (a binary, or a tests/*.sh script); prints each one's summary.
# Exits non-zero if any test fails. Checks that could not run (a missing python3 or torch) print
# a line with "SKIP:"; they are listed again at the end, so a skipped check is never silent.
status=0
log=$(mktemp) || exit 1
skips=$(mktemp) || exit 1
for t in "$@"; do
  echo "== $t"
  case "$t" in
    *.sh) bash "$t" > "$log" 2>&1 || status=1 ;;
    *) ./"$t" > "$log" 2>&1 || status=1 ;;
  esac
  cat "$log"
  grep "SKIP:" "$log" | sed "s|^|$t: |" >> "$skips"
done
if [ -s "$skips" ]; then
  echo "== SKIPPED: these checks did NOT run (install what they name to run them):"
  cat "$skips"
fi
rm -f "$log" "$skips"
exit $status
