#!/bin/sh
# Runs each test given as an argument (a binary, or a tests/*.sh script); prints each one's summary.
# Exits non-zero if any test fails.
status=0
for t in "$@"; do
  echo "== $t"
  case "$t" in
    *.sh) bash "$t" || status=1 ;;
    *) ./"$t" || status=1 ;;
  esac
done
exit $status
