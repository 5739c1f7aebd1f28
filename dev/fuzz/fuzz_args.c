/*
dev/fuzz/fuzz_args.c — libFuzzer harness for the trainer's command line (train_gpt2.c): parse_args,
validate_args, and parse_descriptor on the -e value. The input is the arguments after argv[0],
separated by NUL bytes (at most 64). A rejected command line must print one "error: ..." line;
an accepted one must give sizes the trainer can use: B, T > 0 and B*T (and the total batch) within
an int, since the trainer and the data loader index (B,T) arrays with int arithmetic.

    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
          -o build/fuzz/fuzz_args dev/fuzz/fuzz_args.c -lm
    ./build/fuzz/fuzz_args -max_total_time=60 -dict=dev/fuzz/args.dict CORPUS dev/fuzz/corpus/args
*/
#ifndef FUZZ_REPLAY
#define TESTING
#include "train_gpt2.c"
#endif
#include <limits.h>
#include "fuzz_common.h"

static int fuzz_args_one(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[66];
    int argc = 0;
    argv[argc++] = (char *)"train_gpt2";
    for (size_t i = 0; i < size && argc < 65;) { // "a\0b" and "a\0b\0" are both {a, b}
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    // capture what the parser prints: a rejection must say why
    char *msg = NULL;
    size_t mlen = 0;
    FILE *mem = open_memstream(&msg, &mlen), *saved_err = stderr, *saved_out = stdout;
    FILE *null = fopen("/dev/null", "w");
    stderr = mem;
    if (null) stdout = null;
    TrainConfig c;
    config_defaults(&c);
    int rc = parse_args(&c, argc, argv);
    if (rc == 0) rc = validate_args(&c);
    GPT2Config d;
    int drc = c.model[0] ? parse_descriptor(c.model, &d) : -1;
    stderr = saved_err;
    stdout = saved_out;
    if (null) fclose(null);
    fclose(mem);
    if (rc < 0 && (mlen == 0 || strncmp(msg, "error: ", 7) != 0)) __builtin_trap();
    if (rc == 0) {
        if (c.B <= 0 || c.T <= 0 || (long long)c.B * c.T > INT_MAX) __builtin_trap();
        if (c.total_batch != -1 && (c.total_batch <= 0 || c.total_batch % (c.B * c.T) != 0)) __builtin_trap();
        if (parse_targets(c.targets) <= 0 || parse_targets(c.targets) > 15) __builtin_trap();
        if (!(c.sparsity >= 0 && c.sparsity < 1) || !(c.dropout >= 0 && c.dropout < 1)) __builtin_trap();
        if (!variant_find(c.adapter) || name_index(c.schedule, schedule_names, 3) < 0) __builtin_trap();
    }
    if (drc == 0 && validate_config(&d) != NULL) __builtin_trap();
    free(msg);
    free(buf);
    return rc == 0 ? 0 : -1;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_args_one(data, size);
    return 0;
}
#endif
