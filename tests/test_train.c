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
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/resource.h>

#define REF_MODEL "dev/ref/gpt2_tiny.bin"

static void write_tokens(const char *path, int n, int V, uint64_t seed) {
    FILE *f = fopen(path, "wb");
    int32_t h[256] = {20240520, 1, n};
    fwrite(h, 4, 256, f);
    uint64_t rng = seed;
    int prev = 0; // the file is a function of (n, V, seed) alone, whatever was written before it
    for (int i = 0; i < n; i++) {
        // a learnable pattern with noise: next = 3*prev+1 mod V, one in five random
        int t = rng_uniform(&rng) < 0.2f ? (int)(splitmix64(&rng) % (uint64_t)V) : (3 * prev + 1) % V;
        prev = t;
        uint16_t u = (uint16_t)t;
        fwrite(&u, 2, 1, f);
    }
    fclose(f);
}

static uint8_t *slurp(const char *path, size_t *n);
static void setup_data(void) {
    mkdir("/tmp/tt", 0755);
    write_tokens("/tmp/tt/val.bin", 1000, 61, 2);
    write_tokens("/tmp/tt/train.bin", 6000, 61, 1);
    write_tokens("/tmp/tt/task2.bin", 6000, 61, 3);
    // the data must not depend on the order the files are written in (a static in the generator did)
    write_tokens("/tmp/tt/val_again.bin", 1000, 61, 2);
    size_t n1, n2;
    uint8_t *a = slurp("/tmp/tt/val.bin", &n1), *b = slurp("/tmp/tt/val_again.bin", &n2);
    if (n1 != n2 || memcmp(a, b, n1) != 0) { fprintf(stderr, "test_train: write_tokens depends on call order\n"); exit(1); }
    free(a); free(b);
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

// ----------------------------------------------------------------------------
// the files a run ships, read back by other tools

static int have_python(void) { return system("python3 -c 'import json, struct' >/dev/null 2>&1") == 0; }
static void skip_loudly(const char *what) {
    fprintf(stderr, "\n*** SKIP: %s: python3 (standard library) not found; this check did NOT run ***\n\n", what);
}

// max |a - b| over two llm.c checkpoints, relative to 1 + max |b| (each tensor's scale is O(1))
static double checkpoint_diff(const char *pa, const char *pb) {
    GPT2 a, b;
    char err[512];
    ck_assert_msg(gpt2_load_checkpoint(&a, pa, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(gpt2_load_checkpoint(&b, pb, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(a.num_parameters, b.num_parameters);
    double d = 0, mx = 0;
    for (size_t i = 0; i < a.num_parameters; i++) { d = fmax(d, fabs(a.params_memory[i] - b.params_memory[i])); mx = fmax(mx, fabs(b.params_memory[i])); }
    gpt2_free(&a); gpt2_free(&b);
    return d / (1 + mx);
}

// A PLoRA run (3 stages) is reproduced exactly on the ORIGINAL base by what it ships: the PEFT export
// (PEFT's arithmetic W + s B A, done by stdlib Python, not by our reader), adapter.bin through
// merge_adapters --merge-out, and adapter.bin through the trainer's --adapter-in (train_gpt2's default
// adapter is none: the file decides); all equal the run's model.bin. For each momentum mode.
START_TEST(test_plora_exports_reproduce_the_run) {
    ck_assert_msg(access("./merge_adapters", X_OK) == 0, "./merge_adapters must be built (make test_train builds it)");
    const float ms[3] = {0.0f, 0.5f, 0.5f};
    const char *modes[3] = {"sqrt", "sqrt", "writeup"};
    for (int k = 0; k < 3; k++) {
        char dir[128], cmd[1024], p1[256], p2[256], p3[256];
        snprintf(dir, sizeof(dir), "/tmp/tt/plx%d", k);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
        TrainConfig c;
        base_config(&c, "plora", dir);
        c.dropout = 0; c.max_steps = 8; c.plora_every = 3; // unloads after steps 3 and 6: rank 3 x 4 = 12
        c.plora_momentum = ms[k];
        strcpy(c.plora_mode, modes[k]);
        snprintf(c.export_peft, sizeof(c.export_peft), "%s/peft", dir);
        ck_assert_int_eq(run_cfg(&c), 0);
        snprintf(p1, sizeof(p1), "%s/model.bin", dir);
        // PEFT, read and applied by Python's standard library
        if (have_python()) {
            snprintf(cmd, sizeof(cmd), "python3 dev/check_safetensors.py %s/peft --base %s --merged %s", dir, REF_MODEL, p1);
            ck_assert_msg(system(cmd) == 0, "PEFT export of the PLoRA run (%s, m %g): W + s B A on the original base != model.bin", modes[k], ms[k]);
        } else skip_loudly("PLoRA PEFT export vs model.bin");
        // adapter.bin through merge_adapters
        snprintf(p2, sizeof(p2), "%s/via_merge.bin", dir);
        snprintf(cmd, sizeof(cmd), "./merge_adapters %s/adapter.bin --merge-base %s --merge-out %s > /dev/null", dir, REF_MODEL, p2);
        ck_assert_int_eq(system(cmd), 0);
        double d2 = checkpoint_diff(p2, p1);
        // adapter.bin through the trainer: no --adapter flag, -x 0
        TrainConfig e;
        base_config(&e, "none", "");
        snprintf(e.adapter_in, sizeof(e.adapter_in), "%s/adapter.bin", dir);
        e.max_steps = 0;
        snprintf(p3, sizeof(p3), "%s/via_adapter_in.bin", dir);
        strcpy(e.merge_out, p3);
        ck_assert_int_eq(run_cfg(&e), 0);
        double d3 = checkpoint_diff(p3, p1);
        printf("PLoRA (%s, m %g): merge_adapters --merge-out vs model.bin %.3g, --adapter-in --merge-out vs model.bin %.3g\n",
               modes[k], ms[k], d2, d3);
        ck_assert_double_le(d2, 1e-6); // float rounding: the stages summed in another order
        ck_assert_double_le(d3, 1e-6);
    }
}
END_TEST

// The PEFT export of a LoRA run, checked by an independent reader: stdlib Python reads the safetensors
// and applies PEFT's W + s B A to the base; the result must equal the trainer's --merge-out.
START_TEST(test_peft_export_vs_merge_out) {
    ck_assert_int_eq(system("rm -rf /tmp/tt/peftx"), 0);
    TrainConfig c;
    base_config(&c, "lora", "/tmp/tt/peftx");
    c.dropout = 0; c.rslora = 1; c.alpha = 6; // a scale that is not 1 nor 2 (rsLoRA: alpha / sqrt(r) = 3)
    strcpy(c.targets, "qkv,fc_proj");
    strcpy(c.merge_out, "/tmp/tt/peftx/merged.bin");
    strcpy(c.export_peft, "/tmp/tt/peftx/peft");
    ck_assert_int_eq(run_cfg(&c), 0);
    if (!have_python()) { skip_loudly("PEFT export vs --merge-out"); return; }
    ck_assert_int_eq(system("python3 dev/check_safetensors.py /tmp/tt/peftx/peft --base " REF_MODEL " --merged /tmp/tt/peftx/merged.bin"), 0);
}
END_TEST

// Runs the trainer in a child with argv (parse_args, validate_args, run_training): its exit status,
// stderr in /tmp/tt/stderr.txt, and the result through *res when it returns.
static int run_argv(int argc, char **argv, TrainResult *res) {
    TrainResult *shared = res ? mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0) : NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/tmp/tt/stderr.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        TrainConfig c;
        config_defaults(&c);
        if (parse_args(&c, argc, argv) != 0 || validate_args(&c) != 0) _exit(3);
        g_stop_requested = 0;
        TrainResult r = {0};
        int rc = run_training(&c, argc, argv, &r);
        if (shared) *shared = r;
        _exit(rc);
    }
    int status;
    waitpid(pid, &status, 0);
    if (res) { *res = *shared; munmap(shared, sizeof(*res)); }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
static char *stderr_text(void) {
    size_t n;
    char *msg = (char *)slurp("/tmp/tt/stderr.txt", &n);
    msg = realloc(msg, n + 1); msg[n] = 0;
    return msg;
}

// --adapter-in takes the variant and its settings from the file, in every binary (train_gpt2's
// default adapter is none); a flag that disagrees with the file is an error naming both.
START_TEST(test_adapter_in_takes_the_file) {
    // every run in a child (run_argv): libgomp does not survive a fork after this process used it
    ck_assert_int_eq(system("rm -rf /tmp/tt/ain"), 0);
    char *train[] = {"t", "-e", REF_MODEL, "-i", "/tmp/tt/train.bin", "-b", "4", "-t", "16", "-x", "8", "-l", "1e-2",
                     "--adapter", "lora", "--rank", "4", "--alpha", "8", "-s", "0", "-v", "0", "--threads", "2", "-o", "/tmp/tt/ain"};
    ck_assert_int_eq(run_argv((int)(sizeof(train) / sizeof(train[0])), train, NULL), 0);
    char *common[] = {"t", "-e", REF_MODEL, "-j", "/tmp/tt/val.bin", "-b", "4", "-t", "16", "-m", "2", "-x", "0", "-s", "0", "--threads", "2"};
    int nc = (int)(sizeof(common) / sizeof(common[0]));
    char *argv[40];
    TrainResult bare, none, lora;
    for (int i = 0; i < nc; i++) argv[i] = common[i];
    ck_assert_int_eq(run_argv(nc, argv, &bare), 0);                       // the base alone
    argv[nc] = "--adapter-in"; argv[nc + 1] = "/tmp/tt/ain/adapter.bin";
    ck_assert_int_eq(run_argv(nc + 2, argv, &none), 0);                   // no --adapter: the file's lora
    argv[nc + 2] = "--adapter"; argv[nc + 3] = "lora"; argv[nc + 4] = "--rank"; argv[nc + 5] = "4";
    ck_assert_int_eq(run_argv(nc + 6, argv, &lora), 0);                   // the same, said explicitly
    printf("--adapter-in: val loss bare %.6f, file decides %.6f, explicit lora %.6f\n", bare.final_val_loss, none.final_val_loss, lora.final_val_loss);
    ck_assert(none.final_val_loss == lora.final_val_loss);
    ck_assert(fabs(none.final_val_loss - bare.final_val_loss) > 1e-4);  // the adapter is applied, not ignored
    ck_assert_uint_gt(none.trainable, 0);
    ck_assert_uint_lt(none.trainable, none.total_params);
    // conflicts: each an error naming the flag and the file's value
    struct { const char *flag, *val, *want1, *want2; } bad[] = {
        {"--adapter", "lori", "--adapter lori", "lora"}, {"--rank", "8", "--rank 8", "rank 4"},
        {"--alpha", "16", "--alpha 16", "alpha 8"}, {"--targets", "qkv", "--targets qkv", "targets"},
        {"--adapter", "none", "--adapter none", "lora"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        argv[nc + 2] = (char *)bad[k].flag; argv[nc + 3] = (char *)bad[k].val;
        ck_assert_int_eq(run_argv(nc + 4, argv, NULL), 1);
        char *msg = stderr_text();
        ck_assert_msg(strstr(msg, bad[k].want1) && strstr(msg, bad[k].want2) && strstr(msg, "adapter.bin"), "%s %s: message was: %s", bad[k].flag, bad[k].val, msg);
        free(msg);
    }
    // the one combination allowed: a LoRA file continued as PLoRA
    argv[nc + 2] = "--adapter"; argv[nc + 3] = "plora";
    TrainResult pl;
    ck_assert_int_eq(run_argv(nc + 4, argv, &pl), 0);
    ck_assert(pl.final_val_loss == none.final_val_loss);
    // --import-peft the same way: the PEFT export of the adapter, no --adapter (train_gpt2's none)
    ck_assert_int_eq(system("./merge_adapters /tmp/tt/ain/adapter.bin --export-peft /tmp/tt/ain/peft > /dev/null"), 0);
    argv[nc] = "--import-peft"; argv[nc + 1] = "/tmp/tt/ain/peft";
    TrainResult pe;
    ck_assert_int_eq(run_argv(nc + 2, argv, &pe), 0);
    ck_assert(pe.final_val_loss == none.final_val_loss);
    argv[nc + 2] = "--rank"; argv[nc + 3] = "8";
    ck_assert_int_eq(run_argv(nc + 4, argv, NULL), 1);
    char *msg = stderr_text();
    ck_assert_msg(strstr(msg, "--rank 8") && strstr(msg, "rank 4") && strstr(msg, "--import-peft"), "message was: %s", msg);
    free(msg);
    argv[nc + 2] = "--adapter"; argv[nc + 3] = "lori";
    ck_assert_int_eq(run_argv(nc + 4, argv, NULL), 1);
    msg = stderr_text();
    ck_assert_msg(strstr(msg, "--adapter lori") && strstr(msg, "PEFT LoRA"), "message was: %s", msg);
    free(msg);
}
END_TEST

// --beta1, --beta2, --eps reach the optimizer (the trajectory changes) and are checked on resume.
START_TEST(test_adamw_flags) {
    // every run in a child (run_argv): libgomp does not survive a fork after this process used it
    ck_assert_int_eq(system("rm -rf /tmp/tt/b0 /tmp/tt/b1"), 0);
    char *argv[40] = {"t", "-e", REF_MODEL, "-i", "/tmp/tt/train.bin", "-j", "/tmp/tt/val.bin", "-b", "4", "-t", "16", "-x", "8",
                      "-l", "1e-2", "--adapter", "lora", "--rank", "4", "-s", "0", "-v", "4", "-m", "2", "--threads", "2", "-o"};
    int n = 28;
    argv[n] = "/tmp/tt/b0";
    ck_assert_int_eq(run_argv(n + 1, argv, NULL), 0);
    argv[n] = "/tmp/tt/b1"; argv[n + 1] = "--beta2"; argv[n + 2] = "0.95"; argv[n + 3] = "--stop-at"; argv[n + 4] = "4";
    ck_assert_int_eq(run_argv(n + 5, argv, NULL), 0);
    argv[n + 3] = "-y"; argv[n + 4] = "1";
    argv[n + 2] = "0.99";                       // resuming with another beta2: refused, naming both
    ck_assert_int_eq(run_argv(n + 5, argv, NULL), 1);
    char *msg = stderr_text();
    ck_assert_msg(strstr(msg, "--beta2 0.95") && strstr(msg, "--beta2 0.99"), "message was: %s", msg);
    free(msg);
    argv[n + 2] = "0.95";
    ck_assert_int_eq(run_argv(n + 5, argv, NULL), 0);
    char *l0 = csv_losses("/tmp/tt/b0"), *l1 = csv_losses("/tmp/tt/b1");
    printf("AdamW: beta2 0.999 vs 0.95 (stopped at 4, resumed):\n%s---\n%s", l0, l1);
    ck_assert_msg(strcmp(l0, l1) != 0, "--beta2 0.95 must change the run");
    free(l0); free(l1);
}
END_TEST

// Exact match end to end with a hand-made GPT-2-BPE-like tokenizer: multi-byte tokens, EOT at id 300
// (not the byte-level 256), answers ending in a merged newline token ("\n\n", " \n"). A tiny model
// memorises four examples; --eval-em must then score 4/4 on them (the trainer finds the answer's end by
// the tokenizer's newline tokens and EOT), and the same with the byte-level tokenizer.
enum { TK_YES = 257, TK_NO, TK_POS, TK_ITIVE, TK_NLNL, TK_SPNL, TK_EOT = 300, TK_V = 301 };
static void write_tokenizer(const char *path, int bpe) {
    FILE *f = fopen(path, "wb");
    int V = bpe ? TK_V : 257, eot = bpe ? TK_EOT : 256;
    int32_t h[256] = {20240328, 2, V, eot};
    fwrite(h, 4, 256, f);
    for (int i = 0; i < V; i++) {
        char buf[32];
        if (i < 256) { buf[0] = (char)i; buf[1] = 0; }
        else if (i == eot) strcpy(buf, "<|endoftext|>");
        else if (i == TK_YES) strcpy(buf, " yes");
        else if (i == TK_NO) strcpy(buf, " no");
        else if (i == TK_POS) strcpy(buf, " pos");
        else if (i == TK_ITIVE) strcpy(buf, "itive");
        else if (i == TK_NLNL) strcpy(buf, "\n\n");
        else if (i == TK_SPNL) strcpy(buf, " \n");
        else snprintf(buf, sizeof(buf), "<%d>", i);
        uint8_t len = i < 256 ? 1 : (uint8_t)strlen(buf);
        fwrite(&len, 1, 1, f);
        fwrite(buf, 1, len, f);
    }
    fclose(f);
}
// mixed: the references of examples 0 and 2 changed (" no", " posh"), so a model that learned the
// others fails them at its first and second token
static void write_em_shard(const char *stem, int bpe, int copies, int mixed) {
    // prompt bytes | answer tokens
    const char *prompts[4] = {"ab=>", "cd=>", "ef=>", "gh=>"};
    int ans_bpe[4][3] = {{TK_YES, TK_NLNL, -1}, {TK_NO, '\n', -1}, {TK_POS, TK_ITIVE, TK_SPNL}, {TK_NO, TK_NLNL, -1}};
    const char *ans_bytes[4] = {" yes\n", " no\n", " positive\n", " no\n"};
    if (mixed) {
        ans_bpe[0][0] = TK_NO;
        ans_bpe[2][1] = 'h'; ans_bpe[2][2] = '\n';
        ans_bytes[0] = " no\n";
        ans_bytes[2] = " posh\n";
    }
    uint16_t tok[4096]; uint8_t mask[4096]; int n = 0;
    for (int c = 0; c < copies; c++) for (int e = 0; e < 4; e++) {
        tok[n] = bpe ? TK_EOT : 256; mask[n++] = 0;
        for (const char *p = prompts[e]; *p; p++) { tok[n] = (uint8_t)*p; mask[n++] = 0; }
        if (bpe) for (int k = 0; k < 3 && ans_bpe[e][k] >= 0; k++) { tok[n] = (uint16_t)ans_bpe[e][k]; mask[n++] = 1; }
        else for (const char *p = ans_bytes[e]; *p; p++) { tok[n] = (uint8_t)*p; mask[n++] = 1; }
    }
    char path[256];
    snprintf(path, sizeof(path), "%s.bin", stem);
    FILE *f = fopen(path, "wb");
    int32_t h[256] = {20240520, 1, n};
    fwrite(h, 4, 256, f); fwrite(tok, 2, (size_t)n, f); fclose(f);
    snprintf(path, sizeof(path), "%s.lossmask", stem);
    f = fopen(path, "wb");
    int32_t hm[256] = {20240522, 1, n};
    fwrite(hm, 4, 256, f); fwrite(mask, 1, (size_t)n, f); fclose(f);
}
START_TEST(test_exact_match_any_tokenizer) {
    for (int bpe = 1; bpe >= 0; bpe--) {
        const char *d = bpe ? "/tmp/tt/em_bpe" : "/tmp/tt/em_bytes";
        char cmd[256], p[256], tr[256], te[256];
        snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", d, d);
        ck_assert_int_eq(system(cmd), 0);
        snprintf(p, sizeof(p), "%s/tokenizer.bin", d); write_tokenizer(p, bpe);
        snprintf(tr, sizeof(tr), "%s/train", d); write_em_shard(tr, bpe, 40, 0);
        snprintf(te, sizeof(te), "%s/test", d); write_em_shard(te, bpe, 1, 0);
        TrainConfig c;
        config_defaults(&c);
        snprintf(c.model, sizeof(c.model), "L=2,C=32,H=2,V=%d,T=32", bpe ? TK_V : 257);
        snprintf(c.train_pattern, sizeof(c.train_pattern), "%s.bin", tr);
        snprintf(c.eval_em, sizeof(c.eval_em), "%s.bin", te);
        c.B = 4; c.T = 32; c.max_steps = 300; c.lr = 1e-2f; c.grad_clip = 1; c.val_every = 0; c.sample_every = 0;
        c.threads = 2; c.print_every = 1000; c.eval_show = 4; c.shuffle = 0;
        snprintf(c.output_dir, sizeof(c.output_dir), "%s/out", d);
        char *argv[] = {(char *)"test"};
        g_stop_requested = 0;
        TrainResult res = {0};
        ck_assert_int_eq(run_training(&c, 1, argv, &res), 0);
        printf("exact match, %s tokenizer: %d / %d after %d steps (train loss %.4f)\n", bpe ? "BPE-like" : "byte-level",
               res.em_correct, res.em_n, res.steps, res.final_train_loss);
        ck_assert_int_eq(res.em_n, 4);
        ck_assert_int_eq(res.em_correct, 4);
        // the scorer's early stop: examples generated to their end (all shown) and stopped where they can
        // no longer match (none shown) score the same, the latter generating fewer tokens
        char mx[256], model[300], err[512];
        snprintf(mx, sizeof(mx), "%s/mixed", d); write_em_shard(mx, bpe, 1, 1);
        snprintf(model, sizeof(model), "%s/out/model.bin", d);
        GPT2 m;
        ck_assert_msg(gpt2_load_checkpoint(&m, model, err, sizeof(err)) == 0, "%s", err);
        snprintf(mx, sizeof(mx), "%s/mixed.bin", d);
        float *scratch = NULL;
        EMResult full = {0}, early = {0};
        ck_assert_msg(eval_exact_match(&m, NULL, mx, 0, 4, &scratch, &full, err, sizeof(err)) == 0, "%s", err);
        ck_assert_msg(eval_exact_match(&m, NULL, mx, 0, 0, &scratch, &early, err, sizeof(err)) == 0, "%s", err);
        printf("early stop: %d / %d correct from %ld generated tokens, %d / %d from %ld to the end\n", early.correct, early.n,
               early.generated, full.correct, full.n, full.generated);
        ck_assert_int_eq(full.correct, 2);
        ck_assert_int_eq(early.correct, full.correct);
        ck_assert_int_lt(early.generated, full.generated);
        free(scratch);
        gpt2_free(&m);
    }
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
    tcase_add_test(tc, test_plora_exports_reproduce_the_run);
    tcase_add_test(tc, test_peft_export_vs_merge_out);
    tcase_add_test(tc, test_adapter_in_takes_the_file);
    tcase_add_test(tc, test_adamw_flags);
    tcase_add_test(tc, test_exact_match_any_tokenizer);
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
