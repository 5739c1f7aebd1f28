/*
cuda/host.c — the host side of the GPU trainer (train_gpt2.cu), in C.

It compiles train_gpt2.c itself (with TESTING, so without its main) and so shares, not copies,
the CPU trainer's host code: the option table and its defaults, argument parsing and validation,
llm.c checkpoint reading and writing, random init from a descriptor, the data loader and loss
masks, the tokenizer, adapter creation (A drawn from its seed on the host, bit-identical to the
CPU's), adapter and mask files, LoRI-S mask extraction, the resumable state file, the learning-rate
schedules, sampling and exact-match evaluation (on the host, from the parameters synced back).
run_training_gpu below is train_gpt2.c's run_training line for line, with the model's forward,
backward, optimizer and PLoRA fold sent to the GPU through cuda/gpt2_gpu.h. Differences:
  --precision fp32|bf16 (GPU only, default bf16) is taken out of argv before the shared parser;
  --threads counts the host threads (sampling); --ref-kernels selects the reference attention
  kernels; with no flags at all the GPU binaries print their usage (the embedded default demo is
  the CPU trainers').
Built four times, like the CPU trainers, with -DDEFAULT_ADAPTER="none|lora|lori|plora".
*/
#define TESTING
#include "../train_gpt2.c"
#include "gpt2_gpu.h"
#include "host_api.h"

// ----------------------------------------------------------------------------
// the command line: train_gpt2.c's table, plus --precision

static void gpu_print_usage(const char *prog) {
    TrainConfig d;
    config_defaults(&d);
    printf("usage: %s [options]\n", prog);
    printf("GPT-2 training on one NVIDIA GPU with full fine-tuning, LoRA, LoRI or PeriodicLoRA (default adapter: %s)\n\n", DEFAULT_ADAPTER);
    for (int i = 0; i < NUM_OPTIONS; i++) {
        const OptSpec *o = &options[i];
        char flag[64], def[1100];
        if (o->shortc) snprintf(flag, sizeof(flag), "-%c, --%s", o->shortc, o->name);
        else snprintf(flag, sizeof(flag), "    --%s", o->name);
        const char *f = (const char *)&d + o->offset;
        switch (o->type) {
            case OPT_INT: snprintf(def, sizeof(def), "%d", *(const int *)f); break;
            case OPT_FLOAT: snprintf(def, sizeof(def), "%g", *(const float *)f); break;
            case OPT_STR: snprintf(def, sizeof(def), "%s", *f ? f : "\"\""); break;
            case OPT_FLAG: snprintf(def, sizeof(def), "off"); break;
        }
        printf("  %-24s %s [default: %s]\n", flag, o->help, def);
    }
    printf("  %-24s %s [default: bf16]\n", "    --precision", "GPU only: bf16 (bf16 activations and frozen weights, fp32 masters and AdamW) | fp32");
    printf("  -h, --help               print this help\n");
    printf("(--ref-kernels: the reference attention kernels instead of the tensor-core ones; --threads: host threads for sampling)\n");
}

// ----------------------------------------------------------------------------
// the GPU model from the host's structures

static GPUModel *gpu_model_create(GPT2 *model, Adapter *ad, int B, int T, int bf16, int simple) {
    GPT2Config c = model->config;
    GPUConfig gc = {c.max_seq_len, c.vocab_size, c.padded_vocab_size, c.num_layers, c.num_heads, c.channels};
    GPUAdapterDesc d;
    memset(&d, 0, sizeof(d));
    if (ad) {
        d.kind = (int)ad->cfg.kind; d.rank = ad->cfg.rank; d.scale = ad->scale; d.dropout = ad->cfg.dropout;
        d.trains_A = adapter_trains_A(ad); d.nslots = ad->nslots;
        d.slot_layer = ad->slot_layer; d.slot_target = ad->slot_target; d.slot_in = ad->slot_in; d.slot_out = ad->slot_out;
        d.a_off = ad->a_off; d.b_off = ad->b_off; d.nA = ad->nA; d.nB = ad->nB;
    }
    GPUModel *gm = gpu_create(&gc, model->params_memory, ad ? &d : NULL, B, T, bf16, simple);
    if (ad) {
        gpu_set_adapter(gm, ad->params);
        if (ad->mask) gpu_set_mask(gm, ad->kept, ad->nkept, 1);
        gpu_set_dropout(gm, ad->drop_rng, 1);
    }
    gpu_opt_setup(gm);
    return gm;
}

// the host's AdamW is only a container for t and, around state files, the moments
static void host_opt_init(AdamW *o, size_t total) {
    memset(o, 0, sizeof(*o));
    o->total = total;
    adamw_alloc(o);
}

// Brings the host copies up to date: the base when it trains (full fine-tuning, PLoRA), the
// adapter, its dropout stream, and (with_opt) the optimizer moments.
static void sync_to_host(GPUModel *gm, GPT2 *model, Adapter *ad, AdamW *opt, int with_opt) {
    if (!ad || ad->cfg.kind == ADAPTER_PLORA) gpu_get_params(gm, model->params_memory);
    if (ad) {
        gpu_get_adapter(gm, ad->params);
        ad->drop_rng = gpu_get_dropout_rng(gm);
    }
    if (with_opt) gpu_opt_get(gm, opt->m, opt->v);
}

// lora/adapter.h's plora_unload with the fold on the device: W += (1 - m) s B A, then the same
// re-initialisation of the adapter on the host (scale A, B by sqrt(m), or redraw A and zero B).
static void gpu_plora_unload(GPUModel *gm, Adapter *ad, float m) {
    gpu_get_adapter(gm, ad->params);
    gpu_plora_fold(gm, 1.0f - m);
    plora_restart(ad, m);
    gpu_set_adapter(gm, ad->params);
}

// train_gpt2.c's evaluate_loss on the GPU (dropout off)
static float gpu_evaluate_loss(GPUModel *gm, Adapter *ad, DataLoader *dl, int nbatches) {
    uint64_t rng = gpu_get_dropout_rng(gm);
    if (ad) gpu_set_dropout(gm, rng, 0);
    if (dataloader_reset(dl) != 0) die("%s", dl->err);
    double sum = 0;
    long count = 0;
    for (int i = 0; i < nbatches; i++) {
        if (dataloader_next_batch(dl) != 0) die("%s", dl->err);
        long n = 0;
        float mean = gpu_forward(gm, dl->inputs, dl->targets, dl->mask, &n);
        if (n > 0) { sum += (double)mean * n; count += n; }
    }
    if (ad) gpu_set_dropout(gm, rng, 1);
    return count > 0 ? (float)(sum / count) : NAN;
}

// ----------------------------------------------------------------------------
// training: train_gpt2.c's run_training with the model on the GPU

static int run_training_gpu(TrainConfig *cfg, int bf16, int argc, char **argv, TrainResult *res) {
    char err[1024];
#ifdef OMP
    if (cfg->threads > 0) omp_set_num_threads(cfg->threads);
    int nthreads = omp_get_max_threads();
#else
    int nthreads = 1;
#endif
    g_use_ref_kernels = 0;
    AdapterKind kind = (AdapterKind)name_index(cfg->adapter, adapter_kind_names, 4);
    char cmdline[2048] = "";
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(cmdline);
        snprintf(cmdline + l, sizeof(cmdline) - l, "%s%s", i ? " " : "", argv[i]);
    }

    // --- the model (on the host first: loaded or drawn exactly as by the CPU trainer)
    GPT2 model;
    if (!cfg->model[0]) die("-e: give a model: an llm.c checkpoint file or a descriptor such as d12 or L=4,C=128,H=4,V=257,T=128");
    GPT2Config desc;
    struct stat stt;
    if (stat(cfg->model, &stt) == 0) {
        if (gpt2_load_checkpoint(&model, cfg->model, err, sizeof(err)) != 0) die("-e: %s", err);
    } else if (parse_descriptor(cfg->model, &desc) == 0) {
        gpt2_init_random(&model, desc, (uint64_t)cfg->seed);
    } else {
        die("-e: '%s' is neither an existing checkpoint file nor a model descriptor (d12|d24|d36|d48 or L=..,C=..,H=..,V=..,T=..)", cfg->model);
    }
    GPT2Config c = model.config;
    int B = cfg->B, T = cfg->T;
    if (T > c.max_seq_len) die("-t %d exceeds the model's context length %d", T, c.max_seq_len);

    // --- data
    DataLoader train = {0}, val = {0};
    int have_train = cfg->train_pattern[0] != 0, have_val = cfg->val_pattern[0] != 0;
    if (!have_train && cfg->max_steps != 0) die("-i: no training data given (use -x 0 to only evaluate or sample)");
    if (have_train && dataloader_init(&train, cfg->train_pattern, B, T, c.vocab_size, cfg->shuffle, (uint64_t)cfg->seed) != 0)
        die("-i: %s", train.err);
    if (have_val && dataloader_init(&val, cfg->val_pattern, B, T, c.vocab_size, 0, 0) != 0) die("-j: %s", val.err);
    int val_batches = cfg->val_batches;
    if (have_val) {
        int64_t rows = dataloader_epoch_rows(&val);
        if (val_batches > rows / B) val_batches = (int)(rows / B > 0 ? rows / B : 1);
    }
    Tokenizer tok = {0};
    if (cfg->tokenizer[0]) {
        if (tokenizer_init(&tok, cfg->tokenizer, err, sizeof(err)) != 0) die("--tokenizer: %s", err);
    } else if (have_train) {
        char guess[1100];
        snprintf(guess, sizeof(guess), "%s", train.files[0]);
        char *slash = strrchr(guess, '/');
        snprintf(slash ? slash + 1 : guess, sizeof(guess) - (size_t)(slash ? slash + 1 - guess : 0), "tokenizer.bin");
        if (tokenizer_init(&tok, guess, err, sizeof(err)) != 0) memset(&tok, 0, sizeof(tok)); // optional
    }
    if (tok.table && tok.vocab_size > c.vocab_size) die("tokenizer has %d tokens but the model's vocab is %d", tok.vocab_size, c.vocab_size);

    // --- the adapter
    Adapter adapter;
    Adapter *ad = NULL;
    float *B_loaded = NULL; // continual learning: the loaded adapter's B, restored for its LoRI-S stage
    uint8_t *mask_loaded = NULL;
    if (kind != ADAPTER_NONE) {
        AdapterConfig ac = {kind, cfg->rank, cfg->alpha, cfg->rslora, cfg->dropout, parse_targets(cfg->targets),
                            strcmp(kind == ADAPTER_LORI ? cfg->lori_init : cfg->init, "gaussian") == 0 ? INIT_GAUSSIAN : INIT_KAIMING,
                            cfg->adapter_seed ? (uint64_t)cfg->adapter_seed : 0x4C6F5241ull ^ (uint64_t)cfg->seed};
        if (cfg->adapter_in[0]) {
            if (adapter_load(&adapter, cfg->adapter_in, c.num_layers, c.channels, err, sizeof(err)) != 0) die("--adapter-in: %s", err);
            if (adapter.cfg.kind != kind && !(kind == ADAPTER_PLORA && adapter.cfg.kind == ADAPTER_LORA))
                die("--adapter-in: %s holds a %s adapter but --adapter is %s", cfg->adapter_in, adapter_kind_names[adapter.cfg.kind], cfg->adapter);
            adapter.cfg.dropout = cfg->dropout;
            printf("adapter: loaded %s (%s, rank %d, alpha %g)\n", cfg->adapter_in, adapter_kind_names[adapter.cfg.kind],
                   adapter.cfg.rank, adapter.cfg.alpha);
            if (kind == ADAPTER_LORI) {
                B_loaded = xcalloc(adapter.nB, sizeof(float), "loaded B");
                memcpy(B_loaded, adapter.params + adapter.nA, adapter.nB * sizeof(float));
                if (adapter.mask) { mask_loaded = xcalloc(adapter.nB, 1, "loaded mask"); memcpy(mask_loaded, adapter.mask, adapter.nB); }
            }
        } else if (adapter_create(&adapter, &ac, c.num_layers, c.channels, err, sizeof(err)) != 0) {
            die("%s", err);
        }
        ad = &adapter;
        ad->drop_rng = (uint64_t)cfg->seed ^ 0xD50Bull;
        ad->training = 1;
    }

    // --- the schedule of phases: LoRI-D then LoRI-S, or one phase
    int grad_accum = cfg->total_batch < 0 ? 1 : cfg->total_batch / (B * T);
    int steps = cfg->max_steps;
    if (steps < 0) {
        int64_t rows = dataloader_epoch_rows(&train);
        steps = (int)(rows / ((int64_t)B * grad_accum));
        if (steps < 1) steps = 1;
    }
    Phase phases[2];
    int nphases = 0;
    MaskMode mmode = MASK_MODEL;
    int mask_from_file = 0;
    if (kind == ADAPTER_LORI) {
        int mi = name_index(cfg->mask, mask_mode_names, 4);
        if (mi >= 0) mmode = (MaskMode)mi; else mask_from_file = 1;
        float lr_d = cfg->lori_lr_d >= 0 ? cfg->lori_lr_d : cfg->lr;
        float lr_s = cfg->lori_lr_s >= 0 ? cfg->lori_lr_s : 10.0f * cfg->lr;
        int steps_s = cfg->lori_steps_s >= 0 ? cfg->lori_steps_s : steps;
        int need_d = strchr(cfg->lori_stage, 'd') && !(strcmp(cfg->lori_stage, "ds") == 0 && (mmode == MASK_RANDOM || mask_from_file));
        if (need_d) phases[nphases++] = (Phase){0, steps, lr_d};
        if (strchr(cfg->lori_stage, 's')) phases[nphases++] = (Phase){1, strcmp(cfg->lori_stage, "s") == 0 ? steps : steps_s, lr_s};
        if (strcmp(cfg->lori_stage, "s") == 0 && !mask_from_file && mmode != MASK_RANDOM && !cfg->adapter_in[0])
            die("--lori-stage s needs a mask: --mask FILE, --mask random, or --adapter-in a LoRI-D adapter to take the top-k from");
        if (need_d && B_loaded) memset(ad->params + ad->nA, 0, ad->nB * sizeof(float)); // a fresh LoRI-D on the new task
        if (need_d && ad->mask) { free(ad->mask); free(ad->kept); ad->mask = NULL; ad->kept = NULL; ad->nkept = 0; }
    } else {
        phases[nphases++] = (Phase){0, steps, cfg->lr};
    }
    int total_steps = 0;
    for (int i = 0; i < nphases; i++) total_steps += phases[i].steps;
    Schedule sched = (Schedule)name_index(cfg->schedule, schedule_names, 3);

    // the host model holds parameters only (no activations): the GPU computes
    model.adapter = ad;
    GPUModel *gm = gpu_model_create(&model, ad, B, T, bf16, cfg->ref_kernels);
    printf("model: L=%d C=%d H=%d V=%d (padded %d) maxT=%d, %zu parameters | GPU: %s | host threads %d\n", c.num_layers,
           c.channels, c.num_heads, c.vocab_size, c.padded_vocab_size, c.max_seq_len, model.num_parameters, gpu_describe(gm),
           nthreads);

    // --- start-up report: what trains and what it costs
    size_t lora_equiv = 0;
    if (ad) for (int s = 0; s < ad->nslots; s++) lora_equiv += (size_t)ad->cfg.rank * (ad->slot_in[s] + ad->slot_out[s]);

    // --- output directory, log, resume
    char path[1200];
    FILE *csv = NULL;
    if (cfg->output_dir[0]) {
        if (mkdir(cfg->output_dir, 0755) != 0 && errno != EEXIST) die("-o: cannot create directory %s: %s", cfg->output_dir, strerror(errno));
    }
    TrainPos pos = {0};
    pos.sample_rng = (uint64_t)cfg->seed ^ 0x5A4D504Cull;
    AdamW opt;
    memset(&opt, 0, sizeof(opt));
    if (cfg->resume) {
        join_path(path, sizeof(path), cfg->output_dir, "state.bin");
        if (load_state(path, &model, NULL, &pos, err, sizeof(err)) != 0) die("-y: %s", err);
        host_opt_init(&opt, ad ? adapter_num_trainable(ad) : model.num_parameters);
        if (load_state(path, &model, &opt, &pos, err, sizeof(err)) != 0) die("-y: %s", err);
        if (have_train && dataloader_seek(&train, pos.epoch, pos.shard, pos.row) != 0) die("-y: %s", train.err);
        gpu_set_params(gm, model.params_memory);
        if (ad) {
            gpu_set_adapter(gm, ad->params);
            gpu_set_mask(gm, ad->kept, ad->nkept, ad->mask != NULL);
            gpu_set_dropout(gm, ad->drop_rng, 1);
        }
        gpu_opt_setup(gm);
        gpu_opt_set(gm, opt.m, opt.v);
        printf("resumed from %s at step %d (phase %d)\n", path, pos.step, pos.phase);
    } else {
        host_opt_init(&opt, gpu_opt_size(gm));
    }
    if (gpu_opt_size(gm) != opt.total) die("internal: GPU optimizer has %zu entries, the host's %zu", gpu_opt_size(gm), opt.total);
    if (cfg->output_dir[0]) {
        join_path(path, sizeof(path), cfg->output_dir, "train.csv");
        csv = fopen(path, cfg->resume ? "a" : "w");
        if (!csv) die("-o: cannot write %s: %s", path, strerror(errno));
        if (!cfg->resume) fprintf(csv, "step,train_loss,val_loss,lr,grad_norm,ms,tok_per_s\n");
    }
    {
        size_t trainable = ad ? adapter_num_trainable(ad) : model.num_parameters;
        printf("adapter: %s", cfg->adapter);
        if (ad) printf(" | rank %d, alpha %g, scale %g%s, targets %s, dropout %g", ad->cfg.rank, ad->cfg.alpha, ad->scale,
                       ad->cfg.rslora ? " (rsLoRA)" : "", cfg->targets, ad->cfg.dropout);
        printf("\nparameters: %zu total, %zu trainable (%.4f%% of the model", model.num_parameters, trainable,
               100.0 * trainable / model.num_parameters);
        if (ad) printf(", %.2f%% of an equal-rank LoRA", 100.0 * trainable / lora_equiv);
        printf(") | trainable state %.2f MiB (values, gradients, AdamW m and v)\n", 16.0 * trainable / 1048576.0);
        printf("batch: B=%d T=%d, grad accumulation %d -> %d tokens per step | %d steps", B, T, grad_accum, B * T * grad_accum, total_steps);
        if (nphases == 2) printf(" (LoRI-D %d at lr %g, then LoRI-S %d at lr %g)", phases[0].steps, phases[0].lr, phases[1].steps, phases[1].lr);
        printf("\n");
        size_t now, peak;
        gpu_memory(gm, &now, &peak);
        printf("GPU memory: %.1f MiB allocated\n", now / 1048576.0);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    // --- micro-batch buffers for one optimizer step
    size_t bt = (size_t)B * T;
    int *binp = xcalloc(bt * grad_accum, sizeof(int), "batch"), *btgt = xcalloc(bt * grad_accum, sizeof(int), "batch");
    uint8_t *bmask = xcalloc(bt * grad_accum, 1, "batch");
    float *merged_scratch = NULL;
    double train_time = 0;
    int timed_steps = 0;
    int stopped = 0;
    float last_val = NAN;
    int phase_start = 0;
    for (int ph = 0; ph < nphases && !stopped; phase_start += phases[ph].steps, ph++) {
        Phase P = phases[ph];
        if (pos.step >= phase_start + P.steps) continue; // finished before a resume
        int fresh_phase = pos.step <= phase_start && !(cfg->resume && pos.phase == ph && pos.step > 0);
        if (P.is_s && fresh_phase && !(cfg->resume && pos.phase == ph)) {
            // LoRI-S: the mask, then a fresh B (or the loaded task's B for continual learning)
            gpu_get_adapter(gm, ad->params); // LoRI-D's B, as trained
            uint8_t *mask = NULL;
            if (mask_from_file) {
                if (mask_load(ad, cfg->mask, &mask, err, sizeof(err)) != 0) die("--mask: %s", err);
            } else {
                mask = adapter_make_mask(ad, mmode, cfg->sparsity, (uint64_t)cfg->seed);
            }
            if (ph > 0 && cfg->output_dir[0]) {
                join_path(path, sizeof(path), cfg->output_dir, "adapter_lori_d.bin");
                if (adapter_save(ad, path, cmdline, err, sizeof(err)) != 0) die("%s", err);
            }
            size_t kept = 0;
            for (size_t i = 0; i < ad->nB; i++) kept += mask[i];
            if (B_loaded) { // continual: stage 2 trains only the new task's mask; the rest stays bit-identical
                memcpy(ad->params + ad->nA, B_loaded, ad->nB * sizeof(float));
                adapter_set_mask(ad, mask, 0);
                printf("continual LoRI-S: training %zu entries of the new task's mask; the loaded adapter's other entries stay frozen\n", kept);
            } else {
                memset(ad->params + ad->nA, 0, ad->nB * sizeof(float));
                if (cfg->lori_new_a) for (int s = 0; s < ad->nslots; s++) adapter_draw_A(ad, s, ad->cfg.seed ^ 0xA2A2ull);
                adapter_set_mask(ad, mask, 1);
            }
            printf("LoRI-S: mask %s%s, sparsity %.3f: %zu of %zu B entries trainable\n", mask_from_file ? cfg->mask : mask_mode_names[mmode],
                   mmode == MASK_RANDOM && !mask_from_file ? " (random: not the paper's method)" : "", 1.0 - (double)kept / ad->nB, kept, ad->nB);
            if (cfg->output_dir[0]) {
                join_path(path, sizeof(path), cfg->output_dir, "mask.bin");
                if (mask_save(ad, mask, path, err, sizeof(err)) != 0) die("%s", err);
            }
            free(mask);
            gpu_set_adapter(gm, ad->params);
            gpu_set_mask(gm, ad->kept, ad->nkept, 1);
            gpu_opt_setup(gm);
            adamw_free(&opt);
            host_opt_init(&opt, gpu_opt_size(gm));
        }
        if (pos.step < phase_start) pos.step = phase_start;
        pos.phase = ph;
        for (; pos.step < phase_start + P.steps; pos.step++) {
            int step = pos.step, lstep = step - phase_start;
            int last = step == total_steps - 1;
            float val_loss = NAN;
            if (have_val && ((cfg->val_every > 0 && step % cfg->val_every == 0))) {
                val_loss = gpu_evaluate_loss(gm, ad, &val, val_batches);
                last_val = val_loss;
                printf("step %d | val loss %.6f\n", step, val_loss);
            }
            if (cfg->sample_every > 0 && step > 0 && step % cfg->sample_every == 0 && cfg->gen_len > 0) {
                sync_to_host(gm, &model, ad, &opt, 0);
                print_sample(&model, &tok, cfg->gen_len, cfg->temperature, &pos.sample_rng, &merged_scratch);
            }
            double t0 = now_s();
            long count = 0;
            for (int k = 0; k < grad_accum; k++) {
                if (dataloader_next_batch(&train) != 0) die("-i: %s", train.err);
                memcpy(binp + k * bt, train.inputs, bt * sizeof(int));
                memcpy(btgt + k * bt, train.targets, bt * sizeof(int));
                memcpy(bmask + k * bt, train.mask, bt);
                for (size_t i = 0; i < bt; i++) count += train.mask[i];
            }
            pos.epoch = train.epoch; pos.shard = train.shard_idx; pos.row = train.row_idx;
            gpu_zero_grad(gm);
            double loss_sum = 0;
            for (int k = 0; k < grad_accum && count > 0; k++) {
                long n = 0;
                for (size_t i = 0; i < bt; i++) n += bmask[k * bt + i];
                if (n == 0) { // the CPU trainer still runs the forward (it draws the dropout masks)
                    gpu_forward(gm, binp + k * bt, btgt + k * bt, bmask + k * bt, NULL);
                    continue;
                }
                float mean = gpu_forward_backward(gm, binp + k * bt, btgt + k * bt, bmask + k * bt, 1.0f / (float)count, NULL);
                loss_sum += (double)mean * n;
            }
            float loss = count > 0 ? (float)(loss_sum / count) : NAN;
            float norm = gpu_grad_norm(gm);
            int plora_stage_sched = kind == ADAPTER_PLORA && strcmp(cfg->plora_schedule, "stage") == 0;
            int sched_step = plora_stage_sched ? lstep % cfg->plora_every : lstep;
            int sched_total = plora_stage_sched ? cfg->plora_every : P.steps;
            float lr = get_lr(sched, P.lr, sched_step, cfg->warmup, sched_total, cfg->final_frac);
            if (count == 0) {
                printf("step %d: no counted target tokens in this batch (loss mask all zero): update skipped\n", step + 1);
            } else if (!isfinite(loss) || !isfinite(norm)) {
                if (strcmp(cfg->nan_policy, "skip") == 0) {
                    printf("step %d: non-finite loss %g or gradient norm %g: update skipped (--nan-policy skip)\n", step + 1, loss, norm);
                } else {
                    fprintf(stderr, "error: step %d: non-finite loss %g or gradient norm %g; stopping. The last checkpoint in %s is kept.\n",
                            step + 1, loss, norm, cfg->output_dir[0] ? cfg->output_dir : "(no -o)");
                    exit(2);
                }
            } else {
                float gscale = 1.0f;
                if (cfg->grad_clip > 0) { float coef = cfg->grad_clip / (norm + 1e-6f); if (coef < 1.0f) gscale = coef; }
                opt.t++;
                gpu_adamw_step(gm, lr, cfg->weight_decay, gscale, opt.t);
            }
            // PLoRA: the end of a stage
            if (kind == ADAPTER_PLORA && (lstep + 1) % cfg->plora_every == 0 && !last) {
                gpu_plora_unload(gm, ad, cfg->plora_momentum);
                if (cfg->plora_momentum == 0) { gpu_opt_reset(gm); opt.t = 0; }
                printf("PLoRA: unloaded stage %d into the base at step %d (momentum %g)%s\n", ad->stage, step + 1,
                       cfg->plora_momentum, cfg->plora_momentum == 0 ? "; A redrawn, B = 0, moments reset" : "");
            }
            gpu_synchronize(gm);
            double dt = now_s() - t0;
            if (step > pos.step - 1 && lstep > 0) { train_time += dt; timed_steps++; }
            double avg = timed_steps ? train_time / timed_steps : dt;
            char eta[32];
            format_eta(avg * (total_steps - step - 1), eta, sizeof(eta));
            double tps = (double)bt * grad_accum / dt;
            if (step == 0 && res) res->first_loss = loss;
            if (res) res->final_train_loss = loss;
            if ((step + 1) % cfg->print_every == 0 || step == 0 || last)
                printf("step %4d/%d | loss %.6f | lr %.2e | norm %.4f | %.1f ms | %.0f tok/s | ETA %s\n", step + 1, total_steps,
                       loss, lr, norm, dt * 1000, tps, eta);
            fflush(stdout);
            if (csv) {
                fprintf(csv, "%d,%.6f,", step + 1, loss);
                if (isfinite(val_loss)) fprintf(csv, "%.6f", val_loss);
                fprintf(csv, ",%.6e,%.6f,%.3f,%.1f\n", lr, norm, dt * 1000, tps);
                fflush(csv);
            }
            if (cfg->stop_at > 0 && step + 1 == cfg->stop_at) g_stop_requested = 1;
            int ckpt = cfg->output_dir[0] && ((cfg->ckpt_every > 0 && (step + 1) % cfg->ckpt_every == 0) || g_stop_requested);
            if (ckpt) {
                TrainPos save = pos;
                save.step = step + 1;
                sync_to_host(gm, &model, ad, &opt, 1);
                join_path(path, sizeof(path), cfg->output_dir, "state.bin");
                if (save_state(path, &model, &opt, &save, err, sizeof(err)) != 0) die("checkpoint: %s", err);
                printf("checkpoint: %s (step %d)\n", path, step + 1);
            }
            if (g_stop_requested) {
                printf("interrupted: stopped after step %d%s\n", step + 1, cfg->output_dir[0] ? "; resume with -y 1" : "");
                stopped = 1;
                pos.step++;
                break;
            }
        }
    }
    // final evaluation
    if (have_val && cfg->val_every >= 0 && !stopped) {
        last_val = gpu_evaluate_loss(gm, ad, &val, val_batches);
        printf("final val loss %.6f\n", last_val);
        if (csv) fprintf(csv, "%d,,%.6f,,,,\n", total_steps, last_val);
    }
    if (csv) fclose(csv);
    if (timed_steps) printf("average step %.1f ms, %.0f tok/s\n", 1000 * train_time / timed_steps,
                            (double)bt * grad_accum * timed_steps / train_time);
    {
        size_t now, peak;
        gpu_memory(gm, &now, &peak);
        printf("GPU memory: peak %.1f MiB allocated by the trainer (parameters, optimizer, activations, workspace)\n", peak / 1048576.0);
    }
    sync_to_host(gm, &model, ad, &opt, 1);
    if (cfg->gen_len > 0 && cfg->sample_every > 0 && !stopped)
        print_sample(&model, &tok, cfg->gen_len, cfg->temperature, &pos.sample_rng, &merged_scratch);

    // --- outputs
    if (cfg->output_dir[0]) {
        if (ad) {
            if (mask_loaded && ad->mask) { // continual: the file's sparsity structure is old ∪ new
                uint8_t *u = xcalloc(ad->nB, 1, "mask union");
                for (size_t i = 0; i < ad->nB; i++) u[i] = mask_loaded[i] | ad->mask[i];
                adapter_set_mask(ad, u, 0);
                free(u);
            }
            join_path(path, sizeof(path), cfg->output_dir, "adapter.bin");
            if (adapter_save(ad, path, cmdline, err, sizeof(err)) != 0) die("%s", err);
            if (res && stat(path, &stt) == 0) res->adapter_bytes = (long)stt.st_size;
            if (res) res->lora_file_bytes = (long)adapter_file_bytes_lora(ad, strlen(cmdline));
            printf("wrote %s\n", path);
        }
        if (!ad || kind == ADAPTER_PLORA) {
            join_path(path, sizeof(path), cfg->output_dir, "model.bin");
            const float *p = gpt2_effective_params(&model, &merged_scratch);
            if (gpt2_write_checkpoint(&c, p, model.num_parameters, path, err, sizeof(err)) != 0) die("%s", err);
            printf("wrote %s%s\n", path, ad ? " (the base with every PLoRA stage and the last adapter folded in)" : "");
        }
        if (!stopped) {
            TrainPos save = pos;
            join_path(path, sizeof(path), cfg->output_dir, "state.bin");
            if (save_state(path, &model, &opt, &save, err, sizeof(err)) != 0) die("checkpoint: %s", err);
        }
    }
    if (cfg->merge_out[0]) {
        const float *p = gpt2_effective_params(&model, &merged_scratch);
        if (gpt2_write_checkpoint(&c, p, model.num_parameters, cfg->merge_out, err, sizeof(err)) != 0) die("--merge-out: %s", err);
        printf("wrote %s (merged llm.c checkpoint)\n", cfg->merge_out);
    }
    if (cfg->dump_logits[0]) {
        if (!have_val) die("--dump-logits needs -j validation data");
        if (ad) gpu_set_dropout(gm, gpu_get_dropout_rng(gm), 0);
        dataloader_reset(&val);
        if (dataloader_next_batch(&val) != 0) die("-j: %s", val.err);
        gpu_forward(gm, val.inputs, NULL, NULL, NULL);
        float *row = xcalloc((size_t)T * c.padded_vocab_size, sizeof(float), "logits");
        gpu_get_logits(gm, 0, T, row);
        float *lg = xcalloc((size_t)T * c.vocab_size, sizeof(float), "logits");
        for (int t = 0; t < T; t++) memcpy(lg + (size_t)t * c.vocab_size, row + (size_t)t * c.padded_vocab_size, c.vocab_size * sizeof(float));
        const void *b1[1] = {lg};
        size_t s1[1] = {(size_t)T * c.vocab_size * 4};
        if (write_chunks_atomic(cfg->dump_logits, b1, s1, 1, err, sizeof(err)) != 0) die("--dump-logits: %s", err);
        snprintf(path, sizeof(path), "%s.tokens", cfg->dump_logits);
        const void *b2[1] = {val.inputs};
        size_t s2[1] = {(size_t)T * 4};
        if (write_chunks_atomic(path, b2, s2, 1, err, sizeof(err)) != 0) die("--dump-logits: %s", err);
        printf("wrote %s and %s (first validation row: %d tokens, logits over V=%d)\n", cfg->dump_logits, path, T, c.vocab_size);
        free(lg);
        free(row);
    }
    if (cfg->eval_em[0]) {
        char list[2048];
        snprintf(list, sizeof(list), "%s", cfg->eval_em);
        for (char *sp = NULL, *f = strtok_r(list, ",", &sp); f; f = strtok_r(NULL, ",", &sp)) {
            EMResult em = eval_exact_match(&model, f, cfg->eval_examples, cfg->eval_show, &merged_scratch);
            if (res && f == list) { res->em_n = em.n; res->em_correct = em.correct; }
            printf("exact match %s: %d / %d = %.1f%%\n", f, em.correct, em.n, em.n ? 100.0 * em.correct / em.n : 0.0);
        }
    }
    if (res) {
        res->final_val_loss = last_val;
        res->seconds = train_time;
        res->tok_per_s = timed_steps ? (double)bt * grad_accum * timed_steps / train_time : 0;
        res->total_params = model.num_parameters;
        res->trainable = ad ? adapter_num_trainable(ad) : model.num_parameters;
        res->lora_equiv = lora_equiv;
        res->steps = total_steps;
    }
    gpu_free(gm);
    free(binp); free(btgt); free(bmask); free(merged_scratch); free(B_loaded); free(mask_loaded);
    adamw_free(&opt);
    if (ad) adapter_free(ad);
    if (have_train) dataloader_free(&train);
    if (have_val) dataloader_free(&val);
    tokenizer_free(&tok);
    model.adapter = NULL;
    gpt2_free(&model);
    return 0;
}

// ----------------------------------------------------------------------------
// entry points

// The GPU trainers' main (train_gpt2.cu calls it). --precision is ours; the rest is train_gpt2.c's.
int gpu_trainer_main(int argc, char **argv) {
    int bf16 = 1;
    if (argc == 1) {
        gpu_print_usage(argv[0]);
        printf("\n(the embedded no-flags demo is the CPU trainers': ./train_lori)\n");
        return 0;
    }
    char **args = xcalloc((size_t)argc + 1, sizeof(char *), "argv");
    int n = 0;
    args[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { gpu_print_usage(argv[0]); free(args); return 0; }
        if (strcmp(a, "--precision") == 0) {
            if (i + 1 >= argc) { fprintf(stderr, "error: flag '--precision' needs a value\n"); free(args); return 1; }
            val = argv[++i];
        } else if (strncmp(a, "--precision=", 12) == 0) {
            val = a + 12;
        } else {
            args[n++] = argv[i];
            continue;
        }
        if (strcmp(val, "bf16") == 0) bf16 = 1;
        else if (strcmp(val, "fp32") == 0) bf16 = 0;
        else { fprintf(stderr, "error: --precision must be bf16 or fp32, got '%s'\n", val); free(args); return 1; }
    }
    TrainConfig cfg;
    config_defaults(&cfg);
    int rc = parse_args(&cfg, n, args);
    if (rc == 0 && validate_args(&cfg) != 0) rc = -1;
    free(args);
    if (rc != 0) return rc < 0 ? 1 : 0;
    return run_training_gpu(&cfg, bf16, argc, argv, NULL);
}

// ----------------------------------------------------------------------------
// for test_gpt2.cu (cuda/host_api.h)

int hostapi_cpu_main(int argc, char **argv) {
    TrainConfig cfg;
    config_defaults(&cfg);
    int rc = parse_args(&cfg, argc, argv);
    if (rc != 0) return rc < 0 ? 1 : 0;
    if (validate_args(&cfg) != 0) return 1;
    g_stop_requested = 0;
    return run_training(&cfg, argc, argv, NULL);
}

int hostapi_gpu_main(int argc, char **argv) {
    g_stop_requested = 0;
    return gpu_trainer_main(argc, argv);
}

int hostapi_load_checkpoint(const char *path, int cfg6[6], float **params, size_t *n) {
    GPT2 m;
    char err[1024];
    if (gpt2_load_checkpoint(&m, path, err, sizeof(err)) != 0) { fprintf(stderr, "%s\n", err); return -1; }
    cfg6[0] = m.config.max_seq_len; cfg6[1] = m.config.vocab_size; cfg6[2] = m.config.padded_vocab_size;
    cfg6[3] = m.config.num_layers; cfg6[4] = m.config.num_heads; cfg6[5] = m.config.channels;
    *params = m.params_memory;
    *n = m.num_parameters;
    return 0;
}

int hostapi_adapter_read(const char *path, HostAdapterInfo *out) {
    Adapter ad;
    char err[1024];
    memset(out, 0, sizeof(*out));
    if (adapter_load(&ad, path, 0, 0, err, sizeof(err)) != 0) { fprintf(stderr, "%s\n", err); return -1; }
    out->nA = ad.nA; out->nB = ad.nB; out->nkept = ad.mask ? ad.nkept : 0; out->stage = ad.stage;
    out->params = xcalloc(ad.nA + ad.nB, sizeof(float), "adapter");
    memcpy(out->params, ad.params, (ad.nA + ad.nB) * sizeof(float));
    if (ad.mask) {
        out->kept = xcalloc(ad.nkept ? ad.nkept : 1, sizeof(uint32_t), "kept");
        memcpy(out->kept, ad.kept, ad.nkept * sizeof(uint32_t));
    }
    uint8_t hdr[1024];
    FILE *f = fopen(path, "rb");
    if (f) { if (fread(hdr, 1, sizeof(hdr), f) == sizeof(hdr)) { int32_t h[256]; memcpy(h, hdr, sizeof(h)); out->b_storage = h[15]; } fclose(f); }
    adapter_free(&ad);
    return 0;
}

void *hostapi_adapter_new(int kind, int rank, float alpha, int L, int C, uint64_t seed, float dropout, HostAdapterDesc *d) {
    Adapter *ad = xcalloc(1, sizeof(Adapter), "adapter");
    AdapterConfig ac = {(AdapterKind)kind, rank, alpha, 0, dropout, 15, INIT_KAIMING, seed};
    char err[512];
    if (adapter_create(ad, &ac, L, C, err, sizeof(err)) != 0) die("%s", err);
    ad->drop_rng = seed ^ 0xD50Bull;
    ad->training = 1;
    d->kind = kind; d->rank = rank; d->scale = ad->scale; d->dropout = dropout; d->trains_A = adapter_trains_A(ad);
    d->nslots = ad->nslots; d->slot_layer = ad->slot_layer; d->slot_target = ad->slot_target; d->slot_in = ad->slot_in;
    d->slot_out = ad->slot_out; d->a_off = ad->a_off; d->b_off = ad->b_off; d->nA = ad->nA; d->nB = ad->nB;
    d->params = ad->params;
    return ad;
}
void hostapi_adapter_set_mask(void *adp, const uint8_t *mask, uint32_t **kept, size_t *nkept) {
    Adapter *ad = adp;
    adapter_set_mask(ad, mask, 1);
    *kept = ad->kept;
    *nkept = ad->nkept;
}
void hostapi_plora_unload(GPUModel *gm, void *adp, float m) { gpu_plora_unload(gm, (Adapter *)adp, m); }
void hostapi_adapter_free(void *adp) { adapter_free(adp); free(adp); }
