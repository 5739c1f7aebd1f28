/*
test_adapter_io.c — the adapter file (lora/adapter_file.h), the LoRI mask file, PEFT export/import
(lora/peft.h) and merging (lora/merge.h). libcheck; run ./test_adapter_io (exit status != 0 on failure).
*/
#include <check.h>
#include <sys/stat.h>
#include "data/dataloader.h"
#include "kernels/gemm.h"
#include "lora/adapter.h"
#include "lora/adapter_file.h"
#include "lora/peft.h"

static char tmpdir[256];
static char errbuf[1024];

static void setup_tmpdir(void) {
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_adapter_io_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}
static void remove_tmpdir(void) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (strncmp(tmpdir, "/tmp/test_adapter_io_", 21) == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}
static const char *tpath(const char *name) {
    static char p[4][512];
    static int i = 0;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", tmpdir, name);
    return p[i];
}

// A small adapter (L=3, C=8) with random A and B of the given kind.
static void make_adapter(Adapter *ad, AdapterKind kind, int rank, int targets, uint64_t seed) {
    AdapterConfig cfg = {.kind = kind, .rank = rank, .alpha = 16.0f, .rslora = 0, .dropout = 0.05f,
                         .targets = targets, .init = INIT_KAIMING, .seed = seed};
    ck_assert_int_eq(adapter_create(ad, &cfg, 3, 8, errbuf, sizeof(errbuf)), 0);
    uint64_t rng = seed * 7 + 1;
    float *B = ad->params + ad->nA;
    for (size_t i = 0; i < ad->nB; i++) B[i] = 2.0f * rng_uniform(&rng) - 1.0f;
    if (kind != ADAPTER_LORI)
        for (size_t i = 0; i < ad->nA; i++) ad->params[i] += 0.01f * (rng_uniform(&rng) - 0.5f);  // trained A
}

static void assert_same_adapter(const Adapter *a, const Adapter *b) {
    ck_assert_int_eq(a->cfg.kind, b->cfg.kind);
    ck_assert_int_eq(a->cfg.rank, b->cfg.rank);
    ck_assert(a->cfg.alpha == b->cfg.alpha);
    ck_assert(a->cfg.dropout == b->cfg.dropout);
    ck_assert_int_eq(a->cfg.rslora, b->cfg.rslora);
    ck_assert_int_eq(a->cfg.targets, b->cfg.targets);
    ck_assert_int_eq(a->cfg.init, b->cfg.init);
    ck_assert(a->cfg.seed == b->cfg.seed);
    ck_assert_int_eq(a->L, b->L); ck_assert_int_eq(a->C, b->C);
    ck_assert_int_eq(a->nslots, b->nslots);
    ck_assert_int_eq(a->stage, b->stage);
    ck_assert_uint_eq(a->nA, b->nA); ck_assert_uint_eq(a->nB, b->nB);
    ck_assert(memcmp(a->params, b->params, sizeof(float) * (a->nA + a->nB)) == 0);
    ck_assert_int_eq(a->nhist, b->nhist);
    if (a->nhist) ck_assert(memcmp(a->hist, b->hist, sizeof(float) * (a->nA + a->nB) * (size_t)a->nhist) == 0);
    ck_assert_int_eq(a->mask != NULL, b->mask != NULL);
    if (a->mask) {
        ck_assert(memcmp(a->mask, b->mask, a->nB) == 0);
        ck_assert_uint_eq(a->nkept, b->nkept);
        ck_assert(memcmp(a->kept, b->kept, sizeof(uint32_t) * a->nkept) == 0);
    }
}

static void spit(const char *p, const void *b, size_t n);
static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void roundtrip(const Adapter *ad, const char *name, const char *cfgstr) {
    const char *p = tpath(name);
    ck_assert_msg(adapter_save(ad, p, cfgstr, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    ck_assert_int_eq(file_size(p), (long)adapter_file_bytes(ad, strlen(cfgstr)));
    Adapter back;
    char *cs = NULL;
    ck_assert_msg(adapter_load_ex(&back, p, ad->L, ad->C, &cs, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    assert_same_adapter(ad, &back);
    ck_assert_str_eq(cs, cfgstr);
    free(cs);
    adapter_free(&back);
}

// ----------------------------------------------------------------------------
// own format

START_TEST(test_roundtrip_lora) {
    Adapter ad; make_adapter(&ad, ADAPTER_LORA, 4, 15, 11);
    ad.cfg.rslora = 1;
    roundtrip(&ad, "lora.bin", "./train_lora --rank 4 --alpha 16");
    ck_assert(!adapter_A_is_seeded(&ad));
    adapter_free(&ad);
} END_TEST

START_TEST(test_roundtrip_lori_d) {
    Adapter ad; make_adapter(&ad, ADAPTER_LORI, 4, 5, 12);  // qkv + fc
    ck_assert(adapter_A_is_seeded(&ad));
    roundtrip(&ad, "lori_d.bin", "");
    // A is not stored: the file is header + B
    ck_assert_int_eq(file_size(tpath("lori_d.bin")), 1024 + 4 * (long)ad.nB);
    adapter_free(&ad);
} END_TEST

START_TEST(test_roundtrip_lori_gaussian) {
    Adapter ad;
    AdapterConfig cfg = {.kind = ADAPTER_LORI, .rank = 2, .alpha = 4.0f, .targets = 15, .init = INIT_GAUSSIAN, .seed = 0xDEADBEEFCAFEull};
    ck_assert_int_eq(adapter_create(&ad, &cfg, 3, 8, errbuf, sizeof(errbuf)), 0);
    ad.params[ad.nA + 3] = 0.5f;
    roundtrip(&ad, "lori_g.bin", "gaussian");
    adapter_free(&ad);
} END_TEST

START_TEST(test_roundtrip_lori_s) {
    Adapter ad; make_adapter(&ad, ADAPTER_LORI, 4, 15, 13);
    uint8_t *mask = adapter_make_mask(&ad, MASK_MODEL, 0.9f, 0);
    adapter_set_mask(&ad, mask, 1);
    ck_assert_int_eq(adapter_B_storage(&ad), B_SPARSE);
    roundtrip(&ad, "lori_s.bin", "lori-s");
    // sparse file == dense adapter after load: every B entry, masked ones exactly 0
    Adapter back;
    ck_assert_int_eq(adapter_load(&back, tpath("lori_s.bin"), 3, 8, errbuf, sizeof(errbuf)), 0);
    for (size_t i = 0; i < ad.nB; i++) {
        ck_assert(back.params[back.nA + i] == ad.params[ad.nA + i]);
        if (!mask[i]) ck_assert(back.params[back.nA + i] == 0.0f);
    }
    ck_assert_int_eq(file_size(tpath("lori_s.bin")), 1024 + 6 + 8 * (long)ad.nkept);
    ck_assert_int_eq((long)adapter_file_bytes_lora(&ad, 6), 1024 + 6 + 4 * (long)(ad.nA + ad.nB));
    adapter_free(&back);
    // the mask file alone
    ck_assert_msg(mask_save(&ad, mask, tpath("mask.bin"), errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    uint8_t *m2 = NULL;
    ck_assert_msg(mask_load(&ad, tpath("mask.bin"), &m2, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    ck_assert(memcmp(mask, m2, ad.nB) == 0);
    free(m2);
    // a mask for other shapes is refused
    Adapter other; make_adapter(&other, ADAPTER_LORI, 2, 15, 13);
    ck_assert_int_eq(mask_load(&other, tpath("mask.bin"), &m2, errbuf, sizeof(errbuf)), -1);
    ck_assert(strstr(errbuf, "rank") != NULL);
    adapter_free(&other);
    free(mask);
    adapter_free(&ad);
} END_TEST

START_TEST(test_roundtrip_lori_s_continual) {
    // stage 2 of continual LoRI-S: nonzero stage-1 entries outside the new mask are kept (dense + mask)
    Adapter ad; make_adapter(&ad, ADAPTER_LORI, 4, 15, 14);
    float *B = ad.params + ad.nA;
    float *saved = malloc(sizeof(float) * ad.nB);
    memcpy(saved, B, sizeof(float) * ad.nB);
    uint8_t *mask = adapter_make_mask(&ad, MASK_RANDOM, 0.9f, 5);
    adapter_set_mask(&ad, mask, 1);
    memcpy(B, saved, sizeof(float) * ad.nB);
    ck_assert_int_eq(adapter_B_storage(&ad), B_DENSE_MASKED);
    roundtrip(&ad, "lori_s2.bin", "stage 2");
    free(saved); free(mask);
    adapter_free(&ad);
} END_TEST

// Base weights for the adapters above (L=3, C=8): every adaptable matrix of every layer.
typedef struct { float w[3][NUM_TARGETS][4 * 8 * 8]; } FakeBase;
static float *fake_W(void *ctx, int l, int t) { return ((FakeBase *)ctx)->w[l][t]; }
static void fake_base_init(FakeBase *fb, uint64_t seed) {
    uint64_t rng = seed;
    for (int l = 0; l < 3; l++) for (int t = 0; t < NUM_TARGETS; t++) for (int i = 0; i < 4 * 8 * 8; i++)
        fb->w[l][t][i] = rng_uniform(&rng) - 0.5f;
}
// "Trains" the current stage: new random B and a perturbed A.
static void fake_train(Adapter *ad, uint64_t seed) {
    uint64_t rng = seed;
    for (size_t i = 0; i < ad->nB; i++) ad->params[ad->nA + i] += 0.5f * (rng_uniform(&rng) - 0.5f);
    for (size_t i = 0; i < ad->nA; i++) ad->params[i] += 0.05f * (rng_uniform(&rng) - 0.5f);
}

START_TEST(test_roundtrip_plora) {
    // three unloads (momentum 0, 0.5 writeup, 0.3 sqrt): the file keeps every stage
    Adapter ad; make_adapter(&ad, ADAPTER_PLORA, 3, 10, 15);
    FakeBase fb; fake_base_init(&fb, 3);
    float ms[3] = {0.0f, 0.5f, 0.3f};
    for (int k = 0; k < 3; k++) {
        ad.plora_mode = k == 1 ? PLORA_WRITEUP : PLORA_SQRT;
        ck_assert_int_eq(plora_unload(&ad, fake_W, &fb, ms[k]), 0);
        fake_train(&ad, 100 + k);
    }
    ck_assert_int_eq(ad.stage, 3);
    ck_assert_int_eq(ad.nhist, 3);
    roundtrip(&ad, "plora.bin", "plora stage 3");
    // a PLoRA file without its history (an older build's: stage 3, nhist 0) is refused, naming model.bin
    const char *p = tpath("plora.bin");
    size_t n; char e2[256];
    uint8_t *b = read_whole_file(p, &n, e2, sizeof(e2));
    ck_assert_ptr_nonnull(b);
    int32_t *h = (int32_t *)b;
    ck_assert_int_eq(h[24], 3);
    size_t hist_bytes = 4 * 3 * (ad.nA + ad.nB);
    h[24] = 0;
    spit(tpath("legacy.bin"), b, n - hist_bytes);
    Adapter back;
    ck_assert_int_ne(adapter_load(&back, tpath("legacy.bin"), 3, 8, errbuf, sizeof(errbuf)), 0);
    ck_assert_ptr_nonnull(strstr(errbuf, "model.bin"));
    // a history longer than the stage count, a history on LoRA, a truncated history: refused
    h[24] = 4;
    spit(tpath("bad.bin"), b, n + 4 * (ad.nA + ad.nB));
    ck_assert_int_ne(adapter_load(&back, tpath("bad.bin"), 3, 8, errbuf, sizeof(errbuf)), 0);
    h[24] = 3;
    spit(tpath("bad.bin"), b, n - 4);
    ck_assert_int_ne(adapter_load(&back, tpath("bad.bin"), 3, 8, errbuf, sizeof(errbuf)), 0);
    h[2] = ADAPTER_LORA;
    spit(tpath("bad.bin"), b, n);
    ck_assert_int_ne(adapter_load(&back, tpath("bad.bin"), 3, 8, errbuf, sizeof(errbuf)), 0);
    free(b);
    adapter_free(&ad);
} END_TEST

// The exact LoRA of a PLoRA run: W_orig + flat's s B A equals the base the unloads wrote plus the
// current stage, to float rounding; without the history (the old export) it does not.
START_TEST(test_plora_flatten_exact) {
    for (int mode = 0; mode < 2; mode++) {
        Adapter ad; make_adapter(&ad, ADAPTER_PLORA, 2, 15, 40 + mode);
        ad.plora_mode = (PLoRAMomentum)mode;
        FakeBase orig, run;
        fake_base_init(&orig, 9); run = orig;
        float ms[3] = {0.0f, 0.4f, 0.0f};
        for (int k = 0; k < 3; k++) { ck_assert_int_eq(plora_unload(&ad, fake_W, &run, ms[k]), 0); fake_train(&ad, 200 + k); }
        Adapter flat;
        ck_assert_msg(adapter_flatten_stages(&ad, &flat, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
        ck_assert_int_eq(flat.cfg.kind, ADAPTER_LORA);
        ck_assert_int_eq(flat.cfg.rank, 4 * 2);
        ck_assert(flat.scale == 1.0f);
        ck_assert_int_eq(flat.nhist, 0);
        FakeBase want = run, got = orig, last = orig;
        double err = 0, err_last = 0, mx = 0;
        for (int s = 0; s < ad.nslots; s++) {
            int l = ad.slot_layer[s], t = ad.slot_target[s];
            adapter_fold(&ad, s, want.w[l][t], 1.0f);   // the run's model: its base + the current stage
            adapter_fold(&flat, s, got.w[l][t], 1.0f);  // the export on the original base
            adapter_fold(&ad, s, last.w[l][t], 1.0f);   // the current stage alone on the original base
            for (int i = 0; i < ad.slot_in[s] * ad.slot_out[s]; i++) {
                err = fmax(err, fabs(want.w[l][t][i] - got.w[l][t][i]));
                err_last = fmax(err_last, fabs(want.w[l][t][i] - last.w[l][t][i]));
                mx = fmax(mx, fabs(want.w[l][t][i]));
            }
        }
        printf("PLoRA flatten (%s): max |W_run - (W_orig + flat)| %.3g, without the history %.3g (max |W| %.3g)\n",
               plora_momentum_names[mode], err, err_last, mx);
        ck_assert_double_le(err, 1e-6 * (1 + mx));   // float rounding of sums of a few products
        ck_assert_double_gt(err_last, 1e-2);         // the history matters
        adapter_free(&flat);
        // rank above C: refused, naming the merged model
        ad.cfg.rank = 3;  // pretend: (3 + 1) x 3 = 12 > C = 8 (only the rank test runs before the copy)
        ck_assert_int_ne(adapter_flatten_stages(&ad, &flat, errbuf, sizeof(errbuf)), 0);
        ck_assert_ptr_nonnull(strstr(errbuf, "model.bin"));
        ad.cfg.rank = 2;
        adapter_free(&ad);
    }
} END_TEST

START_TEST(test_atomic_save) {
    Adapter ad; make_adapter(&ad, ADAPTER_LORA, 2, 1, 16);
    const char *p = tpath("atomic.bin");
    ck_assert_int_eq(adapter_save(&ad, p, "v1", errbuf, sizeof(errbuf)), 0);
    long before = file_size(p);
    // a NaN is refused and leaves the old file intact
    ad.params[ad.nA + 1] = NAN;
    ck_assert_int_eq(adapter_save(&ad, p, "v2", errbuf, sizeof(errbuf)), -1);
    ck_assert(strstr(errbuf, "not finite") != NULL);
    ck_assert_int_eq(file_size(p), before);
    // a directory that does not exist: error, nothing written
    ck_assert_int_eq(adapter_save(&ad, "/nonexistent_dir_xyz/a.bin", "", errbuf, sizeof(errbuf)), -1);
    ck_assert(strstr(errbuf, "/nonexistent_dir_xyz/a.bin") != NULL);
    adapter_free(&ad);
} END_TEST

// Loads a file that was modified by `edit`; expects refusal with `needle` in the message.
static uint8_t *slurp(const char *p, size_t *n) { return read_whole_file(p, n, errbuf, sizeof(errbuf)); }
static void spit(const char *p, const void *b, size_t n) { FILE *f = fopen(p, "wb"); fwrite(b, 1, n, f); fclose(f); }
static void expect_refused(const char *p, int L, int C, const char *needle) {
    Adapter ad;
    ck_assert_int_eq(adapter_load(&ad, p, L, C, errbuf, sizeof(errbuf)), -1);
    ck_assert_msg(strstr(errbuf, needle) != NULL, "message '%s' lacks '%s'", errbuf, needle);
    ck_assert_msg(strstr(errbuf, p) != NULL, "message '%s' does not name the file", errbuf);
}

START_TEST(test_refuses_bad_files) {
    Adapter ad; make_adapter(&ad, ADAPTER_LORA, 4, 15, 17);
    const char *good = tpath("good.bin"), *bad = tpath("bad.bin");
    ck_assert_int_eq(adapter_save(&ad, good, "cfg", errbuf, sizeof(errbuf)), 0);
    size_t n; uint8_t *b = slurp(good, &n);
    int32_t *h = (int32_t *)b;
    uint8_t *c = malloc(n + 8);
#define EDIT(stmt, L_, C_, needle) do { memcpy(c, b, n); size_t m = n; stmt; spit(bad, c, m); expect_refused(bad, L_, C_, needle); } while (0)
    int32_t *hc = (int32_t *)c;
    EDIT((void)0, 4, 8, "layers");                 // base has 4 layers
    EDIT((void)0, 3, 16, "width");                 // base has C = 16
    EDIT(hc[0] = 1234, 3, 8, "magic");
    EDIT(hc[1] = 99, 3, 8, "version");
    EDIT(hc[3] = 0, 3, 8, "rank");
    EDIT(hc[3] = 9, 3, 8, "rank");                 // above C
    EDIT(hc[2] = 7, 3, 8, "kind");
    EDIT(hc[7] = 0, 3, 8, "targets");
    EDIT(hc[7] = 3, 3, 8, "slots");                // targets changed: slot count no longer matches
    EDIT(hc[13] = 11, 3, 8, "slots");
    EDIT(hc[100] = 1, 3, 8, "reserved");
    EDIT({ float a = NAN; memcpy(&hc[4], &a, 4); }, 3, 8, "alpha");
    EDIT(m = n - 1, 3, 8, "truncated");
    EDIT(m = 500, 3, 8, "too short");
    EDIT({ c[n] = 0; m = n + 1; }, 3, 8, "trailing");
    EDIT({ float v = NAN; memcpy(c + n - 4, &v, 4); }, 3, 8, "not finite");                  // last B value
    EDIT({ float v = INFINITY; memcpy(c + 1024 + 3 + 40, &v, 4); }, 3, 8, "not finite");    // an A value
    EDIT(hc[17] = 2, 3, 8, "trailing");            // config length disagrees with the body
    EDIT(c[1025] = 0, 3, 8, "NUL");
    (void)h;
    free(b);
    // sparse files: bad indices
    uint8_t *mask = adapter_make_mask(&ad, MASK_MODEL, 0.5f, 0);
    ad.cfg.kind = ADAPTER_LORI;
    adapter_set_mask(&ad, mask, 1);
    ck_assert_int_eq(adapter_save(&ad, good, "", errbuf, sizeof(errbuf)), 0);
    b = slurp(good, &n);
    c = realloc(c, n + 8);
    hc = (int32_t *)c;
    size_t base = 1024 + 4 * ad.nA;  // A dense (trained), then indices
    EDIT({ uint32_t v = (uint32_t)ad.nB; memcpy(c + base + 4, &v, 4); }, 3, 8, "out of range");
    EDIT({ uint32_t v = ad.kept[0]; memcpy(c + base + 4, &v, 4); }, 3, 8, "increasing");
    EDIT(hc[22] = (int32_t)ad.nB + 1, 3, 8, "kept count");
#undef EDIT
    // a file that does not exist
    expect_refused(tpath("missing.bin"), 3, 8, "cannot open");
    free(b); free(c); free(mask);
    adapter_free(&ad);
} END_TEST

START_TEST(test_size_report) {
    // GPT-2 124M shapes, rank 8, all four targets: LoRI-S (90% sparse) vs LoRA
    AdapterConfig cfg = {.kind = ADAPTER_LORI, .rank = 8, .alpha = 16.0f, .targets = 15, .init = INIT_KAIMING, .seed = 1};
    Adapter ad;
    ck_assert_int_eq(adapter_create(&ad, &cfg, 12, 768, errbuf, sizeof(errbuf)), 0);
    uint64_t rng = 3;
    for (size_t i = 0; i < ad.nB; i++) ad.params[ad.nA + i] = rng_uniform(&rng) - 0.5f;
    uint8_t *mask = adapter_make_mask(&ad, MASK_MODEL, 0.9f, 0);
    adapter_set_mask(&ad, mask, 1);
    free(mask);
    printf("mask mode %s: ", mask_mode_names[MASK_MODEL]);
    adapter_file_report(&ad, 0, stdout);
    uint64_t ours = adapter_file_bytes(&ad, 0), lora = adapter_file_bytes_lora(&ad, 0);
    // 10% of B kept at 8 bytes each (index + value) vs A and B dense: 0.8·nB / (4·(nA+nB)) = 11.25%
    ck_assert((double)ours < 0.115 * (double)lora);
    adapter_free(&ad);
} END_TEST


// ----------------------------------------------------------------------------
// PEFT export / import

static void write_text(const char *p, const char *s) { spit(p, s, strlen(s)); }

START_TEST(test_peft_roundtrip) {
    // LoRI-S exports as plain LoRA; the import equals it exactly (A, B, rank, alpha, rslora, dropout, targets)
    for (int variant = 0; variant < 3; variant++) {
        Adapter ad;
        if (variant == 0) { make_adapter(&ad, ADAPTER_LORI, 4, 15, 21); uint8_t *m = adapter_make_mask(&ad, MASK_MODEL, 0.9f, 0); adapter_set_mask(&ad, m, 1); free(m); }
        else if (variant == 1) { make_adapter(&ad, ADAPTER_LORA, 3, 5, 22); ad.cfg.rslora = 1; ad.cfg.alpha = 7.25f; ad.scale = adapter_scale(&ad.cfg); }
        else make_adapter(&ad, ADAPTER_PLORA, 2, 10, 23);
        const char *dir = tpath("peft");
        ck_assert_msg(peft_export(&ad, dir, "gpt2", errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
        Adapter back;
        ck_assert_msg(peft_import(&back, dir, 3, 8, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
        ck_assert_int_eq(back.cfg.kind, ADAPTER_LORA);
        ck_assert_int_eq(back.cfg.rank, ad.cfg.rank);
        ck_assert(back.cfg.alpha == ad.cfg.alpha);
        ck_assert(back.cfg.dropout == ad.cfg.dropout);
        ck_assert_int_eq(back.cfg.rslora, ad.cfg.rslora);
        ck_assert_int_eq(back.cfg.targets, ad.cfg.targets);
        ck_assert(back.scale == ad.scale);
        ck_assert_uint_eq(back.nA, ad.nA); ck_assert_uint_eq(back.nB, ad.nB);
        ck_assert(memcmp(back.params, ad.params, sizeof(float) * (ad.nA + ad.nB)) == 0);
        // the independent reader (standard-library Python), when python3 exists
        if (system("command -v python3 >/dev/null 2>&1") == 0) {
            char cmd[1024];
            snprintf(cmd, sizeof(cmd), "python3 dev/check_safetensors.py %s --layers 3 --channels 8", dir);
            ck_assert_msg(system(cmd) == 0, "dev/check_safetensors.py refused %s", dir);
        } else if (variant == 0) {
            fprintf(stderr, "\n*** SKIP: dev/check_safetensors.py did NOT run: python3 not found ***\n\n");
        }
        adapter_free(&back);
        adapter_free(&ad);
    }
} END_TEST

// Writes a safetensors file from a header JSON (padded here) and raw data.
static void write_st(const char *p, const char *json, const void *data, size_t n) {
    size_t hl = strlen(json), pad = (hl + 7) / 8 * 8;
    uint8_t *b = malloc(8 + pad + n);
    uint64_t N = pad;
    memcpy(b, &N, 8); memcpy(b + 8, json, hl); memset(b + 8 + hl, ' ', pad - hl); memcpy(b + 8 + pad, data, n);
    spit(p, b, 8 + pad + n);
    free(b);
}

static const char *peft_cfg_qkv1 = "{\"peft_type\":\"LORA\",\"r\":1,\"lora_alpha\":2,\"target_modules\":[\"c_attn\"],"
                                   "\"fan_in_fan_out\":true,\"bias\":\"none\",\"layers_to_transform\":[0]}";

START_TEST(test_peft_f16_bf16) {
    // one layer's c_attn at r = 1, C = 2: A (1, 2) in F16, B (6, 1) in BF16
    const char *dir = tpath("p16");
    mkdir(dir, 0755);
    char p[600];
    snprintf(p, sizeof(p), "%s/adapter_config.json", dir);
    write_text(p, peft_cfg_qkv1);
    uint16_t a16[2] = {0x3C00, 0xC000};            // 1.0, -2.0
    uint16_t b16[6] = {0x3F80, 0x4000, 0xBF00, 0x0000, 0x3E80, 0x4040};  // 1, 2, -0.5, 0, 0.25, 3
    uint8_t data[16];
    memcpy(data, a16, 4); memcpy(data + 4, b16, 12);
    snprintf(p, sizeof(p), "%s/adapter_model.safetensors", dir);
    write_st(p, "{\"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[0,4]},"
                "\"base_model.model.transformer.h.0.attn.c_attn.lora_B.weight\":{\"dtype\":\"BF16\",\"shape\":[6,1],\"data_offsets\":[4,16]}}", data, 16);
    Adapter ad;
    ck_assert_msg(peft_import(&ad, dir, 2, 2, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    ck_assert_int_eq(ad.cfg.targets, 1);
    const float *A = adapter_A(&ad, ad.slot_of[0][0]), *B = adapter_B(&ad, ad.slot_of[0][0]);
    ck_assert(A[0] == 1.0f && A[1] == -2.0f);
    ck_assert(B[0] == 1.0f && B[1] == 2.0f && B[2] == -0.5f && B[3] == 0.0f && B[4] == 0.25f && B[5] == 3.0f);
    // layer 1 is outside layers_to_transform: zeros
    const float *A1 = adapter_A(&ad, ad.slot_of[1][0]);
    ck_assert(A1[0] == 0.0f && A1[1] == 0.0f);
    ck_assert(ad.scale == 2.0f);
    adapter_free(&ad);
    // half-precision specials
    ck_assert(st_half_to_float(0x0001) == ldexpf(1.0f, -24));
    ck_assert(st_half_to_float(0x7BFF) == 65504.0f);
    ck_assert(isinf(st_half_to_float(0x7C00)));
} END_TEST

static void expect_peft_refused(const char *dir, const char *cfgjson, const char *hdr, const void *data, size_t n, const char *needle) {
    char p[600];
    snprintf(p, sizeof(p), "%s/adapter_config.json", dir);
    write_text(p, cfgjson);
    snprintf(p, sizeof(p), "%s/adapter_model.safetensors", dir);
    if (hdr) write_st(p, hdr, data, n);
    Adapter ad;
    ck_assert_int_eq(peft_import(&ad, dir, 2, 2, errbuf, sizeof(errbuf)), -1);
    ck_assert_msg(strstr(errbuf, needle) != NULL, "message '%s' lacks '%s'", errbuf, needle);
}

START_TEST(test_peft_refuses) {
    const char *dir = tpath("pbad");
    mkdir(dir, 0755);
    float d[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const char *K = "base_model.model.transformer.h.0.attn.c_attn.lora_";
    char A[256], B[256], h[2048];
#define STA(shape, b, e) snprintf(A, sizeof(A), "\"%sA.weight\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%d,%d]}", K, shape, b, e)
#define STB(dtype, b, e) snprintf(B, sizeof(B), "\"%sB.weight\":{\"dtype\":\"%s\",\"shape\":[6,1],\"data_offsets\":[%d,%d]}", K, dtype, b, e)
    const char *cfg = peft_cfg_qkv1;
    // the valid file first
    STA("[1,2]", 0, 8); STB("F32", 8, 32); snprintf(h, sizeof(h), "{%s,%s}", A, B);
    char p[600];
    snprintf(p, sizeof(p), "%s/adapter_config.json", dir); write_text(p, cfg);
    snprintf(p, sizeof(p), "%s/adapter_model.safetensors", dir); write_st(p, h, d, 32);
    Adapter ad;
    ck_assert_msg(peft_import(&ad, dir, 2, 2, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    adapter_free(&ad);
    expect_peft_refused(dir, cfg, h, d, 36, "trailing");
    expect_peft_refused(dir, cfg, h, d, 28, "truncated");
    STB("F32", 12, 36); snprintf(h, sizeof(h), "{%s,%s}", A, B);
    expect_peft_refused(dir, cfg, h, d, 36, "hole");
    STB("F32", 4, 28); snprintf(h, sizeof(h), "{%s,%s}", A, B);
    expect_peft_refused(dir, cfg, h, d, 28, "overlaps");
    STB("I32", 8, 32); snprintf(h, sizeof(h), "{%s,%s}", A, B);
    expect_peft_refused(dir, cfg, h, d, 32, "dtype");
    STB("F32", 8, 32);
    STA("[2,1]", 0, 8); snprintf(h, sizeof(h), "{%s,%s}", A, B);
    expect_peft_refused(dir, cfg, h, d, 32, "expected [1, 2]");
    STA("[1,3]", 0, 8); snprintf(h, sizeof(h), "{%s,%s}", A, B);
    expect_peft_refused(dir, cfg, h, d, 32, "need 12");
    STA("[1,2]", 0, 8);
    snprintf(h, sizeof(h), "{%s,%s,\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[32,32]}}", A, B);
    expect_peft_refused(dir, cfg, h, d, 32, "unknown tensor");
    snprintf(h, sizeof(h), "{%s}", A);
    expect_peft_refused(dir, cfg, h, d, 8, "missing tensor");
    snprintf(h, sizeof(h), "{%s,%s,%s}", A, B, A);
    expect_peft_refused(dir, cfg, h, d, 32, "duplicate");
    snprintf(h, sizeof(h), "{%s,%s,}", A, B);
    expect_peft_refused(dir, cfg, h, d, 32, "JSON");
    snprintf(h, sizeof(h), "{%s,%s}", A, B);
    float nan_d[8] = {1, 2, 3, NAN, 5, 6, 7, 8};
    expect_peft_refused(dir, cfg, h, nan_d, 32, "NaN");
    // the header length itself
    snprintf(p, sizeof(p), "%s/adapter_model.safetensors", dir);
    uint8_t raw[16] = {0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0, '{', '}'};
    spit(p, raw, 16);
    expect_peft_refused(dir, cfg, NULL, NULL, 0, "header length");
    // tensors for a layer the base does not have
    char h5[2048];
    snprintf(h5, sizeof(h5), "{%s,%s}", A, B);
    for (char *q = strstr(h5, "h.0."); q; q = strstr(q + 1, "h.0.")) q[2] = '5';
    const char *cfg_all = "{\"peft_type\":\"LORA\",\"r\":1,\"lora_alpha\":2,\"target_modules\":[\"c_attn\"]}";
    expect_peft_refused(dir, cfg_all, h5, d, 32, "layer 5");
    // config problems
    expect_peft_refused(dir, "{\"peft_type\":\"IA3\",\"r\":1,\"lora_alpha\":2,\"target_modules\":[\"c_attn\"]}", h, d, 32, "peft_type");
    expect_peft_refused(dir, "{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":2,\"target_modules\":[\"c_attn\"],\"layers_to_transform\":0}", h, d, 32, "expected [2, 2]");
    expect_peft_refused(dir, "{\"peft_type\":\"LORA\",\"r\":1,\"lora_alpha\":2,\"use_dora\":true,\"target_modules\":[\"c_attn\"]}", h, d, 32, "DoRA");
    expect_peft_refused(dir, "{\"peft_type\":\"LORA\",\"r\":1,\"lora_alpha\":2,\"rank_pattern\":{\"x\":2},\"target_modules\":[\"c_attn\"]}", h, d, 32, "rank_pattern");
    expect_peft_refused(dir, "{\"peft_type\":\"LORA\",\"r\":1,\"lora_alpha\":2,\"target_modules\":[\"q_proj\"]}", h, d, 32, "q_proj");
    expect_peft_refused(dir, "{\"peft_type\":\"LORA\",\"r\":1,\"lora_alpha\":0,\"target_modules\":[\"c_attn\"]}", h, d, 32, "lora_alpha");
    expect_peft_refused(dir, "{\"peft_type\":\"LORA\",\"r\":1,\"r\":1,\"lora_alpha\":2,\"target_modules\":[\"c_attn\"]}", h, d, 32, "duplicate");
    expect_peft_refused(dir, "{\"peft_type\":\"LORA\",\"r\":01}", h, d, 32, "JSON");
    // c_proj alone selects both projections: the fc_proj tensors are then missing
    expect_peft_refused(dir, "{\"peft_type\":\"LORA\",\"r\":1,\"lora_alpha\":2,\"target_modules\":[\"c_attn\",\"c_proj\"],\"layers_to_transform\":[0]}", h, d, 32, "missing tensor");
#undef STA
#undef STB
} END_TEST

START_TEST(test_json_strict) {
    static const char *good[] = {"{}", "[]", " {\"a\" : [1, -2.5e3, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\"]} ", "0", "\"\xc3\xa9\"", "-0.0"};
    static const char *bad[] = {"", "{", "{\"a\":1,}", "[1,]", "01", "1.", ".5", "+1", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"",
                                "\"\\u0000\"", "\"a\nb\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"", "tru", "nul", "{} x", "{\"a\" 1}",
                                "[1 2]", "NaN", "1e999", "\"\xff\"", "/*c*/1"};
    Json j;
    char e[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        ck_assert_msg(json_parse(good[i], strlen(good[i]), &j, e, sizeof(e)) == 0, "'%s': %s", good[i], e);
        json_free(&j);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        ck_assert_msg(json_parse(bad[i], strlen(bad[i]), &j, e, sizeof(e)) == -1, "'%s' accepted", bad[i]);
    char deep[200];
    memset(deep, '[', 100); memset(deep + 100, ']', 100);
    ck_assert_int_eq(json_parse(deep, 200, &j, e, sizeof(e)), -1);
    ck_assert(strstr(e, "deep") != NULL);
    const char *s = "{\"k\":\"x\\u00e9\\ud83d\\ude00\"}";
    ck_assert_int_eq(json_parse(s, strlen(s), &j, e, sizeof(e)), 0);
    ck_assert_str_eq(json_get(&j, &j.v[0], "k")->str, "x\xc3\xa9\xf0\x9f\x98\x80");
    json_free(&j);
} END_TEST

Suite *adapter_io_suite(void) {
    Suite *s = suite_create("adapter_io");
    TCase *tc = tcase_create("own_format");
    tcase_add_checked_fixture(tc, setup_tmpdir, remove_tmpdir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip_lora);
    tcase_add_test(tc, test_roundtrip_lori_d);
    tcase_add_test(tc, test_roundtrip_lori_gaussian);
    tcase_add_test(tc, test_roundtrip_lori_s);
    tcase_add_test(tc, test_roundtrip_lori_s_continual);
    tcase_add_test(tc, test_roundtrip_plora);
    tcase_add_test(tc, test_plora_flatten_exact);
    tcase_add_test(tc, test_atomic_save);
    tcase_add_test(tc, test_refuses_bad_files);
    tcase_add_test(tc, test_size_report);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("peft");
    tcase_add_checked_fixture(tp, setup_tmpdir, remove_tmpdir);
    tcase_set_timeout(tp, 60);
    tcase_add_test(tp, test_peft_roundtrip);
    tcase_add_test(tp, test_peft_f16_bf16);
    tcase_add_test(tp, test_peft_refuses);
    tcase_add_test(tp, test_json_strict);
    suite_add_tcase(s, tp);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(adapter_io_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
