/*
dev/fuzz/make_seeds.c — writes the seed corpora of the harnesses (dev/fuzz/corpus/NAME/) and the
command-line dictionary (dev/fuzz/args.dict). Every seed is a valid file written by the project's
own writers (gpt2_write_checkpoint, save_state, tasks_write_tokenizer / tasks_write_shard, the data
loader's format), wrapped in its harness's input layout; each is replayed through its harness
before it is kept, so a seed that its reader rejects stops the program. Deterministic.

    make fuzz-seeds        (or: cc -I. -o build/make_seeds dev/fuzz/make_seeds.c -lm && build/make_seeds)
*/
#define TESTING
#include "train_gpt2.c"
#define FUZZ_REPLAY
#include "dev/fuzz/fuzz_checkpoint.c"
#include "dev/fuzz/fuzz_tokenizer.c"
#include "dev/fuzz/fuzz_shard.c"
#include "dev/fuzz/fuzz_state.c"
#include "dev/fuzz/fuzz_args.c"

#define CORPUS "dev/fuzz/corpus"

static char g_tmp[64];

static uint8_t *slurp_or_die(const char *path, size_t *n) {
    char err[512];
    uint8_t *b = read_whole_file(path, n, err, sizeof(err));
    if (!b) die("%s", err);
    return b;
}

// A growable byte buffer: the harness input being assembled.
typedef struct { uint8_t *p; size_t n; } Bytes;
static void put(Bytes *b, const void *src, size_t n) {
    b->p = realloc(b->p, b->n + n + 1);
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u(Bytes *b, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) { uint8_t c = (uint8_t)(v >> (8 * i)); put(b, &c, 1); }
}
static void put_chunk(Bytes *b, const void *src, size_t n) { put_u(b, n, 4); put(b, src, n); }

// Checks the seed with its harness, then writes CORPUS/dir/name.
static void keep(const char *dir, const char *name, const Bytes *b, int (*harness)(const uint8_t *, size_t)) {
    if (harness(b->p, b->n) != 0) die("seed %s/%s is rejected by its own harness", dir, name);
    char path[512];
    snprintf(path, sizeof(path), CORPUS "/%s", dir);
    mkdir(CORPUS, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), CORPUS "/%s/%s", dir, name);
    fz_write_file(path, b->p, b->n);
    printf("  %-48s %6zu bytes\n", path, b->n);
}

// ---- checkpoints: random tiny models written by gpt2_write_checkpoint, and their bf16 (v5) form
static void seeds_checkpoint(void) {
    const char *descs[2] = {"L=1,C=4,H=2,V=8,T=4", "L=2,C=8,H=2,V=13,T=8,P=16"};
    for (int k = 0; k < 2; k++) {
        GPT2Config c;
        if (parse_descriptor(descs[k], &c) != 0) die("bad descriptor %s", descs[k]);
        GPT2 m;
        gpt2_init_random(&m, c, 1 + k);
        char path[128], err[512], name[64];
        snprintf(path, sizeof(path), "%s/model.bin", g_tmp);
        if (gpt2_write_checkpoint(&c, m.params_memory, m.num_parameters, path, err, sizeof(err)) != 0) die("%s", err);
        Bytes b = {0};
        size_t n;
        uint8_t *f = slurp_or_die(path, &n);
        put(&b, f, n);
        snprintf(name, sizeof(name), "v3_L%d_C%d", c.num_layers, c.channels);
        keep("checkpoint", name, &b, fuzz_checkpoint_one);
        // version 5: the same header with [1] = 5, the parameters rounded to bf16
        Bytes b5 = {0};
        int32_t h[256];
        memcpy(h, f, sizeof(h));
        h[1] = 5;
        put(&b5, h, sizeof(h));
        for (size_t i = 0; i < m.num_parameters; i++) { uint16_t v = float_to_bf16(m.params_memory[i]); put(&b5, &v, 2); }
        snprintf(name, sizeof(name), "v5_L%d_C%d", c.num_layers, c.channels);
        keep("checkpoint", name, &b5, fuzz_checkpoint_one);
        free(f); free(b.p); free(b5.p);
        gpt2_free(&m);
    }
}

// ---- tokenizers: the task suite's (tasks_write_tokenizer) and a 3-token one
static void seeds_tokenizer(void) {
    if (tasks_write_tokenizer(g_tmp, 0) != 0) die("tasks_write_tokenizer failed");
    char path[128];
    snprintf(path, sizeof(path), "%s/tokenizer.bin", g_tmp);
    size_t n;
    uint8_t *f = slurp_or_die(path, &n);
    Bytes b = {0};
    put(&b, f, n);
    keep("tokenizer", "tasks_v2_257", &b, fuzz_tokenizer_one);
    free(f); free(b.p);
    Bytes s = {0};
    int32_t h[256] = {20240328, 2, 3, 2};
    put(&s, h, sizeof(h));
    const char *toks[3] = {"a", "bc", "<|endoftext|>"};
    for (int i = 0; i < 3; i++) { put_u(&s, strlen(toks[i]), 1); put(&s, toks[i], strlen(toks[i])); }
    keep("tokenizer", "small_v2_3", &s, fuzz_tokenizer_one);
    free(s.p);
}

// ---- shards: text and instruction shards written by tasks_write_shard
static void write_text_shard(const char *name, const char *text, int with_mask, int tasks) {
    tasks_buf tb = {0};
    if (tasks) {
        tasks_rng rng = tasks_rng_make(1337, 99);
        for (int i = 0; i < 6; i++) {
            char p[TASKS_MAX_PROMPT + 1], a[TASKS_MAX_ANSWER + 1];
            tasks_draw_example(i % TASKS_NTASKS, &rng, p, a);
            tasks_buf_push(&tb, TASKS_EOT, 0);
            tasks_buf_push_text(&tb, p, 0);
            tasks_buf_push_text(&tb, a, 1);
        }
    } else {
        tasks_buf_push(&tb, TASKS_EOT, 0);
        tasks_buf_push_text(&tb, text, 0);
        for (size_t i = 0; i < tb.n; i++) tb.mask[i] = 1;
    }
    if (tasks_write_shard(g_tmp, name, &tb, with_mask, 0) != 0) die("tasks_write_shard failed");
    tasks_buf_free(&tb);
}

static uint8_t *shard_file(const char *name, const char *ext, size_t *n) {
    char path[160];
    snprintf(path, sizeof(path), "%s/%s.%s", g_tmp, name, ext);
    return slurp_or_die(path, n);
}

static void seeds_shard(void) {
    write_text_shard("text", "The quick brown fox jumps over the lazy dog. Twelve of them.", 0, 0);
    write_text_shard("inst", NULL, 1, 1);
    write_text_shard("text2", "Another short document, on its own.", 1, 0);
    size_t nt, ni, nm, nt2, nm2;
    uint8_t *text = shard_file("text", "bin", &nt), *inst = shard_file("inst", "bin", &ni), *mask = shard_file("inst", "lossmask", &nm);
    uint8_t *text2 = shard_file("text2", "bin", &nt2), *mask2 = shard_file("text2", "lossmask", &nm2);
    Bytes b = {0};
    put_u(&b, 0, 1); put_u(&b, 257, 2); put(&b, text, nt);
    keep("shard", "0_text_vocab257", &b, fuzz_shard_one);
    b.n = 0; put_u(&b, 0, 1); put_u(&b, 0, 2); put(&b, inst, ni);
    keep("shard", "0_inst_unchecked", &b, fuzz_shard_one);
    b.n = 0; put_u(&b, 1, 1); put_u(&b, 257, 2); put_chunk(&b, inst, ni); put(&b, mask, nm);
    keep("shard", "1_inst_mask", &b, fuzz_shard_one);
    b.n = 0; put_u(&b, 1, 1); put_u(&b, 300, 2); put_chunk(&b, text2, nt2); put(&b, mask2, nm2);
    keep("shard", "1_text_mask", &b, fuzz_shard_one);
    // data loader: B=2, T=8, vocab 257, shuffled, 2 files (a masked instruction shard, a text
    // shard), seek to epoch 1, shard 1, row 1
    b.n = 0;
    put_u(&b, 2, 1); put_u(&b, 1, 1); put_u(&b, 7, 1); put_u(&b, 257, 2); put_u(&b, 1, 1); put_u(&b, 1, 1);
    put_u(&b, 1, 1); put_u(&b, 1, 8); put_u(&b, 1, 1); put_u(&b, 1, 2);
    put_u(&b, 1, 1); put_chunk(&b, inst, ni); put_chunk(&b, mask, nm);
    put_u(&b, 0, 1); put_chunk(&b, text, nt); put_chunk(&b, NULL, 0);
    keep("shard", "2_loader_shuffled", &b, fuzz_shard_one);
    // in order, one file, T=4, batches wrapping around epochs
    b.n = 0;
    put_u(&b, 2, 1); put_u(&b, 3, 1); put_u(&b, 3, 1); put_u(&b, 257, 2); put_u(&b, 0, 1); put_u(&b, 0, 1);
    put_u(&b, 0, 1); put_u(&b, 3, 8); put_u(&b, 0, 1); put_u(&b, 2, 2);
    put_u(&b, 1, 1); put_chunk(&b, text2, nt2); put_chunk(&b, mask2, nm2);
    keep("shard", "2_loader_in_order", &b, fuzz_shard_one);
    free(b.p); free(text); free(inst); free(mask); free(text2); free(mask2);
}

// ---- training states: save_state of the harness's model and adapters, mid-run
static void seed_state(int kind, int masked, int stage, const char *name) {
    fz_state_init();
    GPT2 *m = &fz_state_model;
    char err[512], path[128];
    Adapter ad;
    memset(&ad, 0, sizeof(ad));
    if (kind != ADAPTER_NONE) {
        AdapterConfig ac = fz_state_adapter;
        ac.kind = (AdapterKind)kind;
        if (adapter_create(&ad, &ac, m->config.num_layers, m->config.channels, err, sizeof(err)) != 0) die("%s", err);
        uint64_t rng = 3;
        float *B = ad.params + ad.nA;
        for (size_t i = 0; i < ad.nB; i++) B[i] = 0.1f * rng_normal(&rng);
        if (masked) {
            uint8_t *mask = adapter_make_mask(&ad, MASK_MODEL, 0.5f, 1);
            adapter_set_mask(&ad, mask, 1);
            free(mask);
        }
        for (int k = 0; k < stage; k++) // PLoRA: the unloaded stages' history (what an unload records)
            if (plora_record_stage(&ad, 0.0f) != 0) die("out of memory");
        ad.stage = stage;
        ad.drop_rng = 99;
    }
    gpt2_setup_training(m, kind ? &ad : NULL, FZ_STATE_B, FZ_STATE_T);
    AdamW opt;
    adamw_setup(&opt, m);
    for (size_t i = 0; i < opt.total; i++) { opt.m[i] = 1e-3f * (float)(i % 7); opt.v[i] = 1e-6f * (float)(i % 5); }
    opt.t = 5;
    TrainPos pos = {5, masked, 1, 1, 2, 12345};
    snprintf(path, sizeof(path), "%s/state.bin", g_tmp);
    if (save_state(path, m, &opt, &pos, err, sizeof(err)) != 0) die("%s", err);
    size_t n;
    uint8_t *f = slurp_or_die(path, &n);
    Bytes b = {0};
    put_u(&b, (uint64_t)kind, 1);
    put(&b, f, n);
    adamw_free(&opt);
    if (kind) adapter_free(&ad);
    m->adapter = NULL;
    keep("state", name, &b, fuzz_state_one);
    free(f); free(b.p);
}

static void seeds_state(void) {
    seed_state(ADAPTER_NONE, 0, 0, "none_full_ft");
    seed_state(ADAPTER_LORA, 0, 0, "lora");
    seed_state(ADAPTER_LORI, 0, 0, "lori_d");
    seed_state(ADAPTER_LORI, 1, 0, "lori_s_masked");
    seed_state(ADAPTER_PLORA, 0, 2, "plora_stage2");
}

// ---- command lines (NUL-separated) and the dictionary of every flag and keyword
static void seed_args(const char *name, const char *const *args) {
    Bytes b = {0};
    for (int i = 0; args[i]; i++) put(&b, args[i], strlen(args[i]) + 1);
    keep("args", name, &b, fuzz_args_one);
    free(b.p);
}

static void seeds_args(void) {
    static const char *const a1[] = {"-e", "d12", "-i", "data/tasks/arith_train.bin", "-j", "data/tasks/arith_val.bin",
                                     "-b", "4", "-t", "64", "--adapter", "lori", "--rank", "8", "-x", "100", NULL};
    static const char *const a2[] = {"--model=L=4,C=128,H=4,V=257,T=128", "--adapter", "plora", "--plora-every", "50",
                                     "--plora-momentum", "0.5", "--plora-schedule", "stage", "-d", "512", "-b", "4", "-t", "64", NULL};
    static const char *const a3[] = {"-e", "dev/ref/gpt2_tiny.bin", "--adapter", "lora", "--targets", "qkv,fc", "--alpha", "16",
                                     "--rslora", "--dropout", "0.05", "--init", "gaussian", "-k", "linear", "-u", "10", "-q", "0.1", NULL};
    static const char *const a4[] = {"--adapter", "lori", "--lori-stage", "ds", "--sparsity", "0.9", "--mask", "layer",
                                     "--lori-lr-s", "1e-3", "--lori-steps-s", "20", "-o", "out/x", "-y", "1", "--stop-at", "7", NULL};
    static const char *const a5[] = {"-e", "d24", "--nan-policy", "skip", "-c", "0.1", "--grad-clip", "0", "--threads", "2",
                                     "--eval-em", "a.bin,b.bin", "--eval-examples", "10", "--seed", "7", "--shuffle", "0", NULL};
    seed_args("lori_d12", a1);
    seed_args("plora_descriptor", a2);
    seed_args("lora_ckpt", a3);
    seed_args("lori_resume", a4);
    seed_args("full_ft_d24", a5);
    FILE *f = fopen("dev/fuzz/args.dict", "w");
    if (!f) die("cannot write dev/fuzz/args.dict");
    fprintf(f, "# libFuzzer dictionary for fuzz_args: every flag of train_gpt2.c and the keywords of its values (make fuzz-seeds)\n");
    for (int i = 0; i < NUM_OPTIONS; i++) {
        fprintf(f, "\"--%s\"\n\"--%s=\"\n", options[i].name, options[i].name);
        if (options[i].shortc) fprintf(f, "\"-%c\"\n", options[i].shortc);
    }
    static const char *const words[] = {"none", "lora", "lori", "plora", "constant", "linear", "cosine", "qkv", "attn_proj",
                                        "fc", "fc_proj", "all", "kaiming", "gaussian", "model", "layer", "matrix", "random",
                                        "d", "s", "ds", "global", "stage", "stop", "skip", "d12", "d24", "d36", "d48",
                                        "L=", "C=", "H=", "V=", "T=", "P=", "-1", "0", "1", "65536", "2147483647", "1e-3",
                                        "0.9", "nan", "inf", "-h", "--help", NULL};
    for (int i = 0; words[i]; i++) fprintf(f, "\"%s\"\n", words[i]);
    fprintf(f, "\"\\x00\"\n");
    fclose(f);
    printf("  dev/fuzz/args.dict\n");
}

int main(void) {
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/make_seeds_%d", (int)getpid());
    mkdir(g_tmp, 0755);
    printf("writing seed corpora into " CORPUS "/:\n");
    seeds_checkpoint();
    seeds_tokenizer();
    seeds_shard();
    seeds_state();
    seeds_args();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    return 0;
}
