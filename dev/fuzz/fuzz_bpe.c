/*
dev/fuzz/fuzz_bpe.c — libFuzzer harness for GPT-2's BPE (data/bpe.h): bpe_load on a vocab.json and a
merges.txt, then bpe_encode / bpe_decode on a text. The input: two 4-byte little-endian lengths with
that many bytes of vocab.json, then merges.txt; the rest is the text. Contract: the loader returns
0 or -1 with a message naming a file; on any text the pre-tokeniser advances (pieces of 1..n bytes
that tile the text), every id is in the vocab, and decode(encode(text)) == text.

    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
          -o build/fuzz/fuzz_bpe dev/fuzz/fuzz_bpe.c -lm
    ./build/fuzz/fuzz_bpe -max_total_time=60 CORPUS dev/fuzz/corpus/bpe     (or: make fuzz)
*/
#ifndef FUZZ_REPLAY
#include "data/bpe.h"
#endif
#include "fuzz_common.h"

static int fuzz_bpe_one(const uint8_t *data, size_t size) {
    char vpath[96], mpath[96], err[2048] = "";
    fz_tmp_path(vpath, sizeof(vpath), "vocab.json");
    fz_tmp_path(mpath, sizeof(mpath), "merges.txt");
    FzCursor cur = {data, size};
    const uint8_t *v, *m;
    size_t nv, nm;
    fz_chunk(&cur, &v, &nv);
    fz_chunk(&cur, &m, &nm);
    const uint8_t *text = cur.p;
    size_t ntext = cur.n;
    fz_write_file(vpath, v, nv);
    fz_write_file(mpath, m, nm);
    for (size_t i = 0; i < ntext;) {  // the pre-tokeniser alone, on any bytes
        size_t k = bpe_piece_len(text + i, ntext - i);
        if (k == 0 || k > ntext - i) __builtin_trap();
        i += k;
    }
    Bpe b;
    int rc = bpe_load(&b, vpath, mpath, err, sizeof(err));
    if (rc != 0 && rc != -1) __builtin_trap();
    if (rc == -1 && (!err[0] || (!strstr(err, vpath) && !strstr(err, mpath)))) __builtin_trap();
    if (rc == 0) {
        if (b.eot < 0 || b.eot >= b.vocab_size || b.nmerges <= 0) __builtin_trap();
        BpeIds ids = {0};
        if (bpe_encode(&b, text, ntext, &ids) == 0) {
            for (size_t i = 0; i < ids.n; i++) if (ids.v[i] < 0 || ids.v[i] >= b.vocab_size) __builtin_trap();
            size_t dl;
            uint8_t *d = bpe_decode(&b, ids.v, ids.n, &dl);
            if (!d || dl != ntext || memcmp(d, text, ntext)) __builtin_trap();
            free(d);
        }
        free(ids.v);
        bpe_free(&b);
    }
    return rc;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_bpe_one(data, size);
    return 0;
}
#endif
