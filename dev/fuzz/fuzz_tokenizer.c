/*
dev/fuzz/fuzz_tokenizer.c — libFuzzer harness for tokenizer_init (data/dataloader.h): llm.c's
tokenizer file, versions 1 and 2. The input is the file. What the reader accepts must decode every
id in [0, vocab) (a token may be the byte 0), nothing outside it, and have its end-of-text id in range;
tokenizer_print must handle every id.

    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
          -o build/fuzz/fuzz_tokenizer dev/fuzz/fuzz_tokenizer.c -lm
    ./build/fuzz/fuzz_tokenizer -max_total_time=60 CORPUS dev/fuzz/corpus/tokenizer     (or: make fuzz)
*/
#ifndef FUZZ_REPLAY
#define TESTING
#include "train_gpt2.c"
#endif
#include "fuzz_common.h"

static int fuzz_tokenizer_one(const uint8_t *data, size_t size) {
    char path[96], err[1024] = "";
    fz_tmp_path(path, sizeof(path), "tokenizer");
    fz_write_file(path, data, size);
    Tokenizer t;
    int rc = tokenizer_init(&t, path, err, sizeof(err));
    fz_check_fail(rc, err, path);
    if (rc == 0) {
        if (t.vocab_size <= 0 || t.eot < 0 || t.eot >= t.vocab_size) __builtin_trap();
        FILE *sink = fopen("/dev/null", "w");
        for (int i = 0; i < t.vocab_size; i++) {
            const char *s = tokenizer_decode(&t, i);
            if (!s) __builtin_trap();
            if (sink) tokenizer_print(&t, i, sink);
        }
        if (tokenizer_decode(&t, -1) || tokenizer_decode(&t, t.vocab_size)) __builtin_trap();
        if (sink) { tokenizer_print(&t, -1, sink); tokenizer_print(&t, t.vocab_size, sink); fclose(sink); }
        tokenizer_free(&t);
    }
    remove(path);
    return rc;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_tokenizer_one(data, size);
    return 0;
}
#endif
