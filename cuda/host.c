/*
cuda/host.c — the host side of the GPU trainer (train_gpt2.cu), in C.

It includes the library of llmc/ (and lora/, data/), and so shares, not copies, the CPU trainer's
host code: the option table and its defaults, argument parsing and validation,
llm.c checkpoint reading and writing, random init from a descriptor, the data loader and loss
masks, the tokenizer, adapter creation (A drawn from its seed on the host, bit-identical to the
CPU's), adapter and mask files, LoRI-S mask extraction, the resumable state file, the learning-rate
schedules, sampling and exact-match evaluation (on the host, from the parameters synced back).
The training loop too is llmc/train.h's (run_training_on): run_training_gpu below runs it with
this file's GPU backend, which sends the model's forward, backward, optimizer and PLoRA fold to the
GPU through cuda/gpt2_gpu.h and brings the host's copies (parameters, adapter, AdamW moments) up to
date for checkpoints, samples and the output files. Differences from the CPU trainers:
  --precision fp32|bf16 (GPU only, default bf16) is taken out of argv before the shared parser;
  --threads counts the host threads (sampling); --ref-kernels selects the reference attention
  kernels; train_gpt2.cu's GPU_PROFILE stands for CPU_PROFILE. With no flags at all the GPU
  binaries run the embedded default as the CPU ones do, with this backend.
Built four times, like the CPU trainers, with -DDEFAULT_ADAPTER="none|lora|lori|plora".
*/
#include "../llmc/utils.h"
#include "../llmc/model.h"
#include "../llmc/options.h"
#include "../llmc/train.h"
#include "../llmc/embedded.h"
#include "gpt2_gpu.h"
#include "host_api.h"
#ifdef USE_NCCL
#include "nccl.h" // data parallel: one process per GPU under mpirun
#endif

// ----------------------------------------------------------------------------
// the command line: llmc/options.h's table, plus --precision

static void gpu_print_usage(const char *prog) {
    printf("usage: %s [options]\n", prog);
    printf("GPT-2 training on one NVIDIA GPU with full fine-tuning, LoRA, LoRI or PeriodicLoRA (default adapter: %s)\n\n", DEFAULT_ADAPTER);
    print_options();
    printf("  %-24s %s [default: bf16]\n", "    --precision", "GPU only: bf16 (bf16 activations and frozen weights, fp32 masters and AdamW) | fp32");
    printf("  -h, --help               print this help\n");
    printf("(--ref-kernels: the reference attention kernels instead of the tensor-core or cuDNN ones; --threads: host threads for sampling)\n");
}

// ----------------------------------------------------------------------------
// the GPU backend of llmc/train.h's training loop (run_training_on): the model, its gradients and
// the optimizer's moments live on the GPU; the host's copies are brought up to date (sync) before a
// checkpoint, a sample and the outputs, and sent (load) at a start, a resume and LoRI-S's new mask

typedef struct {
    Backend be;       // first: the loop's Backend * points here
    int bf16, T;
    GPUModel *gm;
    size_t zero_S;    // ZeRO-1 (-z 1 under mpirun, NCCL): the shard size S (0: off); rank r updates [r S, (r+1) S)
#ifdef USE_NCCL
    NcclDP dp;        // under mpirun: this rank's GPU and the communicator
#endif
} GPUBackend;

static GPUModel *gpu_of(Backend *be) { return ((GPUBackend *)be)->gm; }

// The GPU model of the host's model and adapter shapes; their values come with gpu_be_load.
static int gpu_be_setup(Backend *be, Adapter *ad, const TrainConfig *cfg) {
    GPUBackend *g = (GPUBackend *)be;
    be->model->adapter = ad; // the host model holds parameters only (no activations): the GPU computes
    GPT2Config c = be->model->config;
    GPUConfig gc = {c.max_seq_len, c.vocab_size, c.padded_vocab_size, c.num_layers, c.num_heads, c.channels};
    GPUAdapterDesc d;
    memset(&d, 0, sizeof(d));
    if (ad) {
        d.base_absorbs = variant_of(ad->cfg.kind)->unloads; d.rank = ad->cfg.rank; d.scale = ad->scale; d.dropout = ad->cfg.dropout;
        d.trains_A = adapter_trains_A(ad); d.nslots = ad->nslots;
        d.slot_layer = ad->slot_layer; d.slot_target = ad->slot_target; d.slot_in = ad->slot_in; d.slot_out = ad->slot_out;
        d.a_off = ad->a_off; d.b_off = ad->b_off; d.nA = ad->nA; d.nB = ad->nB;
    }
    g->T = cfg->T;
    char err[512], dp_desc[96] = "";
#ifdef USE_NCCL
    if (dist_active()) { // before the model: picks this rank's GPU
        nccl_dp_init(&g->dp);
        snprintf(dp_desc, sizeof(dp_desc), " | NCCL data parallel: %d rank%s, rank %d on GPU %d", dist_world(),
                 dist_world() > 1 ? "s" : "", dist_rank(), g->dp.device);
    }
#else
    if (dist_world() > 1) {
        snprintf(be->err, sizeof(be->err), "this GPU trainer was built without NCCL: data parallel needs it (cuda/cuda.mk: NCCL_HOME)");
        return -1;
    }
#endif
    g->gm = gpu_create(&gc, be->model->params_memory, ad ? &d : NULL, cfg->B, cfg->T, g->bf16, cfg->ref_kernels, err, sizeof(err));
    if (!g->gm) { snprintf(be->err, sizeof(be->err), "GPU: %s", err); return -1; }
    // ZeRO-1 whenever NCCL runs (also at world size 1, where the shard is everything: the path is
    // the same); started without mpirun there is nothing to shard and -z 1 changes nothing
    be->zero = 0;
    g->zero_S = 0;
#ifdef USE_NCCL
    if (cfg->zero == 1 && g->dp.on) {
        if (dist_world() > GPU_ZERO_PAD) { snprintf(be->err, sizeof(be->err), "-z 1: at most %d ranks", GPU_ZERO_PAD); return -1; }
        if (!dist_shard_ok(be->model->num_parameters)) { // (the moments are gathered by MPI, int counts, for state.bin)
            snprintf(be->err, sizeof(be->err), "-z 1: %zu trainable values; ZeRO-1's MPI counts hold at most 2^31 - 1", be->model->num_parameters);
            return -1;
        }
        be->zero = 1;
        g->zero_S = dist_shard_size(be->model->num_parameters, dist_world());
        size_t l = strlen(dp_desc);
        snprintf(dp_desc + l, sizeof(dp_desc) - l, " | ZeRO-1");
    }
#endif
    snprintf(be->desc, sizeof(be->desc), "GPU: %s | host threads %d%s", gpu_describe(g->gm), be->nthreads, dp_desc);
    return 0;
}

// the host's AdamW is only a container for t and, around state files, the moments
// ZeRO-1: the host's container holds this rank's shard, as the GPU does
static void gpu_be_opt_setup(Backend *be) {
    Adapter *ad = be->model->adapter;
    adamw_free(be->opt);
    be->opt->total = ad ? adapter_num_trainable(ad) : be->model->num_parameters;
    adamw_alloc(be->opt);
    if (be->zero) {
        size_t lo, hi;
        dist_shard(be->opt->total, dist_rank(), dist_world(), &lo, &hi);
        adamw_shard(be->opt, lo, hi);
        gpu_opt_shard(gpu_of(be), lo, hi);
        printf("ZeRO-1: AdamW's moments sharded over %d rank%s: rank 0 keeps entries [%zu, %zu) of %zu\n", dist_world(),
               dist_world() > 1 ? "s" : "", lo, hi, be->opt->total);
    }
}

// host -> GPU: the base when it trains (full fine-tuning, PLoRA), the adapter, its mask and dropout
// stream, the optimizer's groups (from the mask) and moments
static void gpu_be_load(Backend *be) {
    GPUModel *gm = gpu_of(be);
    Adapter *ad = be->model->adapter;
    if (!ad || variant_of(ad->cfg.kind)->base_changes) gpu_set_params(gm, be->model->params_memory);
    if (ad) {
        gpu_set_adapter(gm, ad->params);
        if (gpu_set_mask(gm, ad->kept, ad->nkept, ad->mask != NULL) != 0) die("GPU: %s", gpu_error(gm));
        gpu_set_dropout(gm, ad->drop_rng, 1);
    }
    if (gpu_opt_setup(gm) != 0) die("GPU: %s", gpu_error(gm));
    gpu_set_adamw(gm, be->opt->beta1, be->opt->beta2, be->opt->eps);
    if (gpu_opt_size(gm) != be->opt->total) die("internal: GPU optimizer has %zu entries, the host's %zu", gpu_opt_size(gm), be->opt->total);
    gpu_opt_set(gm, be->opt->m, be->opt->v);
}

// GPU -> host: the base when it trains, the adapter, its dropout stream, and (with_opt) the moments
static void gpu_be_sync(Backend *be, int with_opt) {
    GPUModel *gm = gpu_of(be);
    Adapter *ad = be->model->adapter;
    if (!ad || variant_of(ad->cfg.kind)->base_changes) gpu_get_params(gm, be->model->params_memory);
    if (ad) {
        gpu_get_adapter(gm, ad->params);
        ad->drop_rng = gpu_get_dropout_rng(gm);
    }
    if (with_opt) gpu_opt_get(gm, be->opt->m, be->opt->v);
}

static void gpu_be_set_training(Backend *be, int on) {
    if (be->model->adapter) gpu_set_dropout(gpu_of(be), gpu_get_dropout_rng(gpu_of(be)), on);
}
// a batch the GPU refuses (a token outside the vocab) is reported here and gives a NaN loss, which
// the loop treats as --nan-policy says
static float gpu_be_forward(Backend *be, const int *inputs, const int *targets, const uint8_t *mask) {
    float loss;
    if (gpu_forward(gpu_of(be), inputs, targets, mask, &loss, NULL) == 0) return loss;
    fprintf(stderr, "error: GPU forward: %s\n", gpu_error(gpu_of(be)));
    return NAN;
}
static float gpu_be_forward_backward(Backend *be, const int *inputs, const int *targets, const uint8_t *mask, float scale) {
    float loss;
    if (gpu_forward_backward(gpu_of(be), inputs, targets, mask, scale, &loss, NULL) == 0) return loss;
    fprintf(stderr, "error: GPU forward: %s\n", gpu_error(gpu_of(be)));
    return NAN;
}
static void gpu_be_get_logits(Backend *be, float *out) { gpu_get_logits(gpu_of(be), 0, ((GPUBackend *)be)->T, out); }
static void gpu_be_begin_step(Backend *be, int timed) { gpu_zero_grad(gpu_of(be)); }
// data parallel: NCCL's sum of the trainable gradients over the ranks, on the model's stream
static void gpu_be_allreduce_grads(Backend *be) {
#ifdef USE_NCCL
    float *grads;
    size_t n;
    void *stream;
    gpu_trainable_grads(gpu_of(be), &grads, &n, &stream);
    GPUBackend *g = (GPUBackend *)be;
    if (g->zero_S) nccl_dp_reduce_scatter(&g->dp, grads, g->zero_S, (cudaStream_t)stream); // ZeRO-1: this rank's shard of the sum
    else nccl_dp_allreduce(&g->dp, grads, n, (cudaStream_t)stream);
#endif
    (void)be;
}
static float gpu_be_grad_norm(Backend *be) {
    if (!((GPUBackend *)be)->zero_S) return gpu_grad_norm(gpu_of(be));
    double s = gpu_grad_sumsq(gpu_of(be)); // ZeRO-1: the shards' squares, summed over the ranks
    dist_allreduce_f64(&s, 1);
    return (float)sqrt(s);
}
static void gpu_be_adamw_step(Backend *be, float lr, float weight_decay, float gscale) {
    be->opt->t++;
    gpu_adamw_step(gpu_of(be), lr, weight_decay, gscale, be->opt->t);
#ifdef USE_NCCL
    GPUBackend *g = (GPUBackend *)be;
    if (g->zero_S) { // ZeRO-1: every shard's update (the fp32 masters and the copy the kernels read) to every rank
        float *p32;
        void *px, *stream;
        int px_bf16;
        gpu_full_params(g->gm, &p32, &px, &px_bf16, &stream);
        nccl_dp_allgather(&g->dp, p32, g->zero_S, 0, (cudaStream_t)stream);
        if (px != (void *)p32) nccl_dp_allgather(&g->dp, px, g->zero_S, px_bf16, (cudaStream_t)stream);
    }
#endif
}

// lora/adapter.h's plora_unload with the fold on the device: W += (1 - m) s B A, then the same
// history record and re-initialisation of the adapter on the host (scale A, B by sqrt(m) or m, or
// redraw A and zero B). The history's room was reserved at set-up (llmc/train.h).
static void gpu_plora_unload(GPUModel *gm, Adapter *ad, float m) {
    gpu_get_adapter(gm, ad->params);
    gpu_plora_fold(gm, 1.0f - m);
    if (plora_restart(ad, m) != 0) die("PLoRA: out of memory for the stage history");
    gpu_set_adapter(gm, ad->params);
}
static void gpu_be_plora_unload(Backend *be, float m) {
    gpu_plora_unload(gpu_of(be), be->model->adapter, m);
    gpu_opt_reset(gpu_of(be)); be->opt->t = 0; // at every unload, m or not (lora/adapter.h says why)
}
static void gpu_be_end_step(Backend *be) { gpu_synchronize(gpu_of(be)); }
static void gpu_be_report_setup(Backend *be) {
    size_t now, peak;
    gpu_memory(gpu_of(be), &now, &peak);
    printf("GPU memory: %.1f MiB allocated\n", now / 1048576.0);
}
static void gpu_be_report_end(Backend *be, int timed_steps, double seconds) {
    size_t now, peak;
    gpu_memory(gpu_of(be), &now, &peak);
    printf("GPU memory: peak %.1f MiB allocated by the trainer (parameters, optimizer, activations, workspace)\n", peak / 1048576.0);
}
static void gpu_be_free(Backend *be) {
    gpu_free(gpu_of(be));
#ifdef USE_NCCL
    nccl_dp_free(&((GPUBackend *)be)->dp);
#endif
}

// One training run on the GPU (non-static: ./comparecu runs its trainings through it).
int run_training_gpu(TrainConfig *cfg, int bf16, int argc, char **argv, TrainResult *res) {
    GPUBackend g = {
        .be = {.setup = gpu_be_setup, .opt_setup = gpu_be_opt_setup, .load = gpu_be_load, .sync = gpu_be_sync,
               .set_training = gpu_be_set_training, .forward = gpu_be_forward, .forward_backward = gpu_be_forward_backward,
               .get_logits = gpu_be_get_logits, .begin_step = gpu_be_begin_step,
               .allreduce_grads = gpu_be_allreduce_grads, .grad_norm = gpu_be_grad_norm,
               .adamw_step = gpu_be_adamw_step, .plora_unload = gpu_be_plora_unload, .end_step = gpu_be_end_step,
               .report_setup = gpu_be_report_setup, .report_end = gpu_be_report_end, .free = gpu_be_free},
        .bf16 = bf16,
    };
    return run_training_on(&g.be, cfg, argc, argv, res);
}

// ----------------------------------------------------------------------------
// entry points (train_gpt2.cu's main)

struct HostRun {
    TrainConfig cfg;
    int bf16;
};

// llmc/train.h's run_training_on with this file's backend: what the embedded default runs
static int run_training_gpu_bf16(TrainConfig *cfg, int argc, char **argv, TrainResult *res) {
    return run_training_gpu(cfg, 1, argc, argv, res);
}
int host_run_default_gpu(const char *prog) {
    char err[512];
    if (dist_init(err, sizeof(err)) != 0 || dist_world() > 1) {
        fprintf(stderr, "error: %s\n", dist_world() > 1 ? "the embedded default (no flags) runs as one process: start it without mpirun" : err);
        dist_abort(1);
        return 1;
    }
    int rc = run_default(prog, run_training_gpu_bf16);
    dist_finalize();
    return rc;
}

// --precision is ours; the rest is llmc/options.h's. Joins the data-parallel job first when mpirun
// started this process (llmc/dist.h; host_train_gpu leaves it).
HostRun *host_parse_args(int argc, char **argv, int *rc) {
    char err[512];
    if (dist_init(err, sizeof(err)) != 0) { fprintf(stderr, "error: %s\n", err); *rc = 1; return NULL; }
    HostRun *run = xcalloc(1, sizeof(HostRun), "options");
    char **args = xcalloc((size_t)argc + 1, sizeof(char *), "argv");
    int n = 0, r = 0;
    run->bf16 = 1;
    args[n++] = argv[0];
    for (int i = 1; i < argc && r == 0; i++) {
        const char *a = argv[i], *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { gpu_print_usage(argv[0]); r = 1; break; }
        if (strcmp(a, "--precision") == 0) {
            if (i + 1 >= argc) { fprintf(stderr, "error: flag '--precision' needs a value\n"); r = -1; break; }
            val = argv[++i];
        } else if (strncmp(a, "--precision=", 12) == 0) {
            val = a + 12;
        } else {
            args[n++] = argv[i];
            continue;
        }
        if (strcmp(val, "bf16") == 0) run->bf16 = 1;
        else if (strcmp(val, "fp32") == 0) run->bf16 = 0;
        else { fprintf(stderr, "error: --precision must be bf16 or fp32, got '%s'\n", val); r = -1; }
    }
    if (r == 0) {
        config_defaults(&run->cfg);
        r = parse_args(&run->cfg, n, args);
        if (r == 0 && validate_args(&run->cfg) != 0) r = -1;
    }
    free(args);
    if (r == 0) return run;
    *rc = r < 0 ? 1 : 0;
    if (*rc) dist_abort(*rc);
    dist_finalize();
    free(run);
    return NULL;
}

// The training run, then the end of the data-parallel job: one rank's failure ends every rank (the
// others would wait for it).
int host_train_gpu(HostRun *run, int argc, char **argv) {
    int rc = run_training_gpu(&run->cfg, run->bf16, argc, argv, NULL);
    if (rc) dist_abort(rc);
    dist_finalize();
    return rc;
}
void host_run_free(HostRun *run) { free(run); }

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

void hostapi_reset_stop(void) { g_stop_requested = 0; }

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
    d->base_absorbs = variant_of((AdapterKind)kind)->unloads; d->rank = rank; d->scale = ad->scale; d->dropout = dropout; d->trains_A = adapter_trains_A(ad);
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
