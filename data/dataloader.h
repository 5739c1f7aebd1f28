/*
data/dataloader.h — llm.c's data shards (with optional loss masks) and tokenizer, read and validated.

    DataLoader dl;
    if (dataloader_init(&dl, "data/tasks/arith_train.bin", B, T, vocab, shuffle, seed) != 0) exit(1);
    dataloader_next_batch(&dl);      // dl.inputs, dl.targets: (B,T) ints; dl.mask: (B,T) 0/1 bytes
    dataloader_free(&dl);

Formats (little-endian; every header is 256 int32 = 1024 bytes):
  shard      X.bin       [0]=20240520 [1]=1 [2]=ntok, then ntok uint16 tokens (llm.c's format)
  loss mask  X.lossmask  [0]=20240522 [1]=1 [2]=ntok, then ntok uint8 in {0,1}; mask[i]=1 means
                         token i counts as a prediction target. Our format; a shard without a
                         .lossmask companion is plain text and every target counts.
  tokenizer              [0]=20240328 [1]=2 [2]=vocab [3]=eot id, then per token: uint8 len, bytes
                         (version 1 has no eot field: llm.c's older files; eot is then 50256)

A batch row is T+1 consecutive tokens of one shard: inputs are the first T, targets the last T.
In order (shuffle=0) the rows walk each shard front to back, shards in glob (sorted) order. Shuffled,
every epoch draws a new permutation of the shards and of the row start positions within each shard,
from `seed` and the epoch number, so a position (epoch, shard, row) determines the data exactly:
that is all resume needs to store.
Every reader checks magic, version, sizes against the file length, and token ids < vocab, and
reports failures with the file name; nothing here exits the process.
*/
#ifndef DATALOADER_H
#define DATALOADER_H

#include <errno.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../llmc/utils.h"

#define SHARD_MAGIC 20240520
#define SHARD_VERSION 1
#define LOSSMASK_MAGIC 20240522
#define LOSSMASK_VERSION 1
#define TOKENIZER_MAGIC 20240328
#define HEADER_INTS 256

// ----------------------------------------------------------------------------
// one shard (+ its loss mask), fully in memory

typedef struct {
    uint16_t *tokens;  // (ntok,)
    uint8_t *mask;     // (ntok,) or NULL: every target counts
    size_t ntok;
} Shard;

static void shard_free(Shard *s) { free(s->tokens); free(s->mask); memset(s, 0, sizeof(*s)); }

// Loads `path` and, if present, its `.lossmask` companion. vocab > 0 checks every token id.
static int shard_load(Shard *s, const char *path, int vocab, char *err, size_t errlen) {
    memset(s, 0, sizeof(*s));
    size_t size;
    uint8_t *buf = read_whole_file(path, &size, err, errlen);
    if (!buf) return -1;
    if (size < HEADER_INTS * 4) {
        snprintf(err, errlen, "%s: truncated data shard (%zu bytes, header needs 1024)", path, size);
        free(buf); return -1;
    }
    int32_t h[HEADER_INTS];
    memcpy(h, buf, sizeof(h));
    if (h[0] != SHARD_MAGIC) {
        snprintf(err, errlen, "%s: bad magic %d in data shard (expected %d; a uint32 LLaMA-3 shard is not supported)",
                 path, h[0], SHARD_MAGIC);
        free(buf); return -1;
    }
    if (h[1] != SHARD_VERSION) {
        snprintf(err, errlen, "%s: unsupported data shard version %d (expected %d)", path, h[1], SHARD_VERSION);
        free(buf); return -1;
    }
    if (h[2] < 0 || size != HEADER_INTS * 4 + (size_t)h[2] * 2) {
        snprintf(err, errlen, "%s: header says %d tokens but the file has %zu bytes (expected %zu): truncated or corrupt",
                 path, h[2], size, (size_t)HEADER_INTS * 4 + (size_t)(h[2] < 0 ? 0 : h[2]) * 2);
        free(buf); return -1;
    }
    s->ntok = (size_t)h[2];
    s->tokens = malloc(s->ntok * 2 + 2);
    if (!s->tokens) { snprintf(err, errlen, "%s: out of memory", path); free(buf); return -1; }
    memcpy(s->tokens, buf + HEADER_INTS * 4, s->ntok * 2);
    free(buf);
    if (vocab > 0) {
        for (size_t i = 0; i < s->ntok; i++) {
            if (s->tokens[i] >= vocab) {
                snprintf(err, errlen, "%s: token id %u at position %zu is >= the model's vocab size %d",
                         path, s->tokens[i], i, vocab);
                shard_free(s); return -1;
            }
        }
    }
    // optional loss mask: X.bin -> X.lossmask
    char mpath[4096];
    size_t plen = strlen(path);
    if (plen > 4 && strcmp(path + plen - 4, ".bin") == 0 && plen + 6 < sizeof(mpath)) {
        memcpy(mpath, path, plen - 4);
        strcpy(mpath + plen - 4, ".lossmask");
        FILE *probe = fopen(mpath, "rb");
        if (probe) {
            fclose(probe);
            uint8_t *mb = read_whole_file(mpath, &size, err, errlen);
            if (!mb) { shard_free(s); return -1; }
            int32_t mh[HEADER_INTS];
            if (size >= HEADER_INTS * 4) memcpy(mh, mb, sizeof(mh));
            if (size < HEADER_INTS * 4 || mh[0] != LOSSMASK_MAGIC || mh[1] != LOSSMASK_VERSION) {
                snprintf(err, errlen, "%s: not a loss mask file (bad size, magic or version)", mpath);
                free(mb); shard_free(s); return -1;
            }
            if ((size_t)mh[2] != s->ntok || size != HEADER_INTS * 4 + s->ntok) {
                snprintf(err, errlen, "%s: loss mask has %d entries and %zu bytes but the shard has %zu tokens",
                         mpath, mh[2], size, s->ntok);
                free(mb); shard_free(s); return -1;
            }
            s->mask = malloc(s->ntok + 1);
            if (!s->mask) { free(mb); shard_free(s); snprintf(err, errlen, "%s: out of memory", mpath); return -1; }
            memcpy(s->mask, mb + HEADER_INTS * 4, s->ntok);
            free(mb);
            for (size_t i = 0; i < s->ntok; i++) {
                if (s->mask[i] > 1) {
                    snprintf(err, errlen, "%s: loss mask value %u at %zu is not 0 or 1", mpath, s->mask[i], i);
                    shard_free(s); return -1;
                }
            }
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// the loader

typedef struct {
    int B, T, vocab;
    int shuffle;
    uint64_t seed;
    char **files;
    int nfiles;
    // position: everything needed to continue exactly where we were
    int64_t epoch;
    int64_t shard_idx;   // index into the (possibly permuted) shard order of this epoch
    int64_t row_idx;     // index of the next row within the current shard
    // current shard
    Shard shard;
    int loaded_file;     // which file index is in `shard`, -1 none
    int *shard_order;    // (nfiles,) this epoch's shard order
    int64_t *row_order;  // (nrows,) this shard's row order
    int64_t nrows;
    // the batch
    int *inputs;         // (B,T)
    int *targets;        // (B,T)
    uint8_t *mask;       // (B,T): 1 where the target counts
    char err[512];
} DataLoader;

static void dataloader_free(DataLoader *dl) {
    for (int i = 0; i < dl->nfiles; i++) free(dl->files[i]);
    free(dl->files);
    shard_free(&dl->shard);
    free(dl->shard_order); free(dl->row_order);
    free(dl->inputs); free(dl->targets); free(dl->mask);
    memset(dl, 0, sizeof(*dl));
}

static void dl_permute(int64_t *a, int64_t n, uint64_t *rng) { // Fisher-Yates
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(splitmix64(rng) % (uint64_t)(i + 1));
        int64_t t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

static void dl_epoch_order(DataLoader *dl) {
    for (int i = 0; i < dl->nfiles; i++) dl->shard_order[i] = i;
    if (!dl->shuffle) return;
    uint64_t rng = dl->seed ^ (0xA5A5A5A5ull * ((uint64_t)dl->epoch + 1));
    for (int i = dl->nfiles - 1; i > 0; i--) {
        int j = (int)(splitmix64(&rng) % (uint64_t)(i + 1));
        int t = dl->shard_order[i]; dl->shard_order[i] = dl->shard_order[j]; dl->shard_order[j] = t;
    }
}

// Makes the shard at dl->shard_idx of this epoch current. Returns 0, or -1 with dl->err set.
static int dl_load_current(DataLoader *dl) {
    int file = dl->shard_order[dl->shard_idx];
    if (dl->loaded_file != file) {
        shard_free(&dl->shard);
        dl->loaded_file = -1;
        if (shard_load(&dl->shard, dl->files[file], dl->vocab, dl->err, sizeof(dl->err)) != 0) return -1;
        if (dl->shard.ntok < (size_t)dl->T + 1) {
            snprintf(dl->err, sizeof(dl->err), "%s: shard has %zu tokens, fewer than one row of T+1 = %d",
                     dl->files[file], dl->shard.ntok, dl->T + 1);
            return -1;
        }
        dl->loaded_file = file;
    }
    // rows: non-overlapping windows of T+1 tokens starting every T tokens (llm.c's stride)
    dl->nrows = (int64_t)((dl->shard.ntok - 1) / (size_t)dl->T);
    free(dl->row_order);
    dl->row_order = malloc(sizeof(int64_t) * (size_t)dl->nrows);
    if (!dl->row_order) { snprintf(dl->err, sizeof(dl->err), "out of memory"); return -1; }
    for (int64_t i = 0; i < dl->nrows; i++) dl->row_order[i] = i * dl->T;
    if (dl->shuffle) {
        uint64_t rng = dl->seed ^ (0x5DEECE66Dull * ((uint64_t)dl->epoch + 1)) ^ ((uint64_t)file << 32);
        dl_permute(dl->row_order, dl->nrows, &rng);
    }
    return 0;
}

static int dl_compare_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// pattern: a file name or glob pattern. Returns 0, or -1 with a message in dl->err.
static int dataloader_init(DataLoader *dl, const char *pattern, int B, int T, int vocab, int shuffle, uint64_t seed) {
    memset(dl, 0, sizeof(*dl));
    dl->B = B; dl->T = T; dl->vocab = vocab; dl->shuffle = shuffle; dl->seed = seed;
    dl->loaded_file = -1;
    if (B <= 0 || T <= 0) { snprintf(dl->err, sizeof(dl->err), "batch size and sequence length must be > 0"); return -1; }
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc != 0 || g.gl_pathc == 0) {
        if (rc == 0) globfree(&g);
        snprintf(dl->err, sizeof(dl->err), "%s: no data shard matches this pattern", pattern);
        return -1;
    }
    dl->nfiles = (int)g.gl_pathc;
    dl->files = calloc((size_t)dl->nfiles, sizeof(char *));
    dl->shard_order = calloc((size_t)dl->nfiles, sizeof(int));
    dl->inputs = malloc(sizeof(int) * (size_t)B * T);
    dl->targets = malloc(sizeof(int) * (size_t)B * T);
    dl->mask = malloc((size_t)B * T);
    if (!dl->files || !dl->shard_order || !dl->inputs || !dl->targets || !dl->mask) {
        globfree(&g); snprintf(dl->err, sizeof(dl->err), "out of memory"); return -1;
    }
    for (int i = 0; i < dl->nfiles; i++) dl->files[i] = strdup(g.gl_pathv[i]);
    globfree(&g);
    qsort(dl->files, (size_t)dl->nfiles, sizeof(char *), dl_compare_str);
    dl_epoch_order(dl);
    return dl_load_current(dl);
}

// Moves to an exact position (from a checkpoint). Returns 0 or -1.
static int dataloader_seek(DataLoader *dl, int64_t epoch, int64_t shard_idx, int64_t row_idx) {
    if (epoch < 0 || epoch > ((int64_t)1 << 62) || shard_idx < 0 || shard_idx >= dl->nfiles || row_idx < 0) {
        snprintf(dl->err, sizeof(dl->err), "data position out of range (shard %lld of %d)", (long long)shard_idx, dl->nfiles);
        return -1;
    }
    dl->epoch = epoch; dl->shard_idx = shard_idx;
    dl_epoch_order(dl);
    if (dl_load_current(dl) != 0) return -1;
    if (row_idx > dl->nrows) { snprintf(dl->err, sizeof(dl->err), "data position row %lld beyond shard", (long long)row_idx); return -1; }
    dl->row_idx = row_idx;
    return 0;
}

static int dataloader_reset(DataLoader *dl) { return dataloader_seek(dl, 0, 0, 0); }

// The start of the next row in the current shard, moving across shards and epochs as needed;
// -1 on a read error (dl->err set).
static int64_t dl_next_row(DataLoader *dl) {
    while (dl->row_idx >= dl->nrows) { // next shard, or next epoch
        dl->row_idx = 0;
        dl->shard_idx++;
        if (dl->shard_idx >= dl->nfiles) { dl->shard_idx = 0; dl->epoch++; dl_epoch_order(dl); }
        if (dl_load_current(dl) != 0) return -1;
    }
    return dl->row_order[dl->row_idx++];
}

// Fills inputs/targets/mask with the next B rows, moving across shards and epochs as needed.
static int dataloader_next_batch(DataLoader *dl) {
    int T = dl->T;
    for (int b = 0; b < dl->B; b++) {
        int64_t start = dl_next_row(dl);
        if (start < 0) return -1;
        const uint16_t *tok = dl->shard.tokens + start;
        for (int t = 0; t < T; t++) {
            dl->inputs[b * T + t] = tok[t];
            dl->targets[b * T + t] = tok[t + 1];
            dl->mask[b * T + t] = dl->shard.mask ? dl->shard.mask[start + t + 1] : 1;
        }
    }
    return 0;
}

// Moves past the next B rows without reading them: another rank's share of the batch (the
// position afterwards is the one dataloader_next_batch would leave). Returns 0 or -1.
static int dataloader_skip_batch(DataLoader *dl) {
    for (int b = 0; b < dl->B; b++) if (dl_next_row(dl) < 0) return -1;
    return 0;
}

// Total rows of one epoch over all shards (reads each shard's header only).
static int64_t dataloader_epoch_rows(const DataLoader *dl) {
    int64_t rows = 0;
    for (int i = 0; i < dl->nfiles; i++) {
        FILE *f = fopen(dl->files[i], "rb");
        if (!f) continue;
        int32_t h[3];
        if (fread(h, 4, 3, f) == 3 && h[2] > 0) rows += (int64_t)((h[2] - 1) / dl->T);
        fclose(f);
    }
    return rows;
}

// ----------------------------------------------------------------------------
// tokenizer (decode only: training data arrives tokenized)

typedef struct {
    int vocab_size;
    int eot;
    char **table;  // (vocab_size,) NUL-terminated byte strings
} Tokenizer;

static void tokenizer_free(Tokenizer *t) {
    if (t->table) for (int i = 0; i < t->vocab_size; i++) free(t->table[i]);
    free(t->table);
    memset(t, 0, sizeof(*t));
}

static int tokenizer_init(Tokenizer *t, const char *path, char *err, size_t errlen) {
    memset(t, 0, sizeof(*t));
    size_t size;
    uint8_t *buf = read_whole_file(path, &size, err, errlen);
    if (!buf) return -1;
    int32_t h[HEADER_INTS];
    if (size < sizeof(h)) { snprintf(err, errlen, "%s: truncated tokenizer file", path); free(buf); return -1; }
    memcpy(h, buf, sizeof(h));
    if (h[0] != TOKENIZER_MAGIC) { snprintf(err, errlen, "%s: bad tokenizer magic %d (expected %d)", path, h[0], TOKENIZER_MAGIC); free(buf); return -1; }
    if (h[1] != 1 && h[1] != 2) { snprintf(err, errlen, "%s: unsupported tokenizer version %d", path, h[1]); free(buf); return -1; }
    if (h[2] <= 0 || h[2] > 1 << 24) { snprintf(err, errlen, "%s: bad tokenizer vocab size %d", path, h[2]); free(buf); return -1; }
    if ((size_t)h[2] > (size - sizeof(h)) / 2) { snprintf(err, errlen, "%s: truncated: %zu bytes cannot hold %d tokens", path, size, h[2]); free(buf); return -1; }
    t->vocab_size = h[2];
    t->eot = h[1] == 2 ? h[3] : 50256;
    if (t->eot < 0 || t->eot >= t->vocab_size) { snprintf(err, errlen, "%s: end-of-text id %d outside the vocab", path, t->eot); free(buf); return -1; }
    t->table = calloc((size_t)t->vocab_size, sizeof(char *));
    if (!t->table) { free(buf); snprintf(err, errlen, "%s: out of memory", path); return -1; }
    size_t off = sizeof(h);
    for (int i = 0; i < t->vocab_size; i++) {
        if (off + 1 > size) { snprintf(err, errlen, "%s: truncated at token %d", path, i); free(buf); tokenizer_free(t); return -1; }
        int len = buf[off++];
        if (len == 0) { snprintf(err, errlen, "%s: token %d has length 0", path, i); free(buf); tokenizer_free(t); return -1; }
        if (off + (size_t)len > size) { snprintf(err, errlen, "%s: truncated at token %d", path, i); free(buf); tokenizer_free(t); return -1; }
        t->table[i] = xcalloc((size_t)len + 1, 1, "tokenizer entry");
        memcpy(t->table[i], buf + off, (size_t)len);
        t->table[i][len] = 0;
        off += (size_t)len;
    }
    free(buf);
    if (off != size) { snprintf(err, errlen, "%s: %zu trailing bytes after the last token", path, size - off); tokenizer_free(t); return -1; }
    return 0;
}

static const char *tokenizer_decode(const Tokenizer *t, int id) {
    if (!t->table || id < 0 || id >= t->vocab_size) return NULL;
    return t->table[id];
}

// Prints a token's bytes, skipping control bytes other than newline (like llm.c's safe_printf).
static void tokenizer_print(const Tokenizer *t, int id, FILE *out) {
    const char *s = tokenizer_decode(t, id);
    if (!s) return;
    if (s[0] != 0 && s[1] == 0) {
        unsigned char c = (unsigned char)s[0];
        if (!(c >= 32 || c == '\n' || c == '\t')) return;
    }
    fputs(s, out);
}

// ----------------------------------------------------------------------------
// the writers of the three formats above (data/prepare_data.c; data/tasks.h writes its own)

static void put_header(int32_t *h, int32_t magic, int32_t version) {
    memset(h, 0, sizeof(int32_t) * HEADER_INTS);
    h[0] = magic; h[1] = version;
}

// Writes tokens as an llm.c shard at path and, with a mask, X.lossmask beside it first (path must
// then be X.bin). Atomic per file. 0, or -1 + err.
static int shard_write(const char *path, const uint16_t *tokens, const uint8_t *mask, size_t ntok, char *err, size_t errlen) {
    if (ntok > 0x7FFFFFFF) { snprintf(err, errlen, "%s: %zu tokens do not fit an llm.c header's int32 count", path, ntok); return -1; }
    int32_t h[HEADER_INTS];
    size_t pl = strlen(path);
    if (mask) {
        if (pl < 4 || strcmp(path + pl - 4, ".bin") != 0) { snprintf(err, errlen, "%s: a shard with a loss mask must be named X.bin", path); return -1; }
        for (size_t i = 0; i < ntok; i++)
            if (mask[i] > 1) { snprintf(err, errlen, "%s: loss mask value %d at %zu (0 or 1)", path, mask[i], i); return -1; }
        char *mpath = malloc(pl + 6);
        if (!mpath) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
        memcpy(mpath, path, pl - 4); memcpy(mpath + pl - 4, ".lossmask", 10);
        put_header(h, LOSSMASK_MAGIC, LOSSMASK_VERSION);
        h[2] = (int32_t)ntok;
        const void *parts[2] = {h, mask};
        size_t lens[2] = {sizeof(h), ntok};
        int rc = write_chunks_atomic(mpath, parts, lens, 2, err, errlen);
        free(mpath);
        if (rc) return -1;
    }
    put_header(h, SHARD_MAGIC, SHARD_VERSION);
    h[2] = (int32_t)ntok;
    const void *parts[2] = {h, tokens};
    size_t lens[2] = {sizeof(h), ntok * 2};
    return write_chunks_atomic(path, parts, lens, 2, err, errlen);
}

// Writes an llm.c tokenizer file (version 2): token i is bytes[i][0 .. len[i]), 1 <= len <= 255.
static int tokenizer_write(const char *path, int vocab, int eot, const uint8_t *const *bytes, const int *len,
                           char *err, size_t errlen) {
    if (vocab <= 0 || eot < 0 || eot >= vocab) { snprintf(err, errlen, "%s: bad vocab %d / end-of-text %d", path, vocab, eot); return -1; }
    size_t total = 0;
    for (int i = 0; i < vocab; i++) {
        if (len[i] < 1 || len[i] > 255) { snprintf(err, errlen, "%s: token %d is %d bytes long (llm.c's tokenizer file stores 1..255)", path, i, len[i]); return -1; }
        total += 1 + (size_t)len[i];
    }
    uint8_t *body = malloc(total), *o = body;
    if (!body) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    for (int i = 0; i < vocab; i++) { *o++ = (uint8_t)len[i]; memcpy(o, bytes[i], (size_t)len[i]); o += len[i]; }
    int32_t h[HEADER_INTS];
    put_header(h, TOKENIZER_MAGIC, 2);
    h[2] = vocab; h[3] = eot;
    const void *parts[2] = {h, body};
    size_t lens[2] = {sizeof(h), total};
    int rc = write_chunks_atomic(path, parts, lens, 2, err, errlen);
    free(body);
    return rc;
}

#endif // DATALOADER_H
