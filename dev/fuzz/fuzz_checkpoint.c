/*
dev/fuzz/fuzz_checkpoint.c — libFuzzer harness for gpt2_load_checkpoint (train_gpt2.c): llm.c model
files, version 3 (fp32) and 5 (bf16). The input is the file. What the reader accepts must have a
valid config, exactly the parameter count its header implies, finite values, and survive a write
(gpt2_write_checkpoint, v3) and a reload bit for bit.

    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
          -o build/fuzz/fuzz_checkpoint dev/fuzz/fuzz_checkpoint.c -lm
    ./build/fuzz/fuzz_checkpoint -max_total_time=60 CORPUS dev/fuzz/corpus/checkpoint     (or: make fuzz)
*/
#ifndef FUZZ_REPLAY
#define TESTING
#include "train_gpt2.c"
#endif
#include "fuzz_common.h"

static int fuzz_checkpoint_one(const uint8_t *data, size_t size) {
    char path[96], path2[112], err[1024] = "";
    fz_tmp_path(path, sizeof(path), "checkpoint");
    snprintf(path2, sizeof(path2), "%s.v3", path);
    fz_write_file(path, data, size);
    GPT2 m;
    int rc = gpt2_load_checkpoint(&m, path, err, sizeof(err));
    fz_check_fail(rc, err, path);
    if (rc == 0) {
        if (validate_config(&m.config)) __builtin_trap();
        size_t sizes[NUM_PARAMETER_TENSORS], n = 0;
        fill_in_parameter_sizes(sizes, m.config);
        for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) n += sizes[i];
        if (n != m.num_parameters) __builtin_trap();
        for (size_t i = 0; i < n; i++) if (!isfinite(m.params_memory[i])) __builtin_trap();
        // round trip through the writer
        if (gpt2_write_checkpoint(&m.config, m.params_memory, n, path2, err, sizeof(err)) == 0) {
            GPT2 m2;
            if (gpt2_load_checkpoint(&m2, path2, err, sizeof(err)) != 0) __builtin_trap();
            if (memcmp(&m2.config, &m.config, sizeof(m.config)) != 0) __builtin_trap();
            if (memcmp(m2.params_memory, m.params_memory, n * sizeof(float)) != 0) __builtin_trap();
            gpt2_free(&m2);
            remove(path2);
        }
        gpt2_free(&m);
    }
    remove(path);
    return rc;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_checkpoint_one(data, size);
    return 0;
}
#endif
