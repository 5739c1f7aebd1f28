/*
dev/fuzz/fuzz_shard.c — libFuzzer harness for llm.c data shards and their loss masks
(data/dataloader.h: shard_load, dataloader_init/next_batch/seek/epoch_rows) and for the example
extractor of instruction shards (data/tasks.h: tasks_extract_examples). The first byte picks:

  0  one shard, no mask      [vocab u16 (0: unchecked)] [the X.bin file]
  1  shard + loss mask       [vocab u16] [u32 length, X.bin] [X.lossmask]; then the examples
  2  the data loader         [B-1] [T-1] [vocab u16] [shuffle] [seed] [nfiles-1] [seek: epoch i64,
                             shard u8, row u16], then per file [has mask] [u32 length, X.bin]
                             [u32 length, X.lossmask]; up to 8 batches, a seek, a batch

What is accepted must hold: token ids < vocab, mask entries 0/1 and one per token; batches of
ids < vocab; examples inside the shard, EOT + prompt + answer ending in '\n', in order, and
each answer matching itself under tasks_exact_match.

    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
          -o build/fuzz/fuzz_shard dev/fuzz/fuzz_shard.c -lm
    ./build/fuzz/fuzz_shard -max_total_time=60 CORPUS dev/fuzz/corpus/shard     (or: make fuzz)
*/
#ifndef FUZZ_REPLAY
#define TESTING
#include "train_gpt2.c"
#endif
#include "fuzz_common.h"

// The examples of an accepted masked shard must be what tasks.h documents.
static void fz_check_examples(const Shard *s) {
    long n = tasks_extract_examples(s->tokens, s->mask, s->ntok, NULL, 0);
    if (n < 0) return;
    tasks_example *ex = malloc(sizeof(tasks_example) * (size_t)(n ? n : 1));
    if (tasks_extract_examples(s->tokens, s->mask, s->ntok, ex, n) != n) __builtin_trap();
    size_t prev_end = 0;
    int *ans = malloc(sizeof(int) * (s->ntok + 1));
    for (long i = 0; i < n; i++) {
        const tasks_example *e = &ex[i];
        if (e->prompt < 1 || e->prompt - 1 < prev_end || e->prompt_len <= 0 || e->answer_len <= 0) __builtin_trap();
        if (e->answer != e->prompt + (size_t)e->prompt_len || e->answer + (size_t)e->answer_len > s->ntok) __builtin_trap();
        if (s->tokens[e->prompt - 1] != TASKS_EOT || s->tokens[e->answer + e->answer_len - 1] != '\n') __builtin_trap();
        for (int k = 0; k < e->prompt_len; k++) if (s->mask[e->prompt + k] != 0) __builtin_trap();
        for (int k = 0; k < e->answer_len; k++) {
            if (s->mask[e->answer + k] != 1) __builtin_trap();
            ans[k] = s->tokens[e->answer + k];
        }
        if (tasks_exact_match(ans, e->answer_len, ans, e->answer_len) != 1) __builtin_trap();
        prev_end = e->answer + (size_t)e->answer_len;
    }
    if (prev_end != s->ntok) __builtin_trap(); // the documents tile the shard
    free(ans);
    free(ex);
}

static void fz_check_batch(const DataLoader *dl) {
    for (int i = 0; i < dl->B * dl->T; i++) {
        if (dl->inputs[i] < 0 || dl->targets[i] < 0 || dl->mask[i] > 1) __builtin_trap();
        if (dl->vocab > 0 && (dl->inputs[i] >= dl->vocab || dl->targets[i] >= dl->vocab)) __builtin_trap();
    }
}

static int fuzz_shard_one(const uint8_t *data, size_t size) {
    if (size < 1) return -1;
    char dir[96], bin[128], lm[128], err[1024] = "";
    fz_tmp_path(dir, sizeof(dir), "shard");
    mkdir(dir, 0755);
    for (int i = 0; i < 3; i++) { // no stale files from an earlier input
        snprintf(bin, sizeof(bin), "%s/s%d.bin", dir, i); remove(bin);
        snprintf(lm, sizeof(lm), "%s/s%d.lossmask", dir, i); remove(lm);
    }
    snprintf(bin, sizeof(bin), "%s/a.bin", dir);
    snprintf(lm, sizeof(lm), "%s/a.lossmask", dir);
    remove(bin); remove(lm);
    int which = data[0] % 3;
    FzCursor c = {data + 1, size - 1};
    int rc;
    if (which < 2) {
        int vocab = (int)fz_u(&c, 2);
        const uint8_t *p; size_t n;
        if (which == 0) { p = c.p; n = c.n; } else fz_chunk(&c, &p, &n);
        fz_write_file(bin, p, n);
        if (which == 1) fz_write_file(lm, c.p, c.n);
        Shard s;
        rc = shard_load(&s, bin, vocab, err, sizeof(err));
        fz_check_fail(rc, err, dir);
        if (rc == 0) {
            if ((which == 1) != (s.mask != NULL)) __builtin_trap();
            for (size_t i = 0; i < s.ntok; i++) {
                if (vocab > 0 && s.tokens[i] >= vocab) __builtin_trap();
                if (s.mask && s.mask[i] > 1) __builtin_trap();
            }
            if (s.mask) fz_check_examples(&s);
            shard_free(&s);
        }
    } else {
        int B = 1 + (int)fz_u(&c, 1) % 4, T = 1 + (int)fz_u(&c, 1) % 32, vocab = (int)fz_u(&c, 2);
        int shuffle = (int)fz_u(&c, 1) & 1, nfiles = 1 + (int)fz_u(&c, 1) % 3;
        uint64_t seed = fz_u(&c, 1);
        int64_t epoch = (int64_t)fz_u(&c, 8), shard = (int64_t)fz_u(&c, 1), row = (int64_t)fz_u(&c, 2);
        for (int i = 0; i < nfiles; i++) {
            int has_mask = (int)fz_u(&c, 1) & 1;
            const uint8_t *p; size_t n;
            fz_chunk(&c, &p, &n);
            snprintf(bin, sizeof(bin), "%s/s%d.bin", dir, i);
            fz_write_file(bin, p, n);
            fz_chunk(&c, &p, &n);
            if (has_mask) { snprintf(lm, sizeof(lm), "%s/s%d.lossmask", dir, i); fz_write_file(lm, p, n); }
        }
        char pattern[128];
        snprintf(pattern, sizeof(pattern), "%s/s*.bin", dir);
        DataLoader dl;
        rc = dataloader_init(&dl, pattern, B, T, vocab, shuffle, seed);
        fz_check_fail(rc, dl.err, NULL);
        if (rc == 0) {
            int r = 0;
            for (int b = 0; b < 8 && r == 0; b++) { // the trainer stops at the first failure: so do we
                r = dataloader_next_batch(&dl);
                fz_check_fail(r, dl.err, NULL);
                if (r == 0) fz_check_batch(&dl);
            }
            if (dataloader_epoch_rows(&dl) < 0) __builtin_trap();
            if (r == 0) {
                r = dataloader_seek(&dl, epoch, shard, row);
                fz_check_fail(r, dl.err, NULL);
            }
            if (r == 0) {
                r = dataloader_next_batch(&dl);
                fz_check_fail(r, dl.err, NULL);
                if (r == 0) fz_check_batch(&dl);
            }
        }
        dataloader_free(&dl);
    }
    return rc;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_shard_one(data, size);
    return 0;
}
#endif
