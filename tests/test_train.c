/*
test_train.c — end-to-end tests of the trainer (libcheck): whole runs through run_training on the
tiny reference model. Exact resume for every adapter variant (across a LoRI stage and a PLoRA
stage boundary), the LoRI-D -> mask -> LoRI-S pipeline and its files, continual learning, the
numerical guard, crash-safe writes under a simulated full disk.
*/
#define TESTING
#include "train_gpt2.c"

#include <check.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <sys/resource.h>

#define REF_MODEL "dev/ref/gpt2_tiny.bin"

static void write_tokens(const char *path, int n, int V, uint64_t seed) {
    FILE *f = fopen(path, "wb");
    int32_t h[256] = {20240520, 1, n};
    fwrite(h, 4, 256, f);
    uint64_t rng = seed;
    for (int i = 0; i < n; i++) {
        // a learnable pattern with noise: next = 3*prev+1 mod V, one in five random
        static int prev = 0;
        int t = rng_uniform(&rng) < 0.2f ? (int)(splitmix64(&rng) % (uint64_t)V) : (3 * prev + 1) % V;
        prev = t;
        uint16_t u = (uint16_t)t;
        fwrite(&u, 2, 1, f);
    }
    fclose(f);
}

static void setup_data(void) {
    mkdir("/tmp/tt", 0755);
    write_tokens("/tmp/tt/train.bin", 6000, 61, 1);
    write_tokens("/tmp/tt/val.bin", 1000, 61, 2);
    write_tokens("/tmp/tt/task2.bin", 6000, 61, 3);
}

static void base_config(TrainConfig *c, const char *adapter, const char *out) {
    config_defaults(c);
    strcpy(c->model, REF_MODEL);
    strcpy(c->train_pattern, "/tmp/tt/train.bin");
    strcpy(c->val_pattern, "/tmp/tt/val.bin");
    snprintf(c->output_dir, sizeof(c->output_dir), "%s", out);
    strcpy(c->adapter, adapter);
    c->B = 4; c->T = 16; c->max_steps = 8; c->lr = 1e-2f; c->rank = 4; c->alpha = 8;
    c->val_every = 4; c->val_batches = 2; c->sample_every = 0; c->threads = 2; c->weight_decay = 0.05f;
    c->plora_every = 3; c->dropout = 0.1f; c->print_every = 100;
}

static int run_cfg(TrainConfig *c) {
    char *argv[] = {(char *)"test"};
    ck_assert_int_eq(validate_args(c), 0);
    g_stop_requested = 0;
    return run_training(c, 1, argv, NULL);
}

static uint8_t *slurp(const char *path, size_t *n) {
    char err[512];
    uint8_t *b = read_whole_file(path, n, err, sizeof(err));
    ck_assert_msg(b != NULL, "%s", err);
    return b;
}

// train.csv without the timing columns (ms, tok/s differ between runs)
static char *csv_losses(const char *dir) {
    char path[512];
    snprintf(path, sizeof(path), "%s/train.csv", dir);
    size_t n;
    char *s = (char *)slurp(path, &n);
    s = realloc(s, n + 1);
    s[n] = 0;
    char *out = calloc(n + 1, 1), *o = out;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        int commas = 0;
        for (char *c = line; *c; c++) { if (*c == ',') commas++; if (commas == 5) break; *o++ = *c; }
        *o++ = '\n';
    }
    free(s);
    return out;
}

static void check_exact_resume(const char *adapter, const char *stage, int stop_at) {
    char a[256], b[256], cmd[600];
    snprintf(a, sizeof(a), "/tmp/tt/straight_%s_%s_%d", adapter, stage, stop_at);
    snprintf(b, sizeof(b), "/tmp/tt/resumed_%s_%s_%d", adapter, stage, stop_at);
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", a, b);
    ck_assert_int_eq(system(cmd), 0);
    TrainConfig c;
    base_config(&c, adapter, a);
    strcpy(c.lori_stage, stage);
    ck_assert_int_eq(run_cfg(&c), 0);
    base_config(&c, adapter, b);
    strcpy(c.lori_stage, stage);
    c.stop_at = stop_at;
    ck_assert_int_eq(run_cfg(&c), 0);
    base_config(&c, adapter, b);
    strcpy(c.lori_stage, stage);
    c.resume = 1;
    ck_assert_int_eq(run_cfg(&c), 0);
    // bit-identical: the final state (parameters, adapter, mask, optimizer moments, data position)
    char pa[300], pb[300];
    snprintf(pa, sizeof(pa), "%s/state.bin", a);
    snprintf(pb, sizeof(pb), "%s/state.bin", b);
    size_t na, nb;
    uint8_t *sa = slurp(pa, &na), *sb = slurp(pb, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(sa, sb, na) == 0, "%s (%s): state after resume differs from the straight run", adapter, stage);
    // and the same losses at every step
    char *la = csv_losses(a), *lb = csv_losses(b);
    ck_assert_str_eq(la, lb);
    free(sa); free(sb); free(la); free(lb);
}

START_TEST(test_exact_resume_full) { check_exact_resume("none", "ds", 3); }
END_TEST
START_TEST(test_exact_resume_lora) { check_exact_resume("lora", "ds", 5); }
END_TEST
START_TEST(test_exact_resume_lori_in_d) { check_exact_resume("lori", "ds", 4); }
END_TEST
START_TEST(test_exact_resume_lori_in_s) { check_exact_resume("lori", "ds", 12); }
END_TEST
START_TEST(test_exact_resume_lori_at_boundary) { check_exact_resume("lori", "ds", 8); }
END_TEST
START_TEST(test_exact_resume_plora_across_stage) { check_exact_resume("plora", "ds", 4); } // stages of 3 steps
END_TEST

START_TEST(test_lori_pipeline_files) {
    ck_assert_int_eq(system("rm -rf /tmp/tt/pipe"), 0);
    TrainConfig c;
    base_config(&c, "lori", "/tmp/tt/pipe");
    c.dropout = 0; c.max_steps = 20; c.weight_decay = 0.1f;
    ck_assert_int_eq(run_cfg(&c), 0);
    GPT2 m;
    char err[512];
    ck_assert(gpt2_load_checkpoint(&m, REF_MODEL, err, sizeof(err)) == 0);
    Adapter d, s;
    ck_assert_msg(adapter_load(&d, "/tmp/tt/pipe/adapter_lori_d.bin", m.config.num_layers, m.config.channels, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(adapter_load(&s, "/tmp/tt/pipe/adapter.bin", m.config.num_layers, m.config.channels, err, sizeof(err)) == 0, "%s", err);
    // the same A (same seed), bit for bit; the mask is the top 10% of |B| of LoRI-D, model-wise
    ck_assert(memcmp(d.params, s.params, d.nA * 4) == 0);
    ck_assert_ptr_nonnull(s.mask);
    uint8_t *mask = adapter_make_mask(&d, MASK_MODEL, 0.9f, 0);
    ck_assert(memcmp(mask, s.mask, s.nB) == 0);
    size_t kept = 0;
    for (size_t i = 0; i < s.nB; i++) {
        kept += mask[i];
        if (!mask[i]) ck_assert(s.params[s.nA + i] == 0.0f);
    }
    ck_assert_uint_eq(kept, s.nkept);
    uint8_t *mfile = NULL;
    ck_assert(mask_load(&s, "/tmp/tt/pipe/mask.bin", &mfile, err, sizeof(err)) == 0);
    ck_assert(memcmp(mfile, mask, s.nB) == 0);
    free(mask); free(mfile);
    adapter_free(&d); adapter_free(&s);
    gpt2_free(&m);
}
END_TEST

START_TEST(test_merge_out_equals_adapter) {
    ck_assert_int_eq(system("rm -rf /tmp/tt/merge"), 0);
    TrainConfig c;
    base_config(&c, "lora", "/tmp/tt/merge");
    c.dropout = 0;
    strcpy(c.merge_out, "/tmp/tt/merge/merged.bin");
    ck_assert_int_eq(run_cfg(&c), 0);
    GPT2 base, merged;
    Adapter ad;
    char err[512];
    ck_assert(gpt2_load_checkpoint(&base, REF_MODEL, err, sizeof(err)) == 0);
    ck_assert(gpt2_load_checkpoint(&merged, "/tmp/tt/merge/merged.bin", err, sizeof(err)) == 0);
    ck_assert(adapter_load(&ad, "/tmp/tt/merge/adapter.bin", base.config.num_layers, base.config.channels, err, sizeof(err)) == 0);
    int x[16], y[16];
    for (int i = 0; i < 16; i++) { x[i] = (i * 7) % 61; y[i] = (i * 5 + 1) % 61; }
    gpt2_setup_training(&base, &ad, 1, 16);
    gpt2_setup_training(&merged, NULL, 1, 16);
    ad.training = 0;
    gpt2_forward(&base, x, y, NULL, 1, 16);
    gpt2_forward(&merged, x, y, NULL, 1, 16);
    double d = 0;
    for (int i = 0; i < 16 * base.config.padded_vocab_size; i++) d = fmax(d, fabs(base.acts.logits[i] - merged.acts.logits[i]));
    printf("merged checkpoint vs base + adapter: logits max |diff| %.3g\n", d);
    ck_assert_double_le(d, 1e-5);
    adapter_free(&ad);
    gpt2_free(&base); gpt2_free(&merged);
}
END_TEST

START_TEST(test_continual_lori_s) {
    // stage 1: LoRI-S on task 1; stage 2: LoRI-D on task 2 to find its mask, then LoRI-S trains
    // only that mask on top of the stage-1 adapter: stage-1 entries outside it stay bit-identical
    ck_assert_int_eq(system("rm -rf /tmp/tt/cl1 /tmp/tt/cl2"), 0);
    TrainConfig c;
    base_config(&c, "lori", "/tmp/tt/cl1");
    c.dropout = 0;
    ck_assert_int_eq(run_cfg(&c), 0);
    base_config(&c, "lori", "/tmp/tt/cl2");
    c.dropout = 0;
    strcpy(c.train_pattern, "/tmp/tt/task2.bin");
    strcpy(c.adapter_in, "/tmp/tt/cl1/adapter.bin");
    ck_assert_int_eq(run_cfg(&c), 0);
    GPT2 m;
    char err[512];
    ck_assert(gpt2_load_checkpoint(&m, REF_MODEL, err, sizeof(err)) == 0);
    Adapter s1, s2;
    ck_assert(adapter_load(&s1, "/tmp/tt/cl1/adapter.bin", 2, 32, err, sizeof(err)) == 0);
    ck_assert(adapter_load(&s2, "/tmp/tt/cl2/adapter.bin", 2, 32, err, sizeof(err)) == 0);
    uint8_t *m2 = NULL;
    ck_assert(mask_load(&s2, "/tmp/tt/cl2/mask.bin", &m2, err, sizeof(err)) == 0);
    size_t unchanged = 0, outside = 0, changed_inside = 0;
    for (size_t i = 0; i < s1.nB; i++) {
        float a = s1.params[s1.nA + i], b = s2.params[s2.nA + i];
        if (!m2[i]) { outside++; ck_assert_msg(memcmp(&a, &b, 4) == 0, "entry %zu outside the stage-2 mask changed", i); unchanged++; }
        else changed_inside += a != b;
    }
    ck_assert_uint_gt(outside, 0);
    ck_assert_uint_gt(changed_inside, 0);
    ck_assert(memcmp(s1.params, s2.params, s1.nA * 4) == 0); // A: same seed, never trained
    free(m2);
    adapter_free(&s1); adapter_free(&s2);
    gpt2_free(&m);
}
END_TEST

START_TEST(test_continual_lori_d) {
    // continual LoRI-D (--lori-stage d --adapter-in): the loaded B trains further (as LoRA's would),
    // it is not reset. At learning rate 0 stage 2 must give back stage 1's adapter bit for bit.
    ck_assert_int_eq(system("rm -rf /tmp/tt/cd1 /tmp/tt/cd2"), 0);
    TrainConfig c;
    base_config(&c, "lori", "/tmp/tt/cd1");
    c.dropout = 0;
    strcpy(c.lori_stage, "d");
    ck_assert_int_eq(run_cfg(&c), 0);
    base_config(&c, "lori", "/tmp/tt/cd2");
    c.dropout = 0;
    strcpy(c.lori_stage, "d");
    c.lr = 0;
    c.max_steps = 2;
    strcpy(c.train_pattern, "/tmp/tt/task2.bin");
    strcpy(c.adapter_in, "/tmp/tt/cd1/adapter.bin");
    ck_assert_int_eq(run_cfg(&c), 0);
    Adapter s1, s2;
    char err[512];
    ck_assert(adapter_load(&s1, "/tmp/tt/cd1/adapter.bin", 2, 32, err, sizeof(err)) == 0);
    ck_assert(adapter_load(&s2, "/tmp/tt/cd2/adapter.bin", 2, 32, err, sizeof(err)) == 0);
    ck_assert_uint_eq(s1.nA + s1.nB, s2.nA + s2.nB);
    size_t nonzero = 0;
    for (size_t i = 0; i < s1.nB; i++) nonzero += s1.params[s1.nA + i] != 0;
    ck_assert_uint_gt(nonzero, 0);
    ck_assert(memcmp(s1.params, s2.params, (s1.nA + s1.nB) * 4) == 0);
    adapter_free(&s1); adapter_free(&s2);
}
END_TEST

START_TEST(test_nan_guard_stops) {
    // a learning rate of 1e30 blows the model up: training must stop with status 2
    ck_assert_int_eq(system("rm -rf /tmp/tt/nan"), 0);
    TrainConfig c;
    base_config(&c, "none", "/tmp/tt/nan");
    c.lr = 1e30f; c.grad_clip = 0; c.max_steps = 20;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1); dup2(devnull, 2);
        _exit(run_cfg(&c)); // run_training returns the status a program exits with
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 2);
}
END_TEST

START_TEST(test_disk_full_keeps_previous_file) {
    GPT2 m;
    char err[512];
    ck_assert(gpt2_load_checkpoint(&m, REF_MODEL, err, sizeof(err)) == 0);
    const char *path = "/tmp/tt/full_ckpt.bin";
    remove(path);
    ck_assert(gpt2_write_checkpoint(&m.config, m.params_memory, m.num_parameters, path, err, sizeof(err)) == 0);
    size_t n0;
    uint8_t *before = slurp(path, &n0);
    // simulate a full disk: files may not grow beyond 20 KB (EFBIG on write)
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {20000, 20000};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    m.params_memory[0] += 1.0f;
    int rc = gpt2_write_checkpoint(&m.config, m.params_memory, m.num_parameters, path, err, sizeof(err));
    ck_assert_int_eq(rc, -1);
    printf("simulated disk full: %s\n", err);
    ck_assert(strstr(err, "previous file") != NULL);
    size_t n1;
    uint8_t *after = slurp(path, &n1);
    ck_assert_uint_eq(n0, n1);
    ck_assert(memcmp(before, after, n0) == 0);
    ck_assert_int_ne(access("/tmp/tt/full_ckpt.bin.tmp", F_OK), 0); // no temporary left behind
    free(before); free(after);
    gpt2_free(&m);
}
END_TEST

START_TEST(test_vocab_mismatch_refused) {
    // data with token ids >= the model's vocab: refused with the file named, non-zero exit
    write_tokens("/tmp/tt/bigvocab.bin", 1000, 300, 9);
    TrainConfig c;
    base_config(&c, "none", "");
    strcpy(c.train_pattern, "/tmp/tt/bigvocab.bin");
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/tmp/tt/stderr.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        _exit(run_cfg(&c)); // run_training returns the status a program exits with
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    size_t n;
    char *msg = (char *)slurp("/tmp/tt/stderr.txt", &n);
    msg = realloc(msg, n + 1); msg[n] = 0;
    ck_assert_msg(strstr(msg, "bigvocab.bin") && strstr(msg, "vocab"), "message was: %s", msg);
    free(msg);
}
END_TEST

static Suite *train_suite(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("end-to-end");
    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, setup_data, NULL);
    tcase_add_test(tc, test_exact_resume_full);
    tcase_add_test(tc, test_exact_resume_lora);
    tcase_add_test(tc, test_exact_resume_lori_in_d);
    tcase_add_test(tc, test_exact_resume_lori_in_s);
    tcase_add_test(tc, test_exact_resume_lori_at_boundary);
    tcase_add_test(tc, test_exact_resume_plora_across_stage);
    tcase_add_test(tc, test_lori_pipeline_files);
    tcase_add_test(tc, test_merge_out_equals_adapter);
    tcase_add_test(tc, test_continual_lori_s);
    tcase_add_test(tc, test_continual_lori_d);
    tcase_add_test(tc, test_nan_guard_stops);
    tcase_add_test(tc, test_disk_full_keeps_previous_file);
    tcase_add_test(tc, test_vocab_mismatch_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(train_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
