/*
dev/fuzz/fuzz_hf.c — libFuzzer harness for hf_read_gpt2 (data/hf_gpt2.h): a Hugging Face GPT-2 folder.
The input: a 4-byte little-endian length, that many bytes of config.json, then model.safetensors.
What the reader accepts must have a sane shape, finite parameters, zero padded vocab rows, and
survive hf_write_gpt2 and a second read bit for bit.

    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
          -o build/fuzz/fuzz_hf dev/fuzz/fuzz_hf.c -lm
    ./build/fuzz/fuzz_hf -max_total_time=60 CORPUS dev/fuzz/corpus/hf     (or: make fuzz)
*/
#ifndef FUZZ_REPLAY
#include "data/hf_gpt2.h"
#endif
#include "fuzz_common.h"

static int fuzz_hf_one(const uint8_t *data, size_t size) {
    char dir[96], dir2[112], path[160], err[2048] = "";
    fz_tmp_path(dir, sizeof(dir), "hf");
    snprintf(dir2, sizeof(dir2), "%s_out", dir);
    mkdir(dir, 0700);
    FzCursor cur = {data, size};
    const uint8_t *cfg, *st;
    size_t ncfg, nst;
    fz_chunk(&cur, &cfg, &ncfg);
    st = cur.p; nst = cur.n;
    snprintf(path, sizeof(path), "%s/config.json", dir);
    fz_write_file(path, cfg, ncfg);
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    fz_write_file(path, st, nst);
    HFConfig c;
    float *p = NULL;
    int rc = hf_read_gpt2(dir, &c, &p, err, sizeof(err));
    fz_check_fail(rc, err, dir);
    if (rc == 0) {
        if (c.num_layers <= 0 || c.channels <= 0 || c.num_heads <= 0 || c.channels % c.num_heads || c.vocab_size <= 0 ||
            c.padded_vocab_size < c.vocab_size || c.padded_vocab_size % 64 || c.max_seq_len <= 0) __builtin_trap();
        size_t n = hf_num_params(&c);
        for (size_t i = 0; i < n; i++) if (!isfinite(p[i])) __builtin_trap();
        for (size_t i = (size_t)c.vocab_size * c.channels; i < (size_t)c.padded_vocab_size * c.channels; i++) if (p[i] != 0) __builtin_trap();
        if (hf_write_gpt2(dir2, &c, p, NULL, NULL, err, sizeof(err)) == 0) {
            HFConfig c2;
            float *q;
            if (hf_read_gpt2(dir2, &c2, &q, err, sizeof(err)) != 0) __builtin_trap();
            if (memcmp(&c, &c2, sizeof(c)) || memcmp(p, q, n * sizeof(float))) __builtin_trap();
            free(q);
        }
        free(p);
    } else if (p) __builtin_trap();
    return rc;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_hf_one(data, size);
    return 0;
}
#endif
