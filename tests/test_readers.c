/*
test_readers.c — every reader of outside input against hostile files (libcheck): the replay side of
the fuzzing in dev/fuzz/. Run ./test_readers from the repository root (make test-sanitize runs it
under ASan + UBSan).

  replay      every file of the seed corpora (dev/fuzz/corpus/NAME/, dev/fuzz/seeds/ for peft) and
              of dev/fuzz/regressions/NAME/ through every harness: no crash, no contract violation
              (dev/fuzz/fuzz_common.h). A seed must be accepted by its own harness; a regression
              must be rejected by its own harness (-1 and a message), unless its name ends in
              ".ok": an input that is valid but once crashed a reader.
  raw files   the same files, as they are, through every reader that takes a path: 0, or -1 with a
              message naming the file.
  bad paths   a missing file, a directory and an empty file for every reader: -1 and a message
              naming the path (not "out of memory").

A crash found by `make fuzz` (build/fuzz/crashes/NAME/crash-*) becomes a test by copying it into
dev/fuzz/regressions/NAME/ under a name that says what it does.
*/
#define TESTING
#include "train_gpt2.c"
#define FUZZ_REPLAY
#include "dev/fuzz/fuzz_checkpoint.c"
#include "dev/fuzz/fuzz_shard.c"
#include "dev/fuzz/fuzz_tokenizer.c"
#include "dev/fuzz/fuzz_state.c"
#include "dev/fuzz/fuzz_args.c"
#define LLVMFuzzerTestOneInput fuzz_peft_one
#include "dev/fuzz/fuzz_peft.c"
#undef LLVMFuzzerTestOneInput
#include "dev/fuzz/fuzz_bpe.c"
#include "dev/fuzz/fuzz_hf.c"

#include <check.h>
#include <dirent.h>

typedef struct {
    const char *name;
    int (*one)(const uint8_t *, size_t);
    const char *corpus;
    int checks_rc;  // 0: the harness always returns 0 (fuzz_peft), so acceptance is not checked
} Harness;

static const Harness harnesses[] = {
    {"checkpoint", fuzz_checkpoint_one, "dev/fuzz/corpus/checkpoint", 1},
    {"shard", fuzz_shard_one, "dev/fuzz/corpus/shard", 1},
    {"tokenizer", fuzz_tokenizer_one, "dev/fuzz/corpus/tokenizer", 1},
    {"state", fuzz_state_one, "dev/fuzz/corpus/state", 1},
    {"args", fuzz_args_one, "dev/fuzz/corpus/args", 1},
    {"peft", fuzz_peft_one, "dev/fuzz/seeds", 0},
    {"bpe", fuzz_bpe_one, "dev/fuzz/corpus/bpe", 1},
    {"hf", fuzz_hf_one, "dev/fuzz/corpus/hf", 1},
};
#define NUM_HARNESSES (int)(sizeof(harnesses) / sizeof(harnesses[0]))

// ----------------------------------------------------------------------------
// the files: seeds and regressions of every harness, found once in main()

typedef struct {
    char path[512];
    int harness;     // whose corpus or regression directory it is in
    int regression;  // 0: a seed (valid), 1: a regression
    int expect_ok;   // regression named *.ok: its harness accepts it
} Entry;

static Entry *g_entries;
static int g_nentries;

static int entry_cmp(const void *a, const void *b) { return strcmp(((const Entry *)a)->path, ((const Entry *)b)->path); }

static void scan_dir(const char *dir, int harness, int regression) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        g_entries = realloc(g_entries, sizeof(Entry) * (size_t)(g_nentries + 1));
        Entry *en = &g_entries[g_nentries++];
        snprintf(en->path, sizeof(en->path), "%s", path);
        en->harness = harness;
        en->regression = regression;
        size_t n = strlen(e->d_name);
        en->expect_ok = n > 3 && strcmp(e->d_name + n - 3, ".ok") == 0;
    }
    closedir(d);
}

static void find_entries(void) {
    for (int h = 0; h < NUM_HARNESSES; h++) {
        char dir[256];
        scan_dir(harnesses[h].corpus, h, 0);
        snprintf(dir, sizeof(dir), "dev/fuzz/regressions/%s", harnesses[h].name);
        scan_dir(dir, h, 1);
    }
    qsort(g_entries, (size_t)g_nentries, sizeof(Entry), entry_cmp);
}

static uint8_t *slurp(const char *path, size_t *n) {
    char err[512];
    uint8_t *b = read_whole_file(path, n, err, sizeof(err));
    ck_assert_msg(b != NULL, "%s", err);
    return b;
}

// ----------------------------------------------------------------------------
// replay through every harness

START_TEST(test_replay) {
    const Entry *e = &g_entries[_i];
    size_t n;
    uint8_t *data = slurp(e->path, &n);
    for (int h = 0; h < NUM_HARNESSES; h++) {
        int rc = harnesses[h].one(data, n);
        if (h != e->harness || !harnesses[h].checks_rc) continue;
        if (!e->regression) ck_assert_msg(rc == 0, "seed %s is rejected by fuzz_%s", e->path, harnesses[h].name);
        else if (e->expect_ok) ck_assert_msg(rc == 0, "regression %s (.ok) is rejected by fuzz_%s", e->path, harnesses[h].name);
        else ck_assert_msg(rc == -1, "regression %s is accepted by fuzz_%s: it must be rejected", e->path, harnesses[h].name);
    }
    free(data);
}
END_TEST

// ----------------------------------------------------------------------------
// every file as it is, through every reader that takes a path

// A reader's result: 0 (accepted), or -1 with a message naming `name`.
static void check_result(int rc, const char *err, const char *name, const char *reader) {
    ck_assert_msg(rc == 0 || rc == -1, "%s returned %d for %s", reader, rc, name);
    if (rc == 0) return;
    ck_assert_msg(err[0] != 0, "%s rejected %s without a message", reader, name);
    ck_assert_msg(strstr(err, name) != NULL, "%s: the message does not name the file %s: '%s'", reader, name, err);
}

// A LoRI adapter on a tiny model for the mask reader, and that model for the state reader.
static void tiny_adapter(Adapter *ad) {
    char err[256];
    AdapterConfig c = {ADAPTER_LORI, 2, 4.0f, 0, 0.0f, 15, INIT_KAIMING, 1};
    ck_assert_int_eq(adapter_create(ad, &c, 1, 4, err, sizeof(err)), 0);
}

// Runs every path reader on `path`; `what` names the case in messages.
static void all_readers(const char *path, const char *name) {
    char err[1024];
    GPT2 m;
    err[0] = 0;
    int rc = gpt2_load_checkpoint(&m, path, err, sizeof(err));
    check_result(rc, err, name, "gpt2_load_checkpoint");
    if (rc == 0) gpt2_free(&m);

    Tokenizer t;
    err[0] = 0;
    rc = tokenizer_init(&t, path, err, sizeof(err));
    check_result(rc, err, name, "tokenizer_init");
    if (rc == 0) tokenizer_free(&t);

    Shard s;
    err[0] = 0;
    rc = shard_load(&s, path, 257, err, sizeof(err));
    check_result(rc, err, name, "shard_load");
    if (rc == 0) shard_free(&s);

    Adapter ad;
    err[0] = 0;
    char *cfg = NULL;
    rc = adapter_load_ex(&ad, path, 0, 0, &cfg, err, sizeof(err));
    check_result(rc, err, name, "adapter_load");
    if (rc == 0) { free(cfg); adapter_free(&ad); }

    tiny_adapter(&ad);
    uint8_t *mask = NULL;
    err[0] = 0;
    rc = mask_load(&ad, path, &mask, err, sizeof(err));
    check_result(rc, err, name, "mask_load");
    free(mask);
    adapter_free(&ad);

    StFile st;
    err[0] = 0;
    rc = st_read(path, &st, err, sizeof(err));
    check_result(rc, err, name, "st_read");
    if (rc == 0) st_free(&st);

    // the state reader, for a full fine-tuning run of the state harness's model
    fz_state_init();
    GPT2 *sm = &fz_state_model;
    gpt2_setup_training(sm, NULL, FZ_STATE_B, FZ_STATE_T);
    TrainPos pos;
    AdamW opt;
    memset(&opt, 0, sizeof(opt));
    err[0] = 0;
    rc = load_state(path, sm, NULL, &pos, err, sizeof(err));
    if (rc == 0) { adamw_setup(&opt, sm); rc = load_state(path, sm, &opt, &pos, err, sizeof(err)); }
    check_result(rc, err, name, "load_state");
    adamw_free(&opt);
}

START_TEST(test_raw_files) {
    const Entry *e = &g_entries[_i];
    size_t n;
    uint8_t *data = slurp(e->path, &n);
    char dir[96], path[160], mpath[160];
    fz_tmp_path(dir, sizeof(dir), "raw");
    mkdir(dir, 0755);
    // as a shard without a mask, then as a shard whose .lossmask is the same bytes
    snprintf(path, sizeof(path), "%s/x.bin", dir);
    snprintf(mpath, sizeof(mpath), "%s/x.lossmask", dir);
    remove(mpath);
    fz_write_file(path, data, n);
    all_readers(path, path);
    fz_write_file(mpath, data, n);
    all_readers(path, dir);
    // the JSON parser on the bytes, and peft_import on a directory holding them as both files
    Json j;
    char err[1024] = "";
    if (json_parse((const char *)data, n, &j, err, sizeof(err)) == 0) json_free(&j);
    else ck_assert_msg(err[0] != 0, "json_parse failed without a message on %s", e->path);
    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
    fz_write_file(path, data, n);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    fz_write_file(path, data, n);
    Adapter ad;
    err[0] = 0;
    int rc = peft_import(&ad, dir, 2, 4, err, sizeof(err));
    check_result(rc, err, dir, "peft_import");
    if (rc == 0) adapter_free(&ad);
    free(data);
}
END_TEST

// ----------------------------------------------------------------------------
// missing files, directories, empty files

START_TEST(test_bad_paths) {
    char dir[96], missing[128], empty[128], sub[128];
    fz_tmp_path(dir, sizeof(dir), "badpaths");
    mkdir(dir, 0755);
    snprintf(missing, sizeof(missing), "%s/missing.bin", dir);
    snprintf(empty, sizeof(empty), "%s/empty.bin", dir);
    snprintf(sub, sizeof(sub), "%s/adir.bin", dir);
    remove(missing);
    fz_write_file(empty, NULL, 0);
    mkdir(sub, 0755);
    const char *paths[3] = {missing, empty, sub};
    for (int k = 0; k < 3; k++) {
        char err[1024];
        // every path reader must refuse, naming the path, and a directory is not "out of memory"
#define REFUSES(call, reader)                                                                          \
        do {                                                                                            \
            err[0] = 0;                                                                                 \
            int rc_ = (call);                                                                           \
            ck_assert_msg(rc_ == -1, "%s accepted %s", reader, paths[k]);                               \
            ck_assert_msg(strstr(err, paths[k]) != NULL, "%s: message does not name %s: '%s'", reader, paths[k], err); \
            ck_assert_msg(strstr(err, "out of memory") == NULL, "%s on %s: '%s'", reader, paths[k], err); \
        } while (0)
        GPT2 m;
        REFUSES(gpt2_load_checkpoint(&m, paths[k], err, sizeof(err)), "gpt2_load_checkpoint");
        Tokenizer t;
        REFUSES(tokenizer_init(&t, paths[k], err, sizeof(err)), "tokenizer_init");
        Shard s;
        REFUSES(shard_load(&s, paths[k], 0, err, sizeof(err)), "shard_load");
        Adapter ad;
        REFUSES(adapter_load(&ad, paths[k], 0, 0, err, sizeof(err)), "adapter_load");
        StFile st;
        REFUSES(st_read(paths[k], &st, err, sizeof(err)), "st_read");
        tiny_adapter(&ad);
        uint8_t *mask = NULL;
        REFUSES(mask_load(&ad, paths[k], &mask, err, sizeof(err)), "mask_load");
        adapter_free(&ad);
        fz_state_init();
        TrainPos pos;
        gpt2_setup_training(&fz_state_model, NULL, FZ_STATE_B, FZ_STATE_T);
        REFUSES(load_state(paths[k], &fz_state_model, NULL, &pos, err, sizeof(err)), "load_state");
#undef REFUSES
    }
    // a shard whose .lossmask is a directory; a data pattern matching nothing
    char bin[160], lm[160];
    snprintf(bin, sizeof(bin), "%s/y.bin", dir);
    snprintf(lm, sizeof(lm), "%s/y.lossmask", dir);
    int32_t h[256] = {20240520, 1, 0};
    fz_write_file(bin, (const uint8_t *)h, sizeof(h));
    mkdir(lm, 0755);
    Shard s;
    char err[1024] = "";
    ck_assert_int_eq(shard_load(&s, bin, 0, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, lm) && !strstr(err, "out of memory"), "shard_load with a directory as .lossmask: '%s'", err);
    DataLoader dl;
    char pattern[160];
    snprintf(pattern, sizeof(pattern), "%s/nothing*.bin", dir);
    ck_assert_int_eq(dataloader_init(&dl, pattern, 1, 4, 0, 0, 0), -1);
    ck_assert_msg(strstr(dl.err, pattern) != NULL, "dataloader_init: '%s'", dl.err);
    dataloader_free(&dl);
    // peft_import on a directory without the two files
    Adapter ad;
    err[0] = 0;
    ck_assert_int_eq(peft_import(&ad, sub, 2, 4, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, sub) != NULL, "peft_import: '%s'", err);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *readers_suite(void) {
    Suite *s = suite_create("readers");
    TCase *tc = tcase_create("hostile input");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_replay, 0, g_nentries);
    tcase_add_loop_test(tc, test_raw_files, 0, g_nentries);
    tcase_add_test(tc, test_bad_paths);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    find_entries();
    int seeds = 0, regressions = 0;
    for (int i = 0; i < g_nentries; i++) { if (g_entries[i].regression) regressions++; else seeds++; }
    printf("test_readers: %d seeds and %d regressions, through %d harnesses and every path reader\n",
           seeds, regressions, NUM_HARNESSES);
    if (seeds == 0) { fprintf(stderr, "test_readers: no seed corpus found: run from the repository root\n"); return 1; }
    SRunner *sr = srunner_create(readers_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed) { // the loop index in a failure above is the file's number here
        fprintf(stderr, "test_readers: files by loop index:\n");
        for (int i = 0; i < g_nentries; i++) fprintf(stderr, "  %3d  %s\n", i, g_entries[i].path);
    }
    free(g_entries);
    return failed ? 1 : 0;
}
