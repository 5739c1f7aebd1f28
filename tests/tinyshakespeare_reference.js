// tests/tinyshakespeare_reference.js — llm.c's dev/data/tinyshakespeare.py recipe written again in
// JavaScript over npm's gpt-3-encoder: the reference that ./prepare_data tinyshakespeare must equal
// byte for byte (tests/test_prepare_data.sh).
//     node tests/tinyshakespeare_reference.js NODE_MODULES_DIR input.txt OUTDIR
// writes OUTDIR/tiny_shakespeare_val.bin and OUTDIR/tiny_shakespeare_train.bin (llm.c's shard format).
"use strict";
const path = require("path");
const fs = require("fs");
const { encode } = require(path.resolve(process.argv[2], "gpt-3-encoder"));
// Python's open(path, 'r').read(): UTF-8, universal newlines
const text = fs.readFileSync(process.argv[3], "utf8").replace(/\r\n?/g, "\n");
const EOT = 50256;
const sections = text.split("\n\n");
const tokens = [];
sections.forEach((s, i) => {
  tokens.push(EOT);
  for (const t of encode(i !== sections.length - 1 ? s + "\n\n" : s)) tokens.push(t);
});
function write(file, toks) {
  const buf = Buffer.alloc(1024 + 2 * toks.length);
  buf.writeInt32LE(20240520, 0);
  buf.writeInt32LE(1, 4);
  buf.writeInt32LE(toks.length, 8);
  toks.forEach((t, i) => buf.writeUInt16LE(t, 1024 + 2 * i));
  fs.writeFileSync(path.join(process.argv[4], file), buf);
}
fs.mkdirSync(process.argv[4], { recursive: true });
write("tiny_shakespeare_val.bin", tokens.slice(0, 32768));
write("tiny_shakespeare_train.bin", tokens.slice(32768));
console.log(`reference: ${Math.min(32768, tokens.length)} val, ${Math.max(0, tokens.length - 32768)} train tokens`);
