/*
llmc/train.h — the training loop, one for both trainers, over a Backend.

The host holds the authoritative model, adapter and optimizer; a Backend does the arithmetic: the
CPU's (train_gpt2.c, computing on the host's copies) or the GPU's (cuda/host.c). A run reads as a
list of named steps (run_training_on at the bottom):

  set-up      run_load_model, run_open_data, run_make_adapter, run_plan_phases, run_start_backend,
              run_open_outputs (resume), run_report_setup
  phase       run_phase: LoRI-S's mask at its start (run_enter_masked_phase), then its steps
  step        run_step: validate / sample, the optimizer step (run_optimizer_step), PLoRA's stage
              boundary (run_stage_boundary), the log line and train.csv row, the checkpoint
  evaluate    evaluate_loss, and exact match (llmc/infer.h) among the outputs
  outputs     run_write_outputs: adapter.bin / model.bin / state.bin, PEFT, --merge-out,
              --dump-logits, --eval-em; run_fill_result for callers that orchestrate runs

Data parallel (llmc/dist.h; one process without mpirun): a step's micro-batches are split over the
ranks (run_plan_phases, run_optimizer_step), the trainable gradients summed by the backend's
allreduce_grads, validation and exact match split and reduced, what must agree checked
(run_check_ranks_agree), and rank 0 alone writes files (dist_is_main).

What differs between variants comes from lora/variants.h's table, never from a variant's name.
Errors are returned: run_training_on prints "error: ..." and returns 1 (2 for a non-finite loss
under --nan-policy stop), so a caller running many trainings (./compare) carries on.
*/
#ifndef LLMC_TRAIN_H
#define LLMC_TRAIN_H

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef OMP
#include <omp.h>
#endif
#include "utils.h"
#include "model.h"
#include "optim.h"
#include "options.h"
#include "state.h"
#include "infer.h"
#include "dist.h"
#include "../data/dataloader.h"
#include "../lora/adapter.h"
#include "../lora/adapter_file.h"
#include "../lora/peft.h"
#include "../lora/variants.h"

// ----------------------------------------------------------------------------
// the backend

// The host holds the authoritative model, adapter and optimizer (model, model->adapter, opt). The
// loop changes them itself only before training and at LoRI-S's new mask, and then load()s them
// into the backend; it reads them (checkpoints, samples, exact match, the output files) after
// sync(). The CPU computes on the host's copies, so for it both are no-ops.
typedef struct Backend Backend;
struct Backend {
    GPT2 *model;          // the host model; model->adapter is the adapter (NULL: full fine-tuning)
    AdamW *opt;           // the host optimizer (the GPU's: t, and m and v around state files)
    int nthreads;         // host threads
    char desc[512];       // setup writes it: the end of the start-up "model:" line
    char err[512];        // a failed setup or forward says why here
    int (*setup)(Backend *be, Adapter *ad, const TrainConfig *cfg); // attach ad, allocate for (B,T); 0 or -1 + err
    void (*opt_setup)(Backend *be);          // opt's groups from what trains now, moments zero
    void (*load)(Backend *be);               // host -> backend: what trains, the mask, dropout stream, opt
    void (*sync)(Backend *be, int with_opt); // backend -> host: what trains, dropout stream (and opt)
    void (*set_training)(Backend *be, int on); // the adapter's dropout on/off
    // one (B,T) batch: the mean loss over its counted targets (mask); targets NULL: logits only.
    // NAN with err set when the batch cannot be computed (a token outside the vocab)
    float (*forward)(Backend *be, const int *inputs, const int *targets, const uint8_t *mask);
    // the same, then its backward: gradients accumulate, `scale` the weight of a counted target
    float (*forward_backward)(Backend *be, const int *inputs, const int *targets, const uint8_t *mask, float scale);
    void (*get_logits)(Backend *be, float *out); // (T, Vp): the first row's logits of the last forward
    void (*begin_step)(Backend *be, int timed);  // zero the gradients (timed: the step counts in a profile)
    void (*allreduce_grads)(Backend *be);        // data parallel: the trainable gradients summed over the ranks
    float (*grad_norm)(Backend *be);
    void (*adamw_step)(Backend *be, float lr, float weight_decay, float gscale);
    void (*plora_unload)(Backend *be, float m);  // lora/adapter.h's plora_unload, then the moments reset
    void (*end_step)(Backend *be);               // the step's work is done (the GPU's synchronised)
    void (*report_setup)(Backend *be);           // after the start-up report
    void (*report_end)(Backend *be, int timed_steps, double seconds); // after the average step
    void (*free)(Backend *be);
    float *grad_bucket;   // the CPU's allreduce_grads: LoRI-S's kept gradients packed (grad_bucket_n); ZeRO-1's shard
    size_t grad_bucket_n;
    int zero;             // ZeRO-1 asked (-z 1): the backend shards opt's moments when data parallel (opt->lo, hi)
};

// What a run measured, for callers that orchestrate runs (the embedded default, ./compare).
typedef struct {
    float first_loss, final_train_loss, final_val_loss;
    double seconds, tok_per_s;
    size_t total_params, trainable, lora_equiv;
    long adapter_bytes;      // size of DIR/adapter.bin (0: none)
    long lora_file_bytes;    // what an equal-rank dense LoRA file takes
    int steps;
    int em_n, em_correct;    // exact match on the first --eval-em shard
    char error[512];         // why the run failed (empty: it did not)
} TrainResult;

// One training run with the linked backend's run_training_on: train_gpt2.c (CPU) or cuda/host.c (GPU).
int run_training(TrainConfig *cfg, int argc, char **argv, TrainResult *res);

// ----------------------------------------------------------------------------
// one run's state, and the steps it goes through

typedef struct {
    int is_s;        // LoRI-S phase (trains B ⊙ M)
    int steps;
    float lr;
} Phase;

typedef struct {
    Backend *be;
    TrainConfig *cfg;
    TrainResult *res;
    const AdapterVariant *v;
    char err[1024], path[1200], cmdline[2048];
    GPT2 model;
    DataLoader train, val;
    int have_train, have_val, val_batches;
    Tokenizer tok;
    Adapter adapter, *ad;    // ad: &adapter, or NULL for full fine-tuning
    AdamW io_opt;            // the optimizer as the output files see it (ZeRO-1: its moments gathered on rank 0)
    float *B_loaded;         // continual learning: the loaded adapter's B, restored for its LoRI-S phase
    uint8_t *mask_loaded;
    Phase phases[2];
    int nphases, total_steps, grad_accum; // grad_accum: micro-batches per step, all ranks'
    int world, local_accum, first_mb;     // data parallel: this rank's micro-batches [first_mb, + local_accum)
    int stop;                             // this step ends the run (a signal on any rank, --stop-at)
    MaskMode mmode;
    int mask_from_file;
    Schedule sched;
    AdamW opt;
    size_t lora_equiv;       // trainable values of an equal-rank LoRA on the same targets
    TrainPos pos;
    FILE *csv;
    size_t bt;               // B*T
    int *binp, *btgt;        // one optimizer step's micro-batches
    uint8_t *bmask;
    float *merged_scratch;
    double train_time;
    int timed_steps, stopped;
    float last_val;
    int fail_status;         // the exit status of a failure: 1, or 2 for a non-finite loss
} Run;

#define RUN_FAIL(r, ...) do { snprintf((r)->err, sizeof((r)->err), __VA_ARGS__); return -1; } while (0)

// Set by SIGINT/SIGTERM: the run stops after the current step with a checkpoint (read once a step,
// with --stop-at, in run_optimizer_step).
// One flag per program, also when the loop and its caller are separate objects (./compare, the GPU
// trainers): a weak definition, merged by the linker.
volatile sig_atomic_t g_stop_requested __attribute__((weak)) = 0;
static void on_signal(int sig) { (void)sig; g_stop_requested = 1; }

static void format_eta(double s, char *buf, size_t n) {
    if (s < 0 || !isfinite(s)) { snprintf(buf, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

// Mean loss over the counted targets of the first nbatches batches of dl (dropout off). 0 or -1.
// Data parallel: rank r evaluates batches r, r + world, ...; the sums are reduced over the ranks.
static int evaluate_loss(Backend *be, DataLoader *dl, int nbatches, float *loss, char *err, size_t errlen) {
    be->set_training(be, 0);
    if (dataloader_reset(dl) != 0) { snprintf(err, errlen, "%s", dl->err); return -1; }
    double sum_count[2] = {0, 0}; // sum of loss x counted targets, counted targets
    for (int i = 0; i < nbatches; i++) {
        if (i % dist_world() != dist_rank()) { // another rank's batch
            if (dataloader_skip_batch(dl) != 0) { snprintf(err, errlen, "%s", dl->err); return -1; }
            continue;
        }
        if (dataloader_next_batch(dl) != 0) { snprintf(err, errlen, "%s", dl->err); return -1; }
        float mean = be->forward(be, dl->inputs, dl->targets, dl->mask);
        if (be->err[0]) { snprintf(err, errlen, "%s", be->err); return -1; }
        long n = 0;
        for (int k = 0; k < dl->B * dl->T; k++) n += dl->mask[k];
        if (n > 0) { sum_count[0] += (double)mean * n; sum_count[1] += (double)n; }
    }
    dist_allreduce_f64(sum_count, 2);
    be->set_training(be, 1);
    *loss = sum_count[1] > 0 ? (float)(sum_count[0] / sum_count[1]) : NAN;
    return 0;
}

// Data parallel: what trains (and the optimizer's moments) must be the same bits on every rank;
// checked where it is written (a checkpoint, the outputs), on the host's copies (after be->sync).
static int run_check_ranks_agree(Run *r, const char *when) {
    if (r->world == 1) return 0;
    char e[512], what[128];
    Adapter *ad = r->ad;
    snprintf(what, sizeof(what), "the trained parameters %s", when);
    if (r->v->base_changes && dist_check_identical(what, r->model.params_memory, r->model.num_parameters * sizeof(float), e, sizeof(e)) != 0)
        RUN_FAIL(r, "%s", e);
    if (ad && dist_check_identical(what, ad->params, (ad->nA + ad->nB) * sizeof(float), e, sizeof(e)) != 0) RUN_FAIL(r, "%s", e);
    snprintf(what, sizeof(what), "the AdamW moments %s", when);
    if (adamw_sharded(&r->opt)) return 0; // ZeRO-1: each rank holds its own shard of them
    if (dist_check_identical(what, r->opt.m, r->opt.total * sizeof(float), e, sizeof(e)) != 0 ||
        dist_check_identical(what, r->opt.v, r->opt.total * sizeof(float), e, sizeof(e)) != 0)
        RUN_FAIL(r, "%s", e);
    return 0;
}

// ZeRO-1 and state.bin: the file holds every moment (so a run resumes at any rank count, with or
// without -z). gather: every rank's shard into full-size buffers on rank 0 (a collective: every rank
// calls it); scatter: a full-size AdamW read from the file, each rank keeping its shard.
// full: r->opt's groups and settings with every moment: r->opt itself when unsharded, else
// full-size buffers (allocated when `alloc`), freed by run_free_gathered.
static void run_full_moments(Run *r, AdamW *full, int alloc) {
    *full = r->opt;
    if (!adamw_sharded(&r->opt)) return;
    full->lo = 0; full->hi = full->total;
    full->m = alloc ? xcalloc(full->total, sizeof(float), "optimizer m (all shards)") : NULL;
    full->v = alloc ? xcalloc(full->total, sizeof(float), "optimizer v (all shards)") : NULL;
}
static void run_gather_moments(Run *r, AdamW *full) {
    run_full_moments(r, full, dist_is_main());
    if (!adamw_sharded(&r->opt)) return;
    dist_gather_f32(r->opt.m, full->m, full->total, 0);
    dist_gather_f32(r->opt.v, full->v, full->total, 0);
}
static void run_free_gathered(Run *r, AdamW *full) {
    if (full->m != r->opt.m) { free(full->m); free(full->v); }
}

// -e: an llm.c checkpoint file, or a descriptor for random init.
static int run_load_model(Run *r) {
    TrainConfig *cfg = r->cfg;
    GPT2Config desc;
    struct stat st;
    if (!cfg->model[0]) RUN_FAIL(r, "-e: give a model: an llm.c checkpoint file or a descriptor such as d12 or L=4,C=128,H=4,V=257,T=128");
    if (stat(cfg->model, &st) == 0 && S_ISDIR(st.st_mode)) {
        char e[1024];
        if (gpt2_load_hf(&r->model, cfg->model, e, sizeof(e)) != 0) RUN_FAIL(r, "-e: %s", e);
    } else if (stat(cfg->model, &st) == 0) {
        if (gpt2_load_checkpoint(&r->model, cfg->model, r->err, sizeof(r->err)) != 0) {
            char e[1024];
            snprintf(e, sizeof(e), "%s", r->err);
            RUN_FAIL(r, "-e: %s", e);
        }
    } else if (parse_descriptor(cfg->model, &desc) == 0) {
        gpt2_init_random(&r->model, desc, (uint64_t)cfg->seed);
    } else {
        RUN_FAIL(r, "-e: '%s' is neither an existing checkpoint file nor a model descriptor (d12|d24|d36|d48 or L=..,C=..,H=..,V=..,T=..)", cfg->model);
    }
    if (cfg->T > r->model.config.max_seq_len) RUN_FAIL(r, "-t %d exceeds the model's context length %d", cfg->T, r->model.config.max_seq_len);
    return 0;
}

// -i, -j and the tokenizer (--tokenizer, or tokenizer.bin beside the training shards: optional).
static int run_open_data(Run *r) {
    TrainConfig *cfg = r->cfg;
    GPT2Config c = r->model.config;
    int B = cfg->B, T = cfg->T;
    r->have_train = cfg->train_pattern[0] != 0;
    r->have_val = cfg->val_pattern[0] != 0;
    if (!r->have_train && cfg->max_steps != 0) RUN_FAIL(r, "-i: no training data given (use -x 0 to only evaluate or sample)");
    if (r->have_train && dataloader_init(&r->train, cfg->train_pattern, B, T, c.vocab_size, cfg->shuffle, (uint64_t)cfg->seed) != 0)
        RUN_FAIL(r, "-i: %s", r->train.err);
    if (r->have_val && dataloader_init(&r->val, cfg->val_pattern, B, T, c.vocab_size, 0, 0) != 0) RUN_FAIL(r, "-j: %s", r->val.err);
    r->val_batches = cfg->val_batches;
    if (r->have_val) {
        int64_t rows = dataloader_epoch_rows(&r->val);
        if (r->val_batches > rows / B) r->val_batches = (int)(rows / B > 0 ? rows / B : 1);
    }
    char e[512];
    if (cfg->tokenizer[0]) {
        if (tokenizer_init(&r->tok, cfg->tokenizer, e, sizeof(e)) != 0) RUN_FAIL(r, "--tokenizer: %s", e);
    } else if (r->have_train) {
        char guess[1100];
        snprintf(guess, sizeof(guess), "%s", r->train.files[0]);
        char *slash = strrchr(guess, '/');
        snprintf(slash ? slash + 1 : guess, sizeof(guess) - (size_t)(slash ? slash + 1 - guess : 0), "tokenizer.bin");
        if (tokenizer_init(&r->tok, guess, e, sizeof(e)) != 0) memset(&r->tok, 0, sizeof(r->tok)); // optional
    }
    if (r->tok.table && r->tok.vocab_size > c.vocab_size)
        RUN_FAIL(r, "tokenizer has %d tokens but the model's vocab is %d", r->tok.vocab_size, c.vocab_size);
    return 0;
}

// --adapter-in / --import-peft: the file decides the variant and its settings (rank, alpha, rsLoRA,
// targets; for our files also A's init and seed), in every binary; a flag given on the command line
// that disagrees with the file is an error naming both. The one combination allowed: a LoRA file
// (ours or PEFT) with an explicit --adapter plora (lora/variants.h: continues), which continues it
// as PLoRA's first stage. --dropout is the run's: the flag when given, else the file's. Writes the
// file's settings into cfg (so messages and command lines say what runs) and sets r->v.
static int run_settings_from_file(Run *r, Adapter *a, const char *flag, const char *path, int ours) {
    TrainConfig *cfg = r->cfg;
    const AdapterVariant *fv = variant_of(a->cfg.kind);
    if (opt_given(cfg, "adapter") && r->v->kind != fv->kind) {
        if (variant_loads(r->v, fv->kind)) fv = r->v;
        else RUN_FAIL(r, "%s: %s holds a %s adapter, but --adapter %s was given (leave --adapter out: the file decides)", flag, path,
                      ours ? fv->name : "PEFT LoRA", cfg->adapter);
    }
    if (!ours && !fv->peft_import) RUN_FAIL(r, "%s: a PEFT LoRA adapter trains as lora or plora, not %s", flag, fv->name);
    a->cfg.kind = fv->kind;
    int targets = parse_targets(cfg->targets);
    if (opt_given(cfg, "rank") && cfg->rank != a->cfg.rank) RUN_FAIL(r, "%s: %s has rank %d, but --rank %d was given", flag, path, a->cfg.rank, cfg->rank);
    if (opt_given(cfg, "alpha") && cfg->alpha != a->cfg.alpha) RUN_FAIL(r, "%s: %s has alpha %g, but --alpha %g was given", flag, path, a->cfg.alpha, cfg->alpha);
    if (opt_given(cfg, "rslora") && !a->cfg.rslora) RUN_FAIL(r, "%s: %s has the plain scale alpha/r, but --rslora was given", flag, path);
    if (opt_given(cfg, "targets") && targets != a->cfg.targets)
        RUN_FAIL(r, "%s: %s adapts targets bitmask %d, but --targets %s (%d) was given", flag, path, a->cfg.targets, cfg->targets, targets);
    const char *init = a->cfg.init == INIT_GAUSSIAN ? "gaussian" : "kaiming";
    const char *init_flag = fv->trains_A ? "init" : "lori-init";
    char *init_field = fv->trains_A ? cfg->init : cfg->lori_init;
    if (ours && opt_given(cfg, init_flag) && strcmp(init_field, init) != 0)
        RUN_FAIL(r, "%s: %s has A drawn %s, but --%s %s was given", flag, path, init, init_flag, init_field);
    if (ours && opt_given(cfg, "adapter-seed") && (uint64_t)(int64_t)cfg->adapter_seed != a->cfg.seed)
        RUN_FAIL(r, "%s: %s has A's seed %llu, but --adapter-seed %d was given", flag, path, (unsigned long long)a->cfg.seed, cfg->adapter_seed);
    if (opt_given(cfg, "dropout")) a->cfg.dropout = cfg->dropout;
    r->v = fv;
    snprintf(cfg->adapter, sizeof(cfg->adapter), "%s", fv->name);
    cfg->rank = a->cfg.rank; cfg->alpha = a->cfg.alpha; cfg->rslora = a->cfg.rslora; cfg->dropout = a->cfg.dropout;
    cfg->targets[0] = 0;
    for (int t = 0; t < NUM_TARGETS; t++)
        if ((a->cfg.targets >> t) & 1)
            snprintf(cfg->targets + strlen(cfg->targets), sizeof(cfg->targets) - strlen(cfg->targets), "%s%s", cfg->targets[0] ? "," : "", target_names[t]);
    if (ours) snprintf(init_field, sizeof(cfg->init), "%s", init);
    return 0;
}

// The adapter: imported from PEFT, loaded from our file (the file decides the variant, in every
// binary; continual learning keeps the loaded B and mask for the LoRI-S phase; PLoRA's history is
// folded into the base), or created (A drawn from its seed, B = 0). None for full fine-tuning.
static int run_make_adapter(Run *r) {
    TrainConfig *cfg = r->cfg;
    GPT2Config c = r->model.config;
    char e[1024];
    if (r->v->trains_base && !cfg->import_peft[0] && !cfg->adapter_in[0]) return 0;
    Adapter *a = &r->adapter;
    if (cfg->import_peft[0]) {
        if (peft_import(a, cfg->import_peft, c.num_layers, c.channels, e, sizeof(e)) != 0) RUN_FAIL(r, "--import-peft: %s", e);
        r->ad = a; // freed with the run from here on
        if (run_settings_from_file(r, a, "--import-peft", cfg->import_peft, 0) != 0) return -1;
        printf("adapter: imported PEFT LoRA from %s (rank %d, alpha %g%s) as %s\n", cfg->import_peft, a->cfg.rank,
               a->cfg.alpha, a->cfg.rslora ? ", rsLoRA" : "", r->v->name);
    } else if (cfg->adapter_in[0]) {
        if (adapter_load(a, cfg->adapter_in, c.num_layers, c.channels, e, sizeof(e)) != 0) RUN_FAIL(r, "--adapter-in: %s", e);
        r->ad = a; // freed with the run from here on
        if (run_settings_from_file(r, a, "--adapter-in", cfg->adapter_in, 1) != 0) return -1;
        printf("adapter: loaded %s (%s, rank %d, alpha %g)\n", cfg->adapter_in, r->v->name, a->cfg.rank, a->cfg.alpha);
        if (a->nhist > 0) { // PLoRA: the earlier stages into the original base; the last one stays the adapter
            plora_fold_history(a, gpt2_slot_weight, &r->model);
            printf("adapter: PLoRA history: %d unloaded stages folded into the base\n", a->nhist);
        }
        if (r->v->masked_phases) {
            r->B_loaded = xcalloc(a->nB, sizeof(float), "loaded B");
            memcpy(r->B_loaded, a->params + a->nA, a->nB * sizeof(float));
            if (a->mask) { r->mask_loaded = xcalloc(a->nB, 1, "loaded mask"); memcpy(r->mask_loaded, a->mask, a->nB); }
        }
    } else {
        const AdapterVariant *v = r->v;
        AdapterConfig ac = {v->kind, cfg->rank, cfg->alpha, cfg->rslora, cfg->dropout, parse_targets(cfg->targets),
                            strcmp(v->trains_A ? cfg->init : cfg->lori_init, "gaussian") == 0 ? INIT_GAUSSIAN : INIT_KAIMING,
                            cfg->adapter_seed ? (uint64_t)cfg->adapter_seed : 0x4C6F5241ull ^ (uint64_t)cfg->seed};
        if (adapter_create(a, &ac, c.num_layers, c.channels, e, sizeof(e)) != 0) RUN_FAIL(r, "%s", e);
    }
    r->ad = a;
    a->drop_rng = (uint64_t)cfg->seed ^ 0xD50Bull;
    a->training = 1;
    a->plora_mode = (PLoRAMomentum)name_index(cfg->plora_mode, plora_momentum_names, 2);
    return 0;
}

// The phases: one, or LoRI's D then S (lora/variants.h: masked_phases). -x counts steps per phase.
static int run_plan_phases(Run *r) {
    TrainConfig *cfg = r->cfg;
    Adapter *ad = r->ad;
    // data parallel: the step's grad_accum micro-batches of (B,T) are split over the ranks, rank r
    // taking the consecutive ones [r local_accum, (r+1) local_accum), so the batch and its order are
    // the one-process run's at any rank count (without -d every rank takes one micro-batch)
    r->world = dist_world();
    r->grad_accum = cfg->total_batch < 0 ? r->world : cfg->total_batch / (cfg->B * cfg->T);
    if (r->grad_accum % r->world != 0)
        RUN_FAIL(r, "-d %d: the total batch must be a multiple of B*T*ranks = %d*%d*%d (%d micro-batches do not split over %d ranks)",
                 cfg->total_batch, cfg->B, cfg->T, r->world, r->grad_accum, r->world);
    r->local_accum = r->grad_accum / r->world;
    r->first_mb = dist_rank() * r->local_accum;
    int steps = cfg->max_steps;
    if (steps < 0) {
        int64_t rows = dataloader_epoch_rows(&r->train);
        steps = (int)(rows / ((int64_t)cfg->B * r->grad_accum));
        if (steps < 1) steps = 1;
    }
    r->mmode = MASK_MODEL;
    if (r->v->masked_phases && steps == 0) { // evaluation of a LoRI adapter: no phase, B as loaded
        r->phases[r->nphases++] = (Phase){0, 0, cfg->lr};
    } else if (r->v->masked_phases) {
        int mi = name_index(cfg->mask, mask_mode_names, 4);
        if (mi >= 0) r->mmode = (MaskMode)mi; else r->mask_from_file = 1;
        float lr_d = cfg->lori_lr_d >= 0 ? cfg->lori_lr_d : cfg->lr;
        float lr_s = cfg->lori_lr_s >= 0 ? cfg->lori_lr_s : 10.0f * cfg->lr;
        int steps_s = cfg->lori_steps_s >= 0 ? cfg->lori_steps_s : steps;
        int only_s = strcmp(cfg->lori_stage, "s") == 0;
        int need_d = strchr(cfg->lori_stage, 'd') && !(strcmp(cfg->lori_stage, "ds") == 0 && (r->mmode == MASK_RANDOM || r->mask_from_file));
        if (need_d) r->phases[r->nphases++] = (Phase){0, steps, lr_d};
        if (strchr(cfg->lori_stage, 's')) r->phases[r->nphases++] = (Phase){1, only_s ? steps : steps_s, lr_s};
        if (only_s && !r->mask_from_file && r->mmode != MASK_RANDOM && !cfg->adapter_in[0])
            RUN_FAIL(r, "--lori-stage s needs a mask: --mask FILE, --mask random, or --adapter-in a LoRI-D adapter to take the top-k from");
        // ds from a loaded adapter (continual LoRI-S): a fresh LoRI-D on the new task finds the new mask;
        // d alone from a loaded adapter (continual LoRI-D) trains the loaded B further, as LoRA does
        if (need_d && r->B_loaded && strchr(cfg->lori_stage, 's')) memset(ad->params + ad->nA, 0, ad->nB * sizeof(float));
        if (need_d && ad->mask) { free(ad->mask); free(ad->kept); ad->mask = NULL; ad->kept = NULL; ad->nkept = 0; }
    } else {
        r->phases[r->nphases++] = (Phase){0, steps, cfg->lr};
    }
    r->total_steps = 0;
    for (int i = 0; i < r->nphases; i++) r->total_steps += r->phases[i].steps;
    r->sched = (Schedule)name_index(cfg->schedule, schedule_names, 3);
    // PLoRA: room for every unload's history now, so no training step allocates
    if (r->ad && r->v->unloads && plora_reserve_history(r->ad, r->ad->nhist + r->total_steps / cfg->plora_every) != 0)
        RUN_FAIL(r, "out of memory for PLoRA's stage history (%d stages)", r->total_steps / cfg->plora_every);
    return 0;
}

// The backend's opt_setup, then the run's AdamW settings (the GPU reads them from the host's AdamW).
static void setup_optimizer(Backend *be, const TrainConfig *cfg) {
    be->opt_setup(be);
    be->opt->beta1 = cfg->beta1; be->opt->beta2 = cfg->beta2; be->opt->eps = cfg->eps;
}

// The backend takes over the model's arithmetic from here on.
static int run_start_backend(Run *r) {
    Backend *be = r->be;
    GPT2Config c = r->model.config;
    be->model = &r->model;
    be->opt = &r->opt;
    be->err[0] = 0;
    if (be->setup(be, r->ad, r->cfg) != 0) RUN_FAIL(r, "%s", be->err);
    printf("model: L=%d C=%d H=%d V=%d (padded %d) maxT=%d, %zu parameters | %s\n", c.num_layers, c.channels, c.num_heads,
           c.vocab_size, c.padded_vocab_size, c.max_seq_len, r->model.num_parameters, be->desc);
    if (r->ad)
        for (int s = 0; s < r->ad->nslots; s++) r->lora_equiv += (size_t)r->ad->cfg.rank * (r->ad->slot_in[s] + r->ad->slot_out[s]);
    return 0;
}

// -o: the directory, the resumed state (-y) or fresh optimizer state, train.csv.
static int run_open_outputs(Run *r) {
    TrainConfig *cfg = r->cfg;
    Backend *be = r->be;
    char e[1024];
    if (cfg->output_dir[0] && mkdir(cfg->output_dir, 0755) != 0 && errno != EEXIST)
        RUN_FAIL(r, "-o: cannot create directory %s: %s", cfg->output_dir, strerror(errno));
    r->pos.sample_rng = (uint64_t)cfg->seed ^ 0x5A4D504Cull;
    if (cfg->resume) {
        join_path(r->path, sizeof(r->path), cfg->output_dir, "state.bin");
        if (load_state(r->path, &r->model, NULL, &r->pos, e, sizeof(e)) != 0) RUN_FAIL(r, "-y: %s", e);
        setup_optimizer(be, cfg); // the groups of the restored mask, then the moments
        AdamW full;               // ZeRO-1: the file's every moment, then this rank's shard of them
        run_full_moments(r, &full, 1);
        int rc = load_state(r->path, &r->model, &full, &r->pos, e, sizeof(e));
        r->opt.t = full.t;
        if (adamw_sharded(&r->opt)) {
            memcpy(r->opt.m, full.m + r->opt.lo, (r->opt.hi - r->opt.lo) * sizeof(float));
            memcpy(r->opt.v, full.v + r->opt.lo, (r->opt.hi - r->opt.lo) * sizeof(float));
        }
        run_free_gathered(r, &full);
        if (rc != 0) RUN_FAIL(r, "-y: %s", e);
        if (r->have_train && dataloader_seek(&r->train, r->pos.epoch, r->pos.shard, r->pos.row) != 0) RUN_FAIL(r, "-y: %s", r->train.err);
        printf("resumed from %s at step %d (phase %d)\n", r->path, r->pos.step, r->pos.phase);
    } else {
        setup_optimizer(be, cfg);
    }
    if (r->ad && r->world > 1) r->ad->drop_rng ^= 0x9E3779B97F4A7C15ull * (uint64_t)dist_rank(); // each rank its own dropout masks
    be->load(be);
    if (cfg->output_dir[0] && dist_is_main()) {
        join_path(r->path, sizeof(r->path), cfg->output_dir, "train.csv");
        r->csv = fopen(r->path, cfg->resume ? "a" : "w");
        if (!r->csv) RUN_FAIL(r, "-o: cannot write %s: %s", r->path, strerror(errno));
        if (!cfg->resume) fprintf(r->csv, "step,train_loss,val_loss,lr,grad_norm,ms,tok_per_s\n");
    }
    return 0;
}

// The start-up report: what trains and what it costs.
static void run_report_setup(Run *r) {
    TrainConfig *cfg = r->cfg;
    Adapter *ad = r->ad;
    size_t total = r->model.num_parameters, trainable = ad ? adapter_num_trainable(ad) : total;
    printf("adapter: %s", cfg->adapter);
    if (ad) printf(" | rank %d, alpha %g, scale %g%s, targets %s, dropout %g", ad->cfg.rank, ad->cfg.alpha, ad->scale,
                   ad->cfg.rslora ? " (rsLoRA)" : "", cfg->targets, ad->cfg.dropout);
    printf("\nparameters: %zu total, %zu trainable (%.4f%% of the model", total, trainable, 100.0 * trainable / total);
    if (ad) printf(", %.2f%% of an equal-rank LoRA", 100.0 * trainable / r->lora_equiv);
    printf(") | trainable state %.2f MiB (values, gradients, AdamW m and v)\n", 16.0 * trainable / 1048576.0);
    if (r->world == 1)
        printf("batch: B=%d T=%d, grad accumulation %d -> %d tokens per step | %d steps", cfg->B, cfg->T, r->grad_accum,
               cfg->B * cfg->T * r->grad_accum, r->total_steps);
    else
        printf("batch: B=%d T=%d, %d ranks x grad accumulation %d -> %d tokens per step | %d steps", cfg->B, cfg->T, r->world,
               r->local_accum, cfg->B * cfg->T * r->grad_accum, r->total_steps);
    if (r->nphases == 2)
        printf(" (LoRI-D %d at lr %g, then LoRI-S %d at lr %g)", r->phases[0].steps, r->phases[0].lr, r->phases[1].steps, r->phases[1].lr);
    printf("\n");
    r->be->report_setup(r->be);
}

// The start of a masked phase (LoRI-S): the mask (from LoRI-D's |B|, random, or a file), then a
// fresh B, or the loaded task's B for continual learning; the optimizer's groups follow the mask.
static int run_enter_masked_phase(Run *r, int ph) {
    TrainConfig *cfg = r->cfg;
    Adapter *ad = r->ad;
    char e[1024];
    r->be->sync(r->be, 0); // LoRI-D's B, as trained
    uint8_t *mask = NULL;
    if (r->mask_from_file) {
        if (mask_load(ad, cfg->mask, &mask, e, sizeof(e)) != 0) RUN_FAIL(r, "--mask: %s", e);
    } else {
        mask = adapter_make_mask(ad, r->mmode, cfg->sparsity, (uint64_t)cfg->seed);
    }
    if (dist_check_identical("LoRI-S mask", mask, ad->nB, e, sizeof(e)) != 0) { free(mask); RUN_FAIL(r, "%s", e); }
    if (ph > 0 && cfg->output_dir[0] && dist_is_main()) {
        join_path(r->path, sizeof(r->path), cfg->output_dir, "adapter_lori_d.bin");
        if (adapter_save(ad, r->path, r->cmdline, e, sizeof(e)) != 0) { free(mask); RUN_FAIL(r, "%s", e); }
    }
    size_t kept = 0;
    for (size_t i = 0; i < ad->nB; i++) kept += mask[i];
    if (r->B_loaded) { // continual: the new phase trains only the new task's mask; the rest stays bit-identical
        memcpy(ad->params + ad->nA, r->B_loaded, ad->nB * sizeof(float));
        adapter_set_mask(ad, mask, 0);
        printf("continual LoRI-S: training %zu entries of the new task's mask; the loaded adapter's other entries stay frozen\n", kept);
    } else {
        memset(ad->params + ad->nA, 0, ad->nB * sizeof(float));
        if (cfg->lori_new_a) for (int s = 0; s < ad->nslots; s++) adapter_draw_A(ad, s, ad->cfg.seed ^ 0xA2A2ull);
        adapter_set_mask(ad, mask, 1);
    }
    printf("LoRI-S: mask %s%s, sparsity %.3f: %zu of %zu B entries trainable\n", r->mask_from_file ? cfg->mask : mask_mode_names[r->mmode],
           r->mmode == MASK_RANDOM && !r->mask_from_file ? " (random: not the paper's method)" : "", 1.0 - (double)kept / ad->nB, kept, ad->nB);
    if (cfg->output_dir[0] && dist_is_main()) {
        join_path(r->path, sizeof(r->path), cfg->output_dir, "mask.bin");
        if (mask_save(ad, mask, r->path, e, sizeof(e)) != 0) { free(mask); RUN_FAIL(r, "%s", e); }
    }
    free(mask);
    setup_optimizer(r->be, cfg);
    r->be->load(r->be);
    return 0;
}

// One optimizer step's data, forward/backward over its micro-batches and update. Sets *loss, *norm,
// *lr, and r->stop. Data parallel: this rank reads its micro-batches and skips the others' (every
// rank ends at the same data position); the counted targets, the loss and a stop are reduced over
// the ranks, and the trainable gradients summed (be->allreduce_grads) before the norm.
static int run_optimizer_step(Run *r, const Phase *P, int lstep, float *loss_out, float *norm_out, float *lr_out) {
    TrainConfig *cfg = r->cfg;
    Backend *be = r->be;
    size_t bt = r->bt;
    int step = r->pos.step;
    long count = 0; // counted targets of the whole step's batch, all ranks'
    for (int k = 0, j; k < r->grad_accum; k++) {
        if ((j = k - r->first_mb) < 0 || j >= r->local_accum) { // another rank's micro-batch
            if (dataloader_skip_batch(&r->train) != 0) RUN_FAIL(r, "-i: %s", r->train.err);
            continue;
        }
        if (dataloader_next_batch(&r->train) != 0) RUN_FAIL(r, "-i: %s", r->train.err);
        memcpy(r->binp + j * bt, r->train.inputs, bt * sizeof(int));
        memcpy(r->btgt + j * bt, r->train.targets, bt * sizeof(int));
        memcpy(r->bmask + j * bt, r->train.mask, bt);
        for (size_t i = 0; i < bt; i++) count += r->train.mask[i];
    }
    if (r->world > 1) { double c_all = (double)count; dist_allreduce_f64(&c_all, 1); count = (long)c_all; }
    r->pos.epoch = r->train.epoch; r->pos.shard = r->train.shard_idx; r->pos.row = r->train.row_idx;
    be->begin_step(be, lstep > 0);
    double loss_sum = 0;
    for (int k = 0; k < r->local_accum && count > 0; k++) {
        const int *x = r->binp + k * bt, *y = r->btgt + k * bt;
        const uint8_t *mk = r->bmask + k * bt;
        long n = 0;
        for (size_t i = 0; i < bt; i++) n += mk[i];
        if (n == 0) { be->forward(be, x, y, mk); continue; } // no loss, but the dropout masks are drawn
        loss_sum += (double)be->forward_backward(be, x, y, mk, 1.0f / (float)count) * n;
        if (be->err[0]) RUN_FAIL(r, "-i: %s", be->err);
    }
    // a stop (a signal) is read once a step, here: data parallel, every rank stops after the step in
    // which any rank saw one (one arriving later counts for the next step)
    r->stop = g_stop_requested != 0 || (cfg->stop_at > 0 && step + 1 == cfg->stop_at);
    if (r->world > 1) { // the loss over all ranks' targets, and the stop
        double v[2] = {loss_sum, (double)r->stop};
        dist_allreduce_f64(v, 2);
        loss_sum = v[0];
        r->stop = v[1] > 0;
    }
    if (count > 0) be->allreduce_grads(be);
    float loss = count > 0 ? (float)(loss_sum / count) : NAN;
    float norm = be->grad_norm(be);
    int stage_sched = r->v->unloads && strcmp(cfg->plora_schedule, "stage") == 0; // PLoRA: the schedule restarts per stage
    int sched_step = stage_sched ? lstep % cfg->plora_every : lstep;
    int sched_total = stage_sched ? cfg->plora_every : P->steps;
    float lr = get_lr(r->sched, P->lr, sched_step, cfg->warmup, sched_total, cfg->final_frac);
    if (count == 0) {
        printf("step %d: no counted target tokens in this batch (loss mask all zero): update skipped\n", step + 1);
    } else if (!isfinite(loss) || !isfinite(norm)) {
        if (strcmp(cfg->nan_policy, "skip") != 0) {
            r->fail_status = 2;
            RUN_FAIL(r, "step %d: non-finite loss %g or gradient norm %g; stopping. The last checkpoint in %s is kept.",
                     step + 1, loss, norm, cfg->output_dir[0] ? cfg->output_dir : "(no -o)");
        }
        printf("step %d: non-finite loss %g or gradient norm %g: update skipped (--nan-policy skip)\n", step + 1, loss, norm);
    } else {
        float gscale = 1.0f;
        if (cfg->grad_clip > 0) { float coef = cfg->grad_clip / (norm + 1e-6f); if (coef < 1.0f) gscale = coef; }
        be->adamw_step(be, lr, cfg->weight_decay, gscale);
    }
    *loss_out = loss; *norm_out = norm; *lr_out = lr;
    return 0;
}

// PLoRA's stage boundary (lora/variants.h: unloads): every --plora-every steps of a phase, but the last.
// Data parallel: the base and the new adapter are checked identical on all ranks.
static int run_stage_boundary(Run *r, int lstep, int last) {
    TrainConfig *cfg = r->cfg;
    char e[512];
    if (!r->v->unloads || (lstep + 1) % cfg->plora_every != 0 || last) return 0;
    r->be->plora_unload(r->be, cfg->plora_momentum);
    if (r->world > 1) {
        r->be->sync(r->be, 0);
        if (dist_check_identical("PLoRA unload: the base", r->model.params_memory, r->model.num_parameters * sizeof(float), e, sizeof(e)) != 0 ||
            dist_check_identical("PLoRA unload: the new adapter", r->ad->params, (r->ad->nA + r->ad->nB) * sizeof(float), e, sizeof(e)) != 0)
            RUN_FAIL(r, "%s", e);
    }
    printf("PLoRA: unloaded stage %d into the base at step %d (momentum %g)%s\n", r->ad->stage, r->pos.step + 1,
           cfg->plora_momentum, cfg->plora_momentum == 0 ? "; A redrawn, B = 0, moments reset"
                                : r->ad->plora_mode == PLORA_WRITEUP ? "; A, B scaled by m (the write-up's), moments reset"
                                                                      : "; A, B scaled by sqrt(m), moments reset");
    return 0;
}

// The resumable state after `step` steps, into DIR/state.bin, from the host's copies.
// opt: the run's AdamW, or under ZeRO-1 its moments gathered (run_gather_moments).
static int run_save_state(Run *r, AdamW *opt, int step) {
    char e[1024];
    TrainPos save = r->pos;
    save.step = step;
    join_path(r->path, sizeof(r->path), r->cfg->output_dir, "state.bin");
    if (save_state(r->path, &r->model, opt, &save, e, sizeof(e)) != 0) RUN_FAIL(r, "checkpoint: %s", e);
    return 0;
}

// A checkpoint: the backend's state to the host, the same on every rank (checked), saved by rank 0.
static int run_checkpoint(Run *r, int step) {
    r->be->sync(r->be, 1);
    if (run_check_ranks_agree(r, "at the checkpoint") != 0) return -1;
    AdamW full;
    run_gather_moments(r, &full);
    int rc = dist_is_main() ? run_save_state(r, &full, step) : 0;
    run_free_gathered(r, &full);
    return rc;
}

// One step of phase P (starting at global step phase_start): validation and a sample when due, the
// optimizer step, the stage boundary, the log line and csv row, the checkpoint and --stop-at.
static int run_step(Run *r, const Phase *P, int phase_start) {
    TrainConfig *cfg = r->cfg;
    Backend *be = r->be;
    int step = r->pos.step, lstep = step - phase_start;
    int last = step == r->total_steps - 1;
    float val_loss = NAN;
    if (r->have_val && cfg->val_every > 0 && step % cfg->val_every == 0) {
        if (evaluate_loss(be, &r->val, r->val_batches, &val_loss, r->err, sizeof(r->err)) != 0) return -1;
        r->last_val = val_loss;
        printf("step %d | val loss %.6f\n", step, val_loss);
    }
    if (cfg->sample_every > 0 && step > 0 && step % cfg->sample_every == 0 && cfg->gen_len > 0) {
        be->sync(be, 0);
        print_sample(&r->model, &r->tok, cfg->gen_len, cfg->temperature, &r->pos.sample_rng, &r->merged_scratch);
    }
    double t0 = now_s();
    float loss, norm, lr;
    if (run_optimizer_step(r, P, lstep, &loss, &norm, &lr) != 0) return -1;
    if (run_stage_boundary(r, lstep, last) != 0) return -1;
    be->end_step(be);
    double dt = now_s() - t0;
    if (lstep > 0) { r->train_time += dt; r->timed_steps++; }
    double avg = r->timed_steps ? r->train_time / r->timed_steps : dt;
    char eta[32];
    format_eta(avg * (r->total_steps - step - 1), eta, sizeof(eta));
    double tps = (double)r->bt * r->grad_accum / dt;
    if (step == 0 && r->res) r->res->first_loss = loss;
    if (r->res) r->res->final_train_loss = loss;
    if ((step + 1) % cfg->print_every == 0 || step == 0 || last)
        printf("step %4d/%d | loss %.6f | lr %.2e | norm %.4f | %.1f ms | %.0f tok/s | ETA %s\n", step + 1, r->total_steps,
               loss, lr, norm, dt * 1000, tps, eta);
    fflush(stdout);
    if (r->csv) {
        fprintf(r->csv, "%d,%.6f,", step + 1, loss);
        if (isfinite(val_loss)) fprintf(r->csv, "%.6f", val_loss);
        fprintf(r->csv, ",%.6e,%.6f,%.3f,%.1f\n", lr, norm, dt * 1000, tps);
        fflush(r->csv);
    }
    if (cfg->output_dir[0] && ((cfg->ckpt_every > 0 && (step + 1) % cfg->ckpt_every == 0) || r->stop)) {
        if (run_checkpoint(r, step + 1) != 0) return -1;
        printf("checkpoint: %s (step %d)\n", r->path, step + 1);
    }
    if (r->stop) {
        printf("interrupted: stopped after step %d%s\n", step + 1, cfg->output_dir[0] ? "; resume with -y 1" : "");
        r->stopped = 1;
    }
    return 0;
}

// Phase ph, from global step phase_start: its start (LoRI-S's mask), then its steps from where a
// resume left off.
static int run_phase(Run *r, int ph, int phase_start) {
    const Phase *P = &r->phases[ph];
    if (r->pos.step >= phase_start + P->steps) return 0; // finished before a resume
    int resumed_inside = r->cfg->resume && r->pos.phase == ph;
    if (P->is_s && r->pos.step <= phase_start && !resumed_inside)
        if (run_enter_masked_phase(r, ph) != 0) return -1;
    if (r->pos.step < phase_start) r->pos.step = phase_start;
    r->pos.phase = ph;
    for (; r->pos.step < phase_start + P->steps; r->pos.step++) {
        if (run_step(r, P, phase_start) != 0) return -1;
        if (r->stopped) { r->pos.step++; break; }
    }
    return 0;
}

// After the last step: the final validation loss, the log's end, a last sample.
static int run_final_evaluation(Run *r) {
    TrainConfig *cfg = r->cfg;
    if (r->have_val && !r->stopped) {
        if (evaluate_loss(r->be, &r->val, r->val_batches, &r->last_val, r->err, sizeof(r->err)) != 0) return -1;
        printf("final val loss %.6f\n", r->last_val);
        if (r->csv) fprintf(r->csv, "%d,,%.6f,,,,\n", r->total_steps, r->last_val);
    }
    if (r->csv) { fclose(r->csv); r->csv = NULL; }
    if (r->timed_steps) printf("average step %.1f ms, %.0f tok/s\n", 1000 * r->train_time / r->timed_steps,
                               (double)r->bt * r->grad_accum * r->timed_steps / r->train_time);
    r->be->report_end(r->be, r->timed_steps, r->train_time);
    r->be->sync(r->be, 1);
    if (cfg->gen_len > 0 && cfg->sample_every > 0 && !r->stopped)
        print_sample(&r->model, &r->tok, cfg->gen_len, cfg->temperature, &r->pos.sample_rng, &r->merged_scratch);
    return 0;
}

// -o's files: adapter.bin (continual LoRI-S: the mask as old ∪ new), model.bin where the base
// changed (lora/variants.h: base_changes), state.bin.
static int run_write_run_files(Run *r) {
    TrainConfig *cfg = r->cfg;
    Adapter *ad = r->ad;
    char e[1024];
    struct stat st;
    if (ad) {
        if (r->mask_loaded && ad->mask) {
            uint8_t *u = xcalloc(ad->nB, 1, "mask union");
            for (size_t i = 0; i < ad->nB; i++) u[i] = r->mask_loaded[i] | ad->mask[i];
            adapter_set_mask(ad, u, 0);
            free(u);
        }
        join_path(r->path, sizeof(r->path), cfg->output_dir, "adapter.bin");
        if (adapter_save(ad, r->path, r->cmdline, e, sizeof(e)) != 0) RUN_FAIL(r, "%s", e);
        if (r->res && stat(r->path, &st) == 0) r->res->adapter_bytes = (long)st.st_size;
        if (r->res) r->res->lora_file_bytes = (long)adapter_file_bytes_lora(ad, strlen(r->cmdline));
        printf("wrote %s\n", r->path);
    }
    if (r->v->base_changes) {
        join_path(r->path, sizeof(r->path), cfg->output_dir, "model.bin");
        const float *p = gpt2_effective_params(&r->model, &r->merged_scratch);
        if (gpt2_write_checkpoint(&r->model.config, p, r->model.num_parameters, r->path, e, sizeof(e)) != 0) RUN_FAIL(r, "%s", e);
        printf("wrote %s%s\n", r->path, ad ? " (the base with every PLoRA stage and the last adapter folded in)" : "");
    }
    if (!r->stopped && run_save_state(r, &r->io_opt, r->pos.step) != 0) return -1; // synced by run_final_evaluation
    return 0;
}

// --export-hf DIR: the model as --merge-out writes it, as a Hugging Face GPT-2 folder, with the
// tokenizer files of -e's folder, else of the training shards' folder, when they are there.
static int run_export_hf(Run *r) {
    TrainConfig *cfg = r->cfg;
    char tokdir[1100], e[1024];
    struct stat st;
    if (stat(cfg->model, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(tokdir, sizeof(tokdir), "%s", cfg->model);
    else if (r->have_train) {
        snprintf(tokdir, sizeof(tokdir), "%s", r->train.files[0]);
        char *sl = strrchr(tokdir, '/');
        if (sl) *sl = 0; else strcpy(tokdir, ".");
    } else tokdir[0] = 0;
    const float *p = gpt2_effective_params(&r->model, &r->merged_scratch);
    int copied = 0;
    if (gpt2_write_hf(&r->model.config, p, cfg->export_hf, tokdir[0] ? tokdir : NULL, &copied, e, sizeof(e)) != 0)
        RUN_FAIL(r, "--export-hf: %s", e);
    printf("wrote %s/ (Hugging Face GPT-2: config.json, model.safetensors%s)\n", cfg->export_hf, copied ? ", vocab.json, merges.txt" : "");
    return 0;
}

// --dump-logits FILE: the first validation row's tokens (FILE.tokens, int32) and logits (T x V).
static int run_dump_logits(Run *r) {
    TrainConfig *cfg = r->cfg;
    Backend *be = r->be;
    GPT2Config c = r->model.config;
    int T = cfg->T;
    char e[1024];
    if (!r->have_val) RUN_FAIL(r, "--dump-logits needs -j validation data");
    be->set_training(be, 0);
    dataloader_reset(&r->val);
    if (dataloader_next_batch(&r->val) != 0) RUN_FAIL(r, "-j: %s", r->val.err);
    be->forward(be, r->val.inputs, NULL, NULL);
    if (be->err[0]) RUN_FAIL(r, "-j: %s", be->err);
    float *row = xcalloc((size_t)T * c.padded_vocab_size, sizeof(float), "logits");
    be->get_logits(be, row);
    float *lg = xcalloc((size_t)T * c.vocab_size, sizeof(float), "logits");
    for (int t = 0; t < T; t++) memcpy(lg + (size_t)t * c.vocab_size, row + (size_t)t * c.padded_vocab_size, c.vocab_size * sizeof(float));
    free(row);
    const void *b1[1] = {lg};
    size_t s1[1] = {(size_t)T * c.vocab_size * 4};
    int rc = write_chunks_atomic(cfg->dump_logits, b1, s1, 1, e, sizeof(e));
    free(lg);
    if (rc != 0) RUN_FAIL(r, "--dump-logits: %s", e);
    snprintf(r->path, sizeof(r->path), "%s.tokens", cfg->dump_logits);
    const void *b2[1] = {r->val.inputs};
    size_t s2[1] = {(size_t)T * 4};
    if (write_chunks_atomic(r->path, b2, s2, 1, e, sizeof(e)) != 0) RUN_FAIL(r, "--dump-logits: %s", e);
    printf("wrote %s and %s (first validation row: %d tokens, logits over V=%d)\n", cfg->dump_logits, r->path, T, c.vocab_size);
    return 0;
}

// --eval-em: exact match on each listed test shard.
static int run_exact_match(Run *r) {
    TrainConfig *cfg = r->cfg;
    char list[2048], e[1024];
    snprintf(list, sizeof(list), "%s", cfg->eval_em);
    for (char *sp = NULL, *f = strtok_r(list, ",", &sp); f; f = strtok_r(NULL, ",", &sp)) {
        EMResult em;
        if (eval_exact_match(&r->model, &r->tok, f, cfg->eval_examples, cfg->eval_show, &r->merged_scratch, &em, e, sizeof(e)) != 0)
            RUN_FAIL(r, "--eval-em: %s", e);
        if (r->res && f == list) { r->res->em_n = em.n; r->res->em_correct = em.correct; }
        printf("exact match %s: %d / %d = %.1f%%\n", f, em.correct, em.n, em.n ? 100.0 * em.correct / em.n : 0.0);
    }
    return 0;
}

// Everything the run writes or reports after training: rank 0 writes the files (once the ranks
// agree on what trained); exact match is every rank's.
static int run_write_outputs(Run *r) {
    TrainConfig *cfg = r->cfg;
    char e[1024];
    if (run_check_ranks_agree(r, "at the end") != 0) return -1;
    run_gather_moments(r, &r->io_opt); // (every rank: a collective under ZeRO-1)
    if (!dist_is_main()) { run_free_gathered(r, &r->io_opt); return cfg->eval_em[0] ? run_exact_match(r) : 0; }
    int wrote = !cfg->output_dir[0] || run_write_run_files(r) == 0;
    run_free_gathered(r, &r->io_opt);
    if (!wrote) return -1;
    if (cfg->export_peft[0]) {
        if (!r->ad) RUN_FAIL(r, "--export-peft needs an adapter (--adapter lora|lori|plora)");
        if (peft_export(r->ad, cfg->export_peft, cfg->model, e, sizeof(e)) != 0) RUN_FAIL(r, "--export-peft: %s", e);
        printf("wrote %s/ (PEFT LoRA: adapter_config.json, adapter_model.safetensors)\n", cfg->export_peft);
    }
    if (cfg->merge_out[0]) {
        const float *p = gpt2_effective_params(&r->model, &r->merged_scratch);
        if (gpt2_write_checkpoint(&r->model.config, p, r->model.num_parameters, cfg->merge_out, e, sizeof(e)) != 0)
            RUN_FAIL(r, "--merge-out: %s", e);
        printf("wrote %s (merged llm.c checkpoint)\n", cfg->merge_out);
    }
    if (cfg->export_hf[0] && run_export_hf(r) != 0) return -1;
    if (cfg->dump_logits[0] && run_dump_logits(r) != 0) return -1;
    if (cfg->eval_em[0] && run_exact_match(r) != 0) return -1;
    return 0;
}

static void run_fill_result(Run *r) {
    TrainResult *res = r->res;
    if (!res) return;
    res->final_val_loss = r->last_val;
    res->seconds = r->train_time;
    res->tok_per_s = r->timed_steps ? (double)r->bt * r->grad_accum * r->timed_steps / r->train_time : 0;
    res->total_params = r->model.num_parameters;
    res->trainable = r->ad ? adapter_num_trainable(r->ad) : r->model.num_parameters;
    res->lora_equiv = r->lora_equiv;
    res->steps = r->total_steps;
}

static void run_free(Run *r) {
    if (r->csv) fclose(r->csv);
    if (r->be->model) r->be->free(r->be);
    free(r->binp); free(r->btgt); free(r->bmask); free(r->merged_scratch); free(r->B_loaded); free(r->mask_loaded);
    adamw_free(&r->opt);
    if (r->ad) adapter_free(r->ad);
    dataloader_free(&r->train);
    dataloader_free(&r->val);
    tokenizer_free(&r->tok);
    gpt2_free(&r->model);
}

// The whole run on a backend: set-up, every phase's steps, the final evaluation, the outputs.
// 0, or the exit status of a failure (its message printed as "error: ..." and kept in res->error).
static int run_training_on(Backend *be, TrainConfig *cfg, int argc, char **argv, TrainResult *res) {
    Run *r = xcalloc(1, sizeof(Run), "run");
    r->be = be; r->cfg = cfg; r->res = res; r->fail_status = 1; r->last_val = NAN;
    r->v = variant_find(cfg->adapter);
    be->model = NULL;
#ifdef OMP
    if (cfg->threads > 0) omp_set_num_threads(cfg->threads);
    be->nthreads = omp_get_max_threads();
#else
    be->nthreads = 1;
#endif
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(r->cmdline);
        snprintf(r->cmdline + l, sizeof(r->cmdline) - l, "%s%s", i ? " " : "", argv[i]);
    }
    int ok = r->v && run_load_model(r) == 0 && run_open_data(r) == 0 && run_make_adapter(r) == 0 && run_plan_phases(r) == 0 &&
             run_start_backend(r) == 0 && run_open_outputs(r) == 0;
    if (!r->v) snprintf(r->err, sizeof(r->err), "--adapter: unknown '%s'", cfg->adapter);
    if (ok) {
        run_report_setup(r);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        r->bt = (size_t)cfg->B * cfg->T;
        r->binp = xcalloc(r->bt * r->local_accum, sizeof(int), "batch");
        r->btgt = xcalloc(r->bt * r->local_accum, sizeof(int), "batch");
        r->bmask = xcalloc(r->bt * r->local_accum, 1, "batch");
        for (int ph = 0, start = 0; ok && ph < r->nphases && !r->stopped; start += r->phases[ph].steps, ph++)
            ok = run_phase(r, ph, start) == 0;
        ok = ok && run_final_evaluation(r) == 0 && run_write_outputs(r) == 0;
    }
    int status = ok ? 0 : r->fail_status;
    if (!ok) {
        fprintf(stderr, "error: %s\n", r->err);
        if (res) snprintf(res->error, sizeof(res->error), "%s", r->err);
    } else {
        run_fill_result(r);
    }
    run_free(r);
    free(r);
    return status;
}

#endif // LLMC_TRAIN_H
