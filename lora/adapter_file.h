/*
lora/adapter_file.h — the project's own adapter file (one writer, one reader) and the LoRI mask file.

    adapter_save(ad, path, train_config, err, errlen)     atomic: path.tmp, fflush, fsync, rename
    adapter_load(ad, path, L, C, err, errlen)             L, C of the base (<= 0: take the file's)
    adapter_load_ex(..., &train_config, ...)              also returns the stored config string (caller frees)
    mask_save(ad, mask, path, ...) / mask_load(ad, path, &mask, ...)   the LoRI-S mask alone
    adapter_file_bytes(ad, cfg_len) / adapter_file_bytes_lora(ad, cfg_len)   sizes, for the report

Layout (llm.c style, everything little-endian). Header: 256 int32 (1024 bytes):
    [0] magic 20240611   [1] version 1   [2] kind (1 lora, 2 lori, 3 plora)   [3] rank
    [4] alpha (float bits)   [5] rslora (0/1)   [6] dropout (float bits)   [7] targets bitmask
    [8] init of A (0 kaiming, 1 gaussian)   [9],[10] seed (uint64, low word first)
    [11] L   [12] C   [13] nslots   [14] A storage   [15] B storage   [16] stage (PLoRA unloads)
    [17] length of the training-config string in bytes   [18],[19] nA   [20],[21] nB
    [22],[23] nkept (uint64 each, low word first)   [24] PLoRA stages in the history (nhist)
    [25..255] zero (refused otherwise)
Body, in this order, no padding:
    config string   (length [17], UTF-8, no NUL; e.g. the command line)
    A               storage 0 (dense): nA float32, slot order;  1 (by seed): nothing, the reader
                    regenerates A with adapter_create from (seed, init): bit-identical
    B               storage 0 (dense): nB float32;
                    1 (sparse, LoRI-S): nkept uint32 indices into the B region, strictly increasing,
                      then nkept float32 values; B is 0 elsewhere and the mask is exactly the index set;
                    2 (dense + mask): nB float32, then nkept uint32 indices of the mask (continual
                      LoRI-S: earlier entries outside the current mask are nonzero and must be kept).
    history         PLoRA only: nhist x (nA + nB) float32, per unloaded stage k its A_k then c_k B_k
                    (c_k = (1 - m) s, adapter.h): the file is relative to the ORIGINAL base, which
                    gets W += sum_k c_k B_k A_k + s B A. nhist equals the stage count [16]; a PLoRA
                    file with fewer (written before the history existed) is refused: it would
                    describe the model only relative to a base with the earlier stages folded in.
Slot shapes are implied by (targets, C, rank): slot order l = 0..L-1, t = qkv, attn_proj, fc,
fc_proj; A (r, in), B (out, r) row-major (adapter.h). The reader checks nslots, nA, nB against them
and the file length against the exact byte count before it allocates anything.
What the writer picks: A by seed whenever A equals the draw from (seed, init) bit for bit (LoRI
always; a fresh LoRA too); B sparse when a mask is set and B is 0 outside it, dense + mask when a
mask is set and it is not, dense otherwise. Gradients and optimizer state are not stored.

Mask file: header 256 int32: [0] magic 20240612 [1] version 1 [2] L [3] C [4] rank [5] targets
[6] nslots [7],[8] nB [9],[10] nkept, rest 0; then nkept uint32 kept indices, strictly increasing.
*/
#ifndef LORA_ADAPTER_FILE_H
#define LORA_ADAPTER_FILE_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../llmc/utils.h"
#include "adapter.h"
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "adapter files are little-endian; this reader/writer assumes a little-endian host"
#endif

#define ADAPTER_MAGIC 20240611
#define ADAPTER_VERSION 1
#define MASK_MAGIC 20240612
#define MASK_VERSION 1
#define ADAPTER_HEADER_INTS 256
#define ADAPTER_MAX_CONFIG (1 << 20)
enum { A_DENSE = 0, A_BY_SEED = 1 };
enum { B_DENSE = 0, B_SPARSE = 1, B_DENSE_MASKED = 2 };

// ----------------------------------------------------------------------------
// small helpers

static uint32_t af_f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float af_u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static void af_put64(int32_t *h, int i, uint64_t v) { h[i] = (int32_t)(uint32_t)v; h[i + 1] = (int32_t)(uint32_t)(v >> 32); }
static uint64_t af_get64(const int32_t *h, int i) { return (uint64_t)(uint32_t)h[i] | ((uint64_t)(uint32_t)h[i + 1] << 32); }

// Element counts of all A's and all B's implied by (targets, rank, L, C), in 64-bit: the reader's
// size check runs before anything is allocated, so a corrupt header cannot ask for terabytes.
static void adapter_shape_counts(int targets, int rank, int L, int C, int *nslots, uint64_t *nA, uint64_t *nB) {
    *nslots = 0; *nA = 0; *nB = 0;
    for (int t = 0; t < NUM_TARGETS; t++) {
        if (!((targets >> t) & 1)) continue;
        *nslots += L;
        *nA += (uint64_t)L * rank * target_in_mult[t] * (uint64_t)C;
        *nB += (uint64_t)L * rank * target_out_mult[t] * (uint64_t)C;
    }
}

// 1 if A of every slot equals the draw from (cfg.seed, cfg.init): then A need not be stored.
static int adapter_A_is_seeded(const Adapter *ad) {
    Adapter tmp = *ad;  // shares the slot tables; only params is swapped for a scratch buffer
    tmp.params = malloc(sizeof(float) * (ad->nA ? ad->nA : 1));
    if (!tmp.params) return 0;
    for (int s = 0; s < ad->nslots; s++) adapter_draw_A(&tmp, s, ad->cfg.seed);
    int same = memcmp(tmp.params, ad->params, sizeof(float) * ad->nA) == 0;
    free(tmp.params);
    return same;
}

// B storage the writer uses for ad (see the layout above).
static int adapter_B_storage(const Adapter *ad) {
    if (!ad->mask) return B_DENSE;
    const float *B = ad->params + ad->nA;
    for (size_t i = 0; i < ad->nB; i++)
        if (!ad->mask[i] && B[i] != 0.0f) return B_DENSE_MASKED;
    return B_SPARSE;
}

// Bytes adapter_save writes for ad with a config string of cfg_len bytes.
static uint64_t adapter_file_bytes(const Adapter *ad, size_t cfg_len) {
    uint64_t n = 4 * ADAPTER_HEADER_INTS + cfg_len + 4 * (uint64_t)ad->nhist * (ad->nA + ad->nB);
    if (!adapter_A_is_seeded(ad)) n += 4 * (uint64_t)ad->nA;
    int bs = adapter_B_storage(ad);
    n += bs == B_SPARSE ? 8 * (uint64_t)ad->nkept : bs == B_DENSE_MASKED ? 4 * ((uint64_t)ad->nB + ad->nkept) : 4 * (uint64_t)ad->nB;
    return n;
}
// Bytes of a trained dense LoRA file of the same rank, targets and shapes (A and B both stored).
static uint64_t adapter_file_bytes_lora(const Adapter *ad, size_t cfg_len) {
    return 4 * ADAPTER_HEADER_INTS + cfg_len + 4 * ((uint64_t)ad->nA + ad->nB);
}

static int af_all_finite(const float *x, size_t n, size_t *bad) {
    for (size_t i = 0; i < n; i++) if (!isfinite(x[i])) { *bad = i; return 0; }
    return 1;
}

// ----------------------------------------------------------------------------
// the adapter file

static int adapter_save(const Adapter *ad, const char *path, const char *train_config, char *err, size_t errlen) {
    size_t cfg_len = train_config ? strlen(train_config) : 0;
    if (cfg_len > ADAPTER_MAX_CONFIG) { snprintf(err, errlen, "%s: training-config string too long (%zu bytes)", path, cfg_len); return -1; }
    size_t bad;
    if (!af_all_finite(ad->params, ad->nA + ad->nB, &bad)) {
        snprintf(err, errlen, "%s: not written: adapter value %zu (%s) is not finite", path, bad, bad < ad->nA ? "A" : "B");
        return -1;
    }
    int a_st = adapter_A_is_seeded(ad) ? A_BY_SEED : A_DENSE;
    int b_st = adapter_B_storage(ad);
    int32_t h[ADAPTER_HEADER_INTS] = {0};
    h[0] = ADAPTER_MAGIC; h[1] = ADAPTER_VERSION; h[2] = ad->cfg.kind; h[3] = ad->cfg.rank;
    h[4] = (int32_t)af_f2u(ad->cfg.alpha); h[5] = ad->cfg.rslora ? 1 : 0; h[6] = (int32_t)af_f2u(ad->cfg.dropout);
    h[7] = ad->cfg.targets; h[8] = ad->cfg.init; af_put64(h, 9, ad->cfg.seed);
    h[11] = ad->L; h[12] = ad->C; h[13] = ad->nslots; h[14] = a_st; h[15] = b_st; h[16] = ad->stage;
    h[17] = (int32_t)cfg_len; af_put64(h, 18, ad->nA); af_put64(h, 20, ad->nB);
    af_put64(h, 22, b_st == B_DENSE ? 0 : ad->nkept);
    h[24] = ad->nhist;
    if (ad->nhist > 0 && ad->cfg.kind != ADAPTER_PLORA) { snprintf(err, errlen, "%s: not written: a stage history on a %s adapter", path, variant_of(ad->cfg.kind)->name); return -1; }
    if (ad->nhist > 0 && !af_all_finite(ad->hist, (size_t)ad->nhist * (ad->nA + ad->nB), &bad)) {
        snprintf(err, errlen, "%s: not written: PLoRA history value %zu is not finite", path, bad);
        return -1;
    }
    const float *B = ad->params + ad->nA;
    float *vals = NULL;
    const void *parts[7]; size_t lens[7]; int np = 0;
    parts[np] = h; lens[np++] = sizeof(h);
    parts[np] = train_config; lens[np++] = cfg_len;
    if (a_st == A_DENSE) { parts[np] = ad->params; lens[np++] = sizeof(float) * ad->nA; }
    if (b_st == B_SPARSE) {
        vals = malloc(sizeof(float) * (ad->nkept ? ad->nkept : 1));
        if (!vals) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
        for (size_t k = 0; k < ad->nkept; k++) vals[k] = B[ad->kept[k]];
        parts[np] = ad->kept; lens[np++] = sizeof(uint32_t) * ad->nkept;
        parts[np] = vals; lens[np++] = sizeof(float) * ad->nkept;
    } else {
        parts[np] = B; lens[np++] = sizeof(float) * ad->nB;
        if (b_st == B_DENSE_MASKED) { parts[np] = ad->kept; lens[np++] = sizeof(uint32_t) * ad->nkept; }
    }
    parts[np] = ad->hist; lens[np++] = sizeof(float) * (size_t)ad->nhist * (ad->nA + ad->nB);
    int rc = write_chunks_atomic(path, parts, lens, np, err, errlen);
    free(vals);
    return rc;
}

// Checks idx[0..n) strictly increasing and < limit. Returns -1 and names the first bad one.
static int af_check_indices(const uint32_t *idx, uint64_t n, uint64_t limit, const char *path, char *err, size_t errlen) {
    for (uint64_t k = 0; k < n; k++) {
        if (idx[k] >= limit) { snprintf(err, errlen, "%s: mask index %llu = %u is out of range (B has %llu entries)", path, (unsigned long long)k, idx[k], (unsigned long long)limit); return -1; }
        if (k > 0 && idx[k] <= idx[k - 1]) { snprintf(err, errlen, "%s: mask indices not strictly increasing at %llu (%u after %u)", path, (unsigned long long)k, idx[k], idx[k - 1]); return -1; }
    }
    return 0;
}

static int adapter_load_ex(Adapter *ad, const char *path, int L, int C, char **train_config, char *err, size_t errlen) {
    memset(ad, 0, sizeof(*ad));
    if (train_config) *train_config = NULL;
    size_t size = 0;
    uint8_t *buf = read_whole_file(path, &size, err, errlen);
    if (!buf) return -1;
#define AF_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); free(buf); return -1; } while (0)
    if (size < 4 * ADAPTER_HEADER_INTS) AF_FAIL("%s: too short for an adapter header (%zu bytes, need %d)", path, size, 4 * ADAPTER_HEADER_INTS);
    int32_t h[ADAPTER_HEADER_INTS];
    memcpy(h, buf, sizeof(h));
    if (h[0] != ADAPTER_MAGIC) AF_FAIL("%s: bad magic %d (expected %d): not an adapter file", path, h[0], ADAPTER_MAGIC);
    if (h[1] != ADAPTER_VERSION) AF_FAIL("%s: unsupported adapter file version %d (this build reads %d)", path, h[1], ADAPTER_VERSION);
    AdapterConfig cfg = {0};
    cfg.kind = (AdapterKind)h[2]; cfg.rank = h[3]; cfg.alpha = af_u2f((uint32_t)h[4]); cfg.rslora = h[5];
    cfg.dropout = af_u2f((uint32_t)h[6]); cfg.targets = h[7]; cfg.init = (AdapterInit)h[8]; cfg.seed = af_get64(h, 9);
    int fL = h[11], fC = h[12], a_st = h[14], b_st = h[15], stage = h[16], cfg_len = h[17], nhist = h[24];
    uint64_t fnA = af_get64(h, 18), fnB = af_get64(h, 20), nkept = af_get64(h, 22);
    if (h[2] < ADAPTER_LORA || h[2] > ADAPTER_PLORA) AF_FAIL("%s: unknown adapter kind %d", path, h[2]);
    if (h[7] <= 0 || h[7] > 15) AF_FAIL("%s: bad targets bitmask %d (must select 1..4 of qkv, attn_proj, fc, fc_proj)", path, h[7]);
    if (fL <= 0 || fL > 1024) AF_FAIL("%s: bad layer count %d", path, fL);
    if (fC <= 0 || fC > 65536) AF_FAIL("%s: bad channel count %d", path, fC);
    if (L > 0 && fL != L) AF_FAIL("%s: adapter is for %d layers, the base model has %d", path, fL, L);
    if (C > 0 && fC != C) AF_FAIL("%s: adapter is for width C = %d, the base model has C = %d", path, fC, C);
    if (cfg.rank <= 0 || cfg.rank > fC) AF_FAIL("%s: bad rank %d (must be 1..%d)", path, cfg.rank, fC);
    if (!isfinite(cfg.alpha) || !(cfg.alpha > 0)) AF_FAIL("%s: bad alpha %g", path, (double)cfg.alpha);
    if (h[5] != 0 && h[5] != 1) AF_FAIL("%s: bad rslora flag %d", path, h[5]);
    if (!(cfg.dropout >= 0 && cfg.dropout < 1)) AF_FAIL("%s: bad dropout %g", path, (double)cfg.dropout);
    if (h[8] != INIT_KAIMING && h[8] != INIT_GAUSSIAN) AF_FAIL("%s: unknown init of A %d", path, h[8]);
    if (a_st != A_DENSE && a_st != A_BY_SEED) AF_FAIL("%s: unknown A storage %d", path, a_st);
    if (b_st < B_DENSE || b_st > B_DENSE_MASKED) AF_FAIL("%s: unknown B storage %d", path, b_st);
    if (stage < 0) AF_FAIL("%s: bad stage count %d", path, stage);
    if (cfg_len < 0 || cfg_len > ADAPTER_MAX_CONFIG) AF_FAIL("%s: bad training-config length %d", path, cfg_len);
    if (nhist < 0 || nhist > stage) AF_FAIL("%s: bad PLoRA history length %d (stage count %d)", path, nhist, stage);
    if (nhist > 0 && h[2] != ADAPTER_PLORA) AF_FAIL("%s: a stage history in a %s adapter (only PLoRA has one)", path, variant_of((AdapterKind)h[2])->name);
    if (h[2] == ADAPTER_PLORA && nhist != stage)
        AF_FAIL("%s: PLoRA adapter after %d unloads holds the last stage only (no history: written by an older build); "
                "it describes the model only relative to a base with the earlier stages folded in: use that run's model.bin", path, stage);
    for (int i = 25; i < ADAPTER_HEADER_INTS; i++) if (h[i] != 0) AF_FAIL("%s: reserved header word %d is %d, not 0", path, i, h[i]);
    int nslots; uint64_t nA, nB;
    adapter_shape_counts(cfg.targets, cfg.rank, fL, fC, &nslots, &nA, &nB);
    if (h[13] != nslots) AF_FAIL("%s: header says %d slots, targets/L imply %d", path, h[13], nslots);
    if (fnA != nA || fnB != nB) AF_FAIL("%s: header sizes nA=%llu nB=%llu do not match the shapes (nA=%llu nB=%llu)", path,
                                         (unsigned long long)fnA, (unsigned long long)fnB, (unsigned long long)nA, (unsigned long long)nB);
    if (b_st == B_DENSE ? nkept != 0 : nkept > nB) AF_FAIL("%s: bad kept count %llu (B has %llu entries)", path, (unsigned long long)nkept, (unsigned long long)nB);
    if (nhist > 0 && nA + nB > (uint64_t)size / 4 / (uint64_t)nhist)
        AF_FAIL("%s: truncated: %zu bytes cannot hold %d history stages of %llu values", path, size, nhist, (unsigned long long)(nA + nB));
    uint64_t expect = 4 * ADAPTER_HEADER_INTS + (uint64_t)cfg_len + (a_st == A_DENSE ? 4 * nA : 0)
                    + (b_st == B_SPARSE ? 8 * nkept : b_st == B_DENSE_MASKED ? 4 * (nB + nkept) : 4 * nB)
                    + 4 * (uint64_t)nhist * (nA + nB);
    if ((uint64_t)size < expect) AF_FAIL("%s: truncated: %zu bytes, the header implies %llu", path, size, (unsigned long long)expect);
    if ((uint64_t)size > expect) AF_FAIL("%s: %llu trailing bytes after the adapter data", path, (unsigned long long)(size - expect));
    const uint8_t *p = buf + 4 * ADAPTER_HEADER_INTS;
    if (memchr(p, 0, (size_t)cfg_len)) AF_FAIL("%s: training-config string contains a NUL byte", path);
    const uint8_t *pcfg = p; p += cfg_len;
    const uint8_t *pA = a_st == A_DENSE ? p : NULL; p += a_st == A_DENSE ? 4 * nA : 0;
    // B values and mask indices, copied out (the body is not 4-byte aligned after the string)
    uint64_t nvals = b_st == B_SPARSE ? nkept : nB, nidx = b_st == B_DENSE ? 0 : nkept;
    float *vals = malloc(sizeof(float) * (nvals ? nvals : 1));
    uint32_t *idx = malloc(sizeof(uint32_t) * (nidx ? nidx : 1));
    if (!vals || !idx) { free(vals); free(idx); AF_FAIL("%s: out of memory", path); }
    if (b_st == B_SPARSE) { memcpy(idx, p, 4 * nidx); memcpy(vals, p + 4 * nidx, 4 * nvals); }
    else { memcpy(vals, p, 4 * nvals); memcpy(idx, p + 4 * nvals, 4 * nidx); }
    const uint8_t *phist = p + 4 * (nidx + nvals);
    size_t bad;
    if (af_check_indices(idx, nidx, nB, path, err, errlen) != 0) { free(vals); free(idx); free(buf); return -1; }
    if (!af_all_finite(vals, nvals, &bad)) { free(vals); free(idx); AF_FAIL("%s: B value %zu is not finite (NaN/Inf refused)", path, bad); }
    if (adapter_create(ad, &cfg, fL, fC, err, errlen) != 0) { free(vals); free(idx); free(buf); return -1; }
    if (ad->nA != nA || ad->nB != nB || ad->nslots != nslots) { adapter_free(ad); free(vals); free(idx); AF_FAIL("%s: internal: shapes disagree with adapter_create", path); }
    if (pA) {
        memcpy(ad->params, pA, 4 * nA);
        if (!af_all_finite(ad->params, nA, &bad)) { adapter_free(ad); free(vals); free(idx); AF_FAIL("%s: A value %zu is not finite (NaN/Inf refused)", path, bad); }
    }
    float *B = ad->params + ad->nA;
    if (b_st != B_DENSE) {
        uint8_t *mask = calloc(nB ? nB : 1, 1);
        if (!mask) { adapter_free(ad); free(vals); free(idx); AF_FAIL("%s: out of memory", path); }
        for (uint64_t k = 0; k < nkept; k++) mask[idx[k]] = 1;
        adapter_set_mask(ad, mask, 0);  // B is filled below
        free(mask);
    }
    if (b_st == B_SPARSE) for (uint64_t k = 0; k < nkept; k++) B[idx[k]] = vals[k];
    else memcpy(B, vals, 4 * nB);
    ad->stage = stage;
    if (nhist > 0) {
        size_t nh = (size_t)nhist * (nA + nB);
        if (!(ad->hist = malloc(sizeof(float) * nh))) { adapter_free(ad); free(vals); free(idx); AF_FAIL("%s: out of memory", path); }
        memcpy(ad->hist, phist, 4 * nh);
        ad->nhist = ad->hist_cap = nhist;
        if (!af_all_finite(ad->hist, nh, &bad)) { adapter_free(ad); free(vals); free(idx); AF_FAIL("%s: PLoRA history value %zu is not finite (NaN/Inf refused)", path, bad); }
    }
    if (train_config) {
        *train_config = xcalloc((size_t)cfg_len + 1, 1, "adapter training config");
        if (*train_config) { memcpy(*train_config, pcfg, (size_t)cfg_len); (*train_config)[cfg_len] = 0; }
    }
    free(vals); free(idx); free(buf);
#undef AF_FAIL
    return 0;
}

static int adapter_load(Adapter *ad, const char *path, int L, int C, char *err, size_t errlen) {
    return adapter_load_ex(ad, path, L, C, NULL, err, errlen);
}

// Prints what the file costs next to an equal-rank dense LoRA file (issue 4's size report).
static void adapter_file_report(const Adapter *ad, size_t cfg_len, FILE *out) {
    uint64_t ours = adapter_file_bytes(ad, cfg_len), lora = adapter_file_bytes_lora(ad, cfg_len);
    fprintf(out, "adapter file: %llu bytes (%s, rank %d, A %s, B %s); an equal-rank LoRA file: %llu bytes (%.2f%%)\n",
            (unsigned long long)ours, variant_of(ad->cfg.kind)->name, ad->cfg.rank,
            adapter_A_is_seeded(ad) ? "by seed" : "dense",
            adapter_B_storage(ad) == B_SPARSE ? "sparse" : adapter_B_storage(ad) == B_DENSE_MASKED ? "dense+mask" : "dense",
            (unsigned long long)lora, 100.0 * (double)ours / (double)lora);
}

// ----------------------------------------------------------------------------
// the mask file (--mask FILE, DIR/mask.bin)

static int mask_save(const Adapter *ad, const uint8_t *mask, const char *path, char *err, size_t errlen) {
    size_t nk = 0;
    for (size_t i = 0; i < ad->nB; i++) nk += mask[i] != 0;
    uint32_t *idx = malloc(sizeof(uint32_t) * (nk ? nk : 1));
    if (!idx) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    size_t k = 0;
    for (size_t i = 0; i < ad->nB; i++) if (mask[i]) idx[k++] = (uint32_t)i;
    int32_t h[ADAPTER_HEADER_INTS] = {0};
    h[0] = MASK_MAGIC; h[1] = MASK_VERSION; h[2] = ad->L; h[3] = ad->C; h[4] = ad->cfg.rank; h[5] = ad->cfg.targets;
    h[6] = ad->nslots; af_put64(h, 7, ad->nB); af_put64(h, 9, nk);
    const void *parts[2] = {h, idx};
    size_t lens[2] = {sizeof(h), sizeof(uint32_t) * nk};
    int rc = write_chunks_atomic(path, parts, lens, 2, err, errlen);
    free(idx);
    return rc;
}

// Reads a mask file for ad's shapes into a fresh (nB,) 0/1 array (caller frees).
static int mask_load(const Adapter *ad, const char *path, uint8_t **mask_out, char *err, size_t errlen) {
    *mask_out = NULL;
    size_t size = 0;
    uint8_t *buf = read_whole_file(path, &size, err, errlen);
    if (!buf) return -1;
#define MF_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); free(buf); return -1; } while (0)
    if (size < 4 * ADAPTER_HEADER_INTS) MF_FAIL("%s: too short for a mask header (%zu bytes)", path, size);
    int32_t h[ADAPTER_HEADER_INTS];
    memcpy(h, buf, sizeof(h));
    if (h[0] != MASK_MAGIC) MF_FAIL("%s: bad magic %d (expected %d): not a mask file", path, h[0], MASK_MAGIC);
    if (h[1] != MASK_VERSION) MF_FAIL("%s: unsupported mask file version %d", path, h[1]);
    if (h[2] != ad->L || h[3] != ad->C || h[4] != ad->cfg.rank || h[5] != ad->cfg.targets || h[6] != ad->nslots)
        MF_FAIL("%s: mask is for L=%d C=%d rank=%d targets=%d slots=%d; the adapter has L=%d C=%d rank=%d targets=%d slots=%d",
                path, h[2], h[3], h[4], h[5], h[6], ad->L, ad->C, ad->cfg.rank, ad->cfg.targets, ad->nslots);
    uint64_t nB = af_get64(h, 7), nk = af_get64(h, 9);
    if (nB != ad->nB) MF_FAIL("%s: mask covers %llu B entries, the adapter has %zu", path, (unsigned long long)nB, ad->nB);
    if (nk > nB) MF_FAIL("%s: kept count %llu exceeds %llu", path, (unsigned long long)nk, (unsigned long long)nB);
    for (int i = 11; i < ADAPTER_HEADER_INTS; i++) if (h[i] != 0) MF_FAIL("%s: reserved header word %d is %d, not 0", path, i, h[i]);
    uint64_t expect = 4 * ADAPTER_HEADER_INTS + 4 * nk;
    if ((uint64_t)size != expect) MF_FAIL("%s: %zu bytes, the header implies %llu (%s)", path, size, (unsigned long long)expect, (uint64_t)size < expect ? "truncated" : "trailing bytes");
    uint32_t *idx = malloc(sizeof(uint32_t) * (nk ? nk : 1));
    uint8_t *mask = calloc(nB ? nB : 1, 1);
    if (!idx || !mask) { free(idx); free(mask); MF_FAIL("%s: out of memory", path); }
    memcpy(idx, buf + 4 * ADAPTER_HEADER_INTS, 4 * nk);
    if (af_check_indices(idx, nk, nB, path, err, errlen) != 0) { free(idx); free(mask); free(buf); return -1; }
    for (uint64_t k = 0; k < nk; k++) mask[idx[k]] = 1;
    free(idx); free(buf);
#undef MF_FAIL
    *mask_out = mask;
    return 0;
}

#endif // LORA_ADAPTER_FILE_H
