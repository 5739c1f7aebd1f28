#!/bin/sh
# Runs each test binary given as an argument; prints each one's Check summary and a total.
# Exits non-zero if any test fails.
status=0
for t in "$@"; do
  echo "== $t"
  ./"$t" || status=1
done
exit $status
