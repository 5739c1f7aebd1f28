/*
dev/fuzz/fuzz_state.c — libFuzzer harness for load_state (train_gpt2.c): the resumable training
state DIR/state.bin, read the way run_training resumes (-y 1): load_state without the optimizer,
adamw_setup, load_state with it, dataloader_seek to the stored data position, one batch.
The first byte picks the adapter the run was started with (0 none, 1 lora, 2 lori, 3 plora: rank 2,
all targets, on a tiny model L=1 C=4 H=2 V=8 T=4); the rest is the file. A state that is accepted
must leave an adapter that adapter_save writes and adapter_load reads back exactly (equal values).

    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
          -o build/fuzz/fuzz_state dev/fuzz/fuzz_state.c -lm
    ./build/fuzz/fuzz_state -max_total_time=60 CORPUS dev/fuzz/corpus/state     (or: make fuzz)
*/
#ifndef FUZZ_REPLAY
#define TESTING
#include "train_gpt2.c"
#endif
#include "fuzz_common.h"

#define FZ_STATE_MODEL "L=1,C=4,H=2,V=8,T=4"
#define FZ_STATE_B 2
#define FZ_STATE_T 4

static const AdapterConfig fz_state_adapter = {ADAPTER_LORA, 2, 4.0f, 0, 0.1f, 15, INIT_KAIMING, 42};

// The model and a shuffled two-shard data loader, made once per process.
static GPT2 fz_state_model;
static DataLoader fz_state_dl;
static int fz_state_ready = 0;

static void fz_state_init(void) {
    if (fz_state_ready) return;
    GPT2Config c;
    if (parse_descriptor(FZ_STATE_MODEL, &c) != 0) abort();
    gpt2_init_random(&fz_state_model, c, 1);
    char dir[96], path[128];
    fz_tmp_path(dir, sizeof(dir), "state_data");
    mkdir(dir, 0755);
    for (int f = 0; f < 2; f++) {
        int32_t h[256] = {20240520, 1, 37 + 10 * f};
        uint16_t tok[47];
        for (int i = 0; i < h[2]; i++) tok[i] = (uint16_t)((i * 3 + f) % c.vocab_size);
        uint8_t buf[1024 + sizeof(tok)];
        memcpy(buf, h, 1024); memcpy(buf + 1024, tok, 2 * (size_t)h[2]);
        snprintf(path, sizeof(path), "%s/s%d.bin", dir, f);
        fz_write_file(path, buf, 1024 + 2 * (size_t)h[2]);
    }
    snprintf(path, sizeof(path), "%s/s*.bin", dir);
    if (dataloader_init(&fz_state_dl, path, FZ_STATE_B, FZ_STATE_T, c.vocab_size, 1, 7) != 0) abort();
    fz_state_ready = 1;
}

static int fuzz_state_one(const uint8_t *data, size_t size) {
    if (size < 1) return -1;
    fz_state_init();
    GPT2 *m = &fz_state_model;
    int kind = data[0] % 4;
    char path[96], apath[112], err[1024] = "";
    fz_tmp_path(path, sizeof(path), "state");
    snprintf(apath, sizeof(apath), "%s.adapter", path);
    fz_write_file(path, data + 1, size - 1);
    Adapter ad;
    memset(&ad, 0, sizeof(ad));
    if (kind != ADAPTER_NONE) {
        AdapterConfig ac = fz_state_adapter;
        ac.kind = (AdapterKind)kind;
        if (adapter_create(&ad, &ac, m->config.num_layers, m->config.channels, err, sizeof(err)) != 0) abort();
        ad.drop_rng = 5;
        ad.training = 1;
    }
    gpt2_setup_training(m, kind ? &ad : NULL, FZ_STATE_B, FZ_STATE_T);
    AdamW opt;
    memset(&opt, 0, sizeof(opt));
    TrainPos pos = {0};
    int rc = load_state(path, m, NULL, &pos, err, sizeof(err));
    if (rc == 0) {
        adamw_setup(&opt, m);
        rc = load_state(path, m, &opt, &pos, err, sizeof(err));
    }
    fz_check_fail(rc, err, path);
    if (rc == 0) {
        if (opt.total != (kind ? adapter_num_trainable(&ad) : m->num_parameters)) __builtin_trap();
        int r = dataloader_seek(&fz_state_dl, pos.epoch, pos.shard, pos.row);
        fz_check_fail(r, fz_state_dl.err, NULL);
        if (r == 0) {
            r = dataloader_next_batch(&fz_state_dl);
            fz_check_fail(r, fz_state_dl.err, NULL);
        }
        if (kind != ADAPTER_NONE && adapter_save(&ad, apath, "fuzz", err, sizeof(err)) == 0) {
            Adapter back;
            if (adapter_load(&back, apath, m->config.num_layers, m->config.channels, err, sizeof(err)) != 0) {
                fprintf(stderr, "fuzz_state: a resumed adapter does not read back: %s\n", err);
                __builtin_trap();
            }
            if (back.nA != ad.nA || back.nB != ad.nB || back.stage != ad.stage) __builtin_trap();
            for (size_t i = 0; i < ad.nA + ad.nB; i++) // ==, not memcmp: a sparse B stores no -0.0
                if (back.params[i] != ad.params[i]) __builtin_trap();
            if ((back.mask == NULL) != (ad.mask == NULL)) __builtin_trap();
            if (ad.mask && memcmp(back.mask, ad.mask, ad.nB) != 0) __builtin_trap();
            adapter_free(&back);
            remove(apath);
        }
    }
    adamw_free(&opt);
    if (kind != ADAPTER_NONE) adapter_free(&ad);
    m->adapter = NULL;
    remove(path);
    return rc;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_state_one(data, size);
    return 0;
}
#endif
