/*
train_gpt2.c — GPT-2 training on the CPU (C11, OpenMP, no BLAS) with LoRA, LoRI and PeriodicLoRA.

The reference trainer of this project, in the spirit of llm.c's train_gpt2.c: one file tells the
story top to bottom — the model (layer math in kernels/layers.h), the adapter hooks (lora/),
the optimizer and schedules, llm.c's files (data/dataloader.h), sampling, and main.
It reads and writes llm.c's checkpoints, shards and tokenizer files, so a model trained here loads
in llm.c and llm.c's gpt2_124M.bin trains here.

What it is not: the fastest possible code (the matrix products, attention and the elementwise layers
have fast versions, kernels/gemm.h and kernels/fast.h, tested against kernels/layers.h's reference
ones, which --ref-kernels runs) or a GPU trainer (train_gpt2.cu).

Full fine-tuning is `--adapter none`. With an adapter the base model is frozen for real: no
gradient buffers for it, no weight gradients (dW = dy^T x), no embedding backward, no optimizer
state, and the backward pass stops below the lowest adapted layer.
*/
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#ifdef OMP
#include <omp.h>
#endif

#include "data/dataloader.h"
#include "data/tasks.h"
#define real float
#define LAYER_FN(name) name
#include "kernels/layers.h"
#undef real
#undef LAYER_FN
#include "kernels/gemm.h"
#include "kernels/fast.h"
#include "lora/adapter.h"
#include "lora/adapter_file.h"
#include "lora/peft.h"
#include "data/hf_gpt2.h"
#include "report.h"

#ifndef DEFAULT_ADAPTER
#define DEFAULT_ADAPTER "none"
#endif

// ----------------------------------------------------------------------------
// the linear layer used by the model: the fast gemm (kernels/gemm.h), tested against
// matmul_forward_ref / matmul_backward_ref of kernels/layers.h

// Counts weight-gradient products of the base model: a frozen base must leave it at 0 (tested).
static long long g_base_weight_grad_calls = 0;
static int g_use_ref_kernels = 0; // --ref-kernels: the plain loops, for comparison

// the other layers: the fast versions (kernels/fast.h) unless --ref-kernels
#define FAST_OR_REF(name, ...) (g_use_ref_kernels ? name(__VA_ARGS__) : name##_fast(__VA_ARGS__))

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// CPU_PROFILE=1 in the environment: the training steps after the first are timed by category
// (every kernel is its own OpenMP region, so a wall-clock bracket around a call is its cost) and
// the milliseconds per step are printed after training. Off: one predictable branch per call.
enum { PC_ZERO, PC_EMBED, PC_LN, PC_MATMUL, PC_WGRAD, PC_LMHEAD, PC_LORA, PC_ATT_FWD, PC_ATT_BWD, PC_GELU,
       PC_RESID, PC_CE, PC_OPT, PC_NCAT };
static const char *prof_names[PC_NCAT] = {"zero gradients", "embedding", "layernorm", "matmul: forward + input grads",
                                          "matmul: weight + bias grads", "LM head (forward + input grad)", "adapter (LoRA path)",
                                          "attention forward", "attention backward", "GELU", "residual",
                                          "softmax + cross-entropy", "grad norm + AdamW"};
static int g_prof_on = 0;           // timing the current step
static double g_prof_s[PC_NCAT];    // seconds per category, summed over the profiled steps
#define PROF(cat, ...) do { double t0_ = g_prof_on ? now_s() : 0; __VA_ARGS__; if (g_prof_on) g_prof_s[cat] += now_s() - t0_; } while (0)

// out (N,OC) = inp (N,C) @ weight^T (OC,C) + bias (OC)
static void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    if (g_use_ref_kernels) { matmul_forward_ref(out, inp, weight, bias, N, C, OC); return; }
    gemm('N', 'T', N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for
        for (int n = 0; n < N; n++) for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
    }
}

// dinp (N,C) += dout @ weight; dweight (OC,C) += dout^T @ inp; dbias += colsum(dout); each may be NULL
static void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int N, int C, int OC) {
    if (dweight) g_base_weight_grad_calls++;
    if (g_use_ref_kernels) { matmul_backward_ref(dinp, dweight, dbias, dout, inp, weight, N, C, OC); return; }
    if (dinp) gemm('N', 'N', N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight) gemm('T', 'N', OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) { // column sums: blocks of 64 columns per thread, rows in order, vectorised across columns
#pragma omp parallel for
        for (int o0 = 0; o0 < OC; o0 += 64) {
            int o1 = o0 + 64 < OC ? o0 + 64 : OC;
            float acc[64] = {0};
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC;
#pragma omp simd
                for (int o = o0; o < o1; o++) acc[o - o0] += d[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
        }
    }
}

// dinp (N,C) = dout @ weight: the input gradient of a linear layer, written (not accumulated): in the
// model every such gradient has this one producer, so nothing needs zeroing or reading first
static void matmul_backward_input(float *dinp, const float *dout, const float *weight, int N, int C, int OC) {
    if (g_use_ref_kernels) {
        memset(dinp, 0, (size_t)N * C * sizeof(float));
        matmul_backward_ref(dinp, NULL, NULL, dout, NULL, weight, N, C, OC);
        return;
    }
    gemm('N', 'N', N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, dinp, C);
}

// ----------------------------------------------------------------------------
// errors: one clear message naming the file or flag, a non-zero exit

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xcalloc(size_t n, size_t size, const char *what) {
    void *p = calloc(n ? n : 1, size);
    if (!p) die("out of memory allocating %s (%zu bytes)", what, n * size);
#ifdef MADV_HUGEPAGE
    // Large buffers (parameters, activations, their gradients) in 2 MiB pages where the kernel
    // allows it (transparent_hugepage=madvise): fewer TLB misses and page faults. calloc's large
    // blocks are fresh mappings, not yet touched, so the advice applies from the first fault.
    size_t bytes = n * size, hp = (size_t)2 << 20;
    if (bytes >= 2 * hp) {
        uintptr_t lo = ((uintptr_t)p + hp - 1) & ~(uintptr_t)(hp - 1), hi = ((uintptr_t)p + bytes) & ~(uintptr_t)(hp - 1);
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#endif
    return p;
}

// Writes `nchunks` buffers to path atomically: path.tmp, flush, fsync, rename. A failure (disk
// full, ...) removes the temporary file and leaves any previous `path` intact. 0 or -1 + err.
static int write_chunks_atomic(const char *path, const void **bufs, const size_t *sizes, int nchunks,
                               char *err, size_t errlen) {
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(err, errlen, "%s: cannot open for writing: %s", tmp, strerror(errno)); return -1; }
    int ok = 1;
    for (int i = 0; i < nchunks && ok; i++)
        if (sizes[i] && fwrite(bufs[i], 1, sizes[i], f) != sizes[i]) ok = 0;
    if (ok && fflush(f) != 0) ok = 0;
    if (ok && fsync(fileno(f)) != 0) ok = 0;
    int e = errno;
    if (fclose(f) != 0) { ok = 0; e = errno; }
    if (!ok) {
        remove(tmp);
        snprintf(err, errlen, "%s: write failed (%s); the previous file, if any, is intact", path, strerror(e));
        return -1;
    }
    if (rename(tmp, path) != 0) {
        e = errno; remove(tmp);
        snprintf(err, errlen, "%s: rename from %s failed: %s", path, tmp, strerror(e));
        return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// GPT-2 model definition

typedef struct {
    int max_seq_len;       // maxT, e.g. 1024
    int vocab_size;        // V, e.g. 50257
    int padded_vocab_size; // Vp, e.g. 50304 (rows V..Vp-1 of wte are padding, ignored by the loss)
    int num_layers;        // L
    int num_heads;         // NH
    int channels;          // C
} GPT2Config;

#define NUM_PARAMETER_TENSORS 16
typedef struct {
    float *wte;      // (Vp, C)
    float *wpe;      // (maxT, C)
    float *ln1w;     // (L, C)
    float *ln1b;     // (L, C)
    float *qkvw;     // (L, 3C, C)
    float *qkvb;     // (L, 3C)
    float *attprojw; // (L, C, C)
    float *attprojb; // (L, C)
    float *ln2w;     // (L, C)
    float *ln2b;     // (L, C)
    float *fcw;      // (L, 4C, C)
    float *fcb;      // (L, 4C)
    float *fcprojw;  // (L, C, 4C)
    float *fcprojb;  // (L, C)
    float *lnfw;     // (C)
    float *lnfb;     // (C)
} ParameterTensors;

static const char *param_names[NUM_PARAMETER_TENSORS] __attribute__((unused)) = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};
// weight decay applies to the 2-D weight matrices only (not biases, not layernorms)
static const int param_is_matrix[NUM_PARAMETER_TENSORS] = {1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0};

static void fill_in_parameter_sizes(size_t *sizes, GPT2Config c) {
    size_t Vp = c.padded_vocab_size, C = c.channels, maxT = c.max_seq_len, L = c.num_layers;
    sizes[0] = Vp * C;          // wte
    sizes[1] = maxT * C;        // wpe
    sizes[2] = L * C;           // ln1w
    sizes[3] = L * C;           // ln1b
    sizes[4] = L * 3 * C * C;   // qkvw
    sizes[5] = L * 3 * C;       // qkvb
    sizes[6] = L * C * C;       // attprojw
    sizes[7] = L * C;           // attprojb
    sizes[8] = L * C;           // ln2w
    sizes[9] = L * C;           // ln2b
    sizes[10] = L * 4 * C * C;  // fcw
    sizes[11] = L * 4 * C;      // fcb
    sizes[12] = L * C * 4 * C;  // fcprojw
    sizes[13] = L * C;          // fcprojb
    sizes[14] = C;              // lnfw
    sizes[15] = C;              // lnfb
}

// points the 16 tensors into one buffer
static void point_parameters(ParameterTensors *p, float *memory, const size_t *sizes) {
    float **ptrs[] = {&p->wte, &p->wpe, &p->ln1w, &p->ln1b, &p->qkvw, &p->qkvb, &p->attprojw, &p->attprojb,
                      &p->ln2w, &p->ln2b, &p->fcw, &p->fcb, &p->fcprojw, &p->fcprojb, &p->lnfw, &p->lnfb};
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { *ptrs[i] = memory; memory += sizes[i]; }
}

#define NUM_ACTIVATION_TENSORS 23
typedef struct {
    float *encoded;   // (B, T, C)
    float *ln1;       // (L, B, T, C)
    float *ln1_mean;  // (L, B, T)
    float *ln1_rstd;  // (L, B, T)
    float *qkv;       // (L, B, T, 3C)
    float *atty;      // (L, B, T, C)
    float *preatt;    // (L, B, NH, T, T)
    float *att;       // (L, B, NH, T, T)
    float *attproj;   // (L, B, T, C)
    float *residual2; // (L, B, T, C)
    float *ln2;       // (L, B, T, C)
    float *ln2_mean;  // (L, B, T)
    float *ln2_rstd;  // (L, B, T)
    float *fch;       // (L, B, T, 4C)
    float *fch_gelu;  // (L, B, T, 4C)
    float *fcproj;    // (L, B, T, C)
    float *residual3; // (L, B, T, C)
    float *lnf;       // (B, T, C)
    float *lnf_mean;  // (B, T)
    float *lnf_rstd;  // (B, T)
    float *logits;    // (B, T, Vp)
    float *probs;     // (B, T, Vp)
    float *losses;    // (B, T)
} ActivationTensors;

static void fill_in_activation_sizes(size_t *s, GPT2Config c, int B, int T) {
    size_t C = c.channels, NH = c.num_heads, L = c.num_layers, Vp = c.padded_vocab_size, BT = (size_t)B * T;
    size_t v[NUM_ACTIVATION_TENSORS] = {
        BT * C, L * BT * C, L * BT, L * BT, L * BT * 3 * C, L * BT * C, L * B * NH * T * T, L * B * NH * T * T,
        L * BT * C, L * BT * C, L * BT * C, L * BT, L * BT, L * BT * 4 * C, L * BT * 4 * C, L * BT * C,
        L * BT * C, BT * C, BT, BT, BT * Vp, BT * Vp, BT};
    memcpy(s, v, sizeof(v));
}

static void point_activations(ActivationTensors *a, float *memory, const size_t *sizes) {
    float **ptrs[] = {&a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->atty, &a->preatt, &a->att,
                      &a->attproj, &a->residual2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fch, &a->fch_gelu,
                      &a->fcproj, &a->residual3, &a->lnf, &a->lnf_mean, &a->lnf_rstd, &a->logits, &a->probs,
                      &a->losses};
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) { *ptrs[i] = memory; memory += sizes[i]; }
}

typedef struct {
    GPT2Config config;
    ParameterTensors params;
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    float *params_memory;
    size_t num_parameters;
    // gradients of the base: allocated only for full fine-tuning (NULL when the base is frozen)
    ParameterTensors grads;
    float *grads_memory;
    // activations and their gradients, for the current (B,T)
    ActivationTensors acts;
    size_t act_sizes[NUM_ACTIVATION_TENSORS];
    float *acts_memory;
    size_t num_activations;
    ActivationTensors grads_acts;
    float *grads_acts_memory;
    int batch_size, seq_len;
    int *inputs, *targets;  // (B,T) of the last forward
    float *dlosses;         // (B,T) scratch
    float mean_loss;        // over the counted targets of the last forward, -1 if no targets
    // the adapter (NULL: full fine-tuning)
    Adapter *adapter;
    int lowest_trainable;   // position of the lowest trainable module: -1 embeddings, 4l+t adapter slot
} GPT2;

static void gpt2_alloc_params(GPT2 *m) {
    fill_in_parameter_sizes(m->param_sizes, m->config);
    m->num_parameters = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) m->num_parameters += m->param_sizes[i];
    m->params_memory = xcalloc(m->num_parameters, sizeof(float), "parameters");
    point_parameters(&m->params, m->params_memory, m->param_sizes);
}

static const char *validate_config(const GPT2Config *c) {
    if (c->max_seq_len <= 0 || c->max_seq_len > 1 << 20) return "max_seq_len out of range";
    if (c->vocab_size <= 0 || c->vocab_size > 1 << 24) return "vocab_size out of range";
    if (c->padded_vocab_size < c->vocab_size || c->padded_vocab_size > 1 << 24) return "padded_vocab_size < vocab_size";
    if (c->num_layers <= 0 || c->num_layers > 1024) return "num_layers out of range";
    if (c->num_heads <= 0 || c->channels <= 0 || c->channels > 1 << 16) return "num_heads or channels out of range";
    if (c->channels % c->num_heads != 0) return "channels is not a multiple of num_heads";
    return NULL;
}

static uint16_t float_to_bf16(float f) { // round to nearest even
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); // NaN stays NaN
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
static float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Loads an llm.c checkpoint: version 3 (fp32) or 5 (bf16, converted to fp32). 0 or -1 + err.
static int gpt2_load_checkpoint(GPT2 *m, const char *path, char *err, size_t errlen) {
    memset(m, 0, sizeof(*m));
    size_t size;
    uint8_t *buf = read_whole_file(path, &size, err, errlen);
    if (!buf) return -1;
    int32_t h[256];
    if (size < sizeof(h)) { snprintf(err, errlen, "%s: truncated model file (%zu bytes)", path, size); free(buf); return -1; }
    memcpy(h, buf, sizeof(h));
    if (h[0] != 20240326) { snprintf(err, errlen, "%s: bad magic %d in model file (expected 20240326)", path, h[0]); free(buf); return -1; }
    if (h[1] != 3 && h[1] != 5) {
        snprintf(err, errlen, "%s: unsupported model version %d (3 = fp32 and 5 = bf16 are supported)", path, h[1]);
        free(buf); return -1;
    }
    GPT2Config c = {h[2], h[3], h[7], h[4], h[5], h[6]};
    const char *bad = validate_config(&c);
    if (bad) { snprintf(err, errlen, "%s: bad model header: %s", path, bad); free(buf); return -1; }
    m->config = c;
    size_t sizes[NUM_PARAMETER_TENSORS], n = 0;
    fill_in_parameter_sizes(sizes, c);
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) n += sizes[i];
    size_t elt = h[1] == 3 ? 4 : 2;
    if (size != sizeof(h) + n * elt) {
        snprintf(err, errlen, "%s: file has %zu bytes but its header implies %zu (truncated or corrupt)", path, size, sizeof(h) + n * elt);
        free(buf); return -1;
    }
    gpt2_alloc_params(m);
    if (elt == 4) {
        memcpy(m->params_memory, buf + sizeof(h), n * 4);
    } else {
        const uint8_t *p = buf + sizeof(h);
        for (size_t i = 0; i < n; i++) { uint16_t v; memcpy(&v, p + 2 * i, 2); m->params_memory[i] = bf16_to_float(v); }
    }
    free(buf);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(m->params_memory[i])) {
            snprintf(err, errlen, "%s: parameter %zu is not finite", path, i);
            free(m->params_memory); memset(m, 0, sizeof(*m)); return -1;
        }
    }
    return 0;
}

// Loads a Hugging Face GPT-2 folder (config.json + model.safetensors, data/hf_gpt2.h). 0 or -1 + err.
static int gpt2_load_hf(GPT2 *m, const char *dir, char *err, size_t errlen) {
    memset(m, 0, sizeof(*m));
    HFConfig hc;
    float *p;
    if (hf_read_gpt2(dir, &hc, &p, err, errlen)) return -1;
    m->config = (GPT2Config){hc.max_seq_len, hc.vocab_size, hc.padded_vocab_size, hc.num_layers, hc.num_heads, hc.channels};
    const char *bad = validate_config(&m->config);
    if (bad) { snprintf(err, errlen, "%s: %s", dir, bad); free(p); return -1; }
    gpt2_alloc_params(m);
    memcpy(m->params_memory, p, m->num_parameters * sizeof(float));
    free(p);
    return 0;
}

// Writes the model as a Hugging Face GPT-2 folder; the tokenizer's vocab.json + merges.txt copied
// from tokenizer_dir when it has them.
static int gpt2_write_hf(const GPT2Config *c, const float *params, const char *dir, const char *tokenizer_dir, char *err, size_t errlen) {
    HFConfig hc = {c->max_seq_len, c->vocab_size, c->padded_vocab_size, c->num_layers, c->num_heads, c->channels};
    int copied;
    if (hf_write_gpt2(dir, &hc, params, tokenizer_dir, &copied, err, errlen)) return -1;
    printf("wrote %s/ (Hugging Face GPT-2: config.json, model.safetensors%s)\n", dir, copied ? ", vocab.json, merges.txt" : "");
    return 0;
}

// Writes the model as an llm.c version-3 (fp32) checkpoint, atomically.
static int gpt2_write_checkpoint(const GPT2Config *c, const float *params, size_t n, const char *path, char *err, size_t errlen) {
    int32_t h[256] = {0};
    h[0] = 20240326; h[1] = 3; h[2] = c->max_seq_len; h[3] = c->vocab_size;
    h[4] = c->num_layers; h[5] = c->num_heads; h[6] = c->channels; h[7] = c->padded_vocab_size;
    const void *bufs[2] = {h, params};
    size_t sizes[2] = {sizeof(h), n * sizeof(float)};
    return write_chunks_atomic(path, bufs, sizes, 2, err, errlen);
}

// Model descriptors for random init:
//   d12, d24, d36, d48   GPT-2 124M/350M/774M/1558M's shapes, as llm.c (V 50257 -> Vp 50304, T 1024)
//   L=4,C=128,H=4,V=257,T=128[,P=320]   any shape: layers, channels, heads, vocab, context, padded vocab
//                                       (missing keys default to d12's; P defaults to V rounded up to 64)
static int parse_descriptor(const char *s, GPT2Config *c) {
    *c = (GPT2Config){1024, 50257, 50304, 12, 12, 768};
    if (s[0] == 'd' && isdigit((unsigned char)s[1])) {
        int d = atoi(s + 1);
        if (d == 12) { c->num_layers = 12; c->num_heads = 12; c->channels = 768; }
        else if (d == 24) { c->num_layers = 24; c->num_heads = 16; c->channels = 1024; }
        else if (d == 36) { c->num_layers = 36; c->num_heads = 20; c->channels = 1280; }
        else if (d == 48) { c->num_layers = 48; c->num_heads = 25; c->channels = 1600; }
        else return -1;
        return 0;
    }
    if (!strchr(s, '=')) return -1;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    int have_p = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char key;
        int val;
        char extra;
        if (sscanf(tok, " %c = %d %c", &key, &val, &extra) != 2) return -1;
        switch (key) {
            case 'L': c->num_layers = val; break;
            case 'C': c->channels = val; break;
            case 'H': c->num_heads = val; break;
            case 'V': c->vocab_size = val; break;
            case 'T': c->max_seq_len = val; break;
            case 'P': c->padded_vocab_size = val; have_p = 1; break;
            default: return -1;
        }
    }
    if (!have_p) c->padded_vocab_size = c->vocab_size > (1 << 24) ? c->vocab_size : (c->vocab_size + 63) / 64 * 64;
    return validate_config(c) ? -1 : 0;
}

// GPT-2 init as in llm.c / nanoGPT: N(0, 0.02) weights, residual projections N(0, 0.02/sqrt(2L)),
// zero biases, unit layernorms, zero padded rows of wte. Deterministic from the seed.
static void gpt2_init_random(GPT2 *m, GPT2Config c, uint64_t seed) {
    memset(m, 0, sizeof(*m));
    m->config = c;
    gpt2_alloc_params(m);
    uint64_t rng = seed;
    ParameterTensors *p = &m->params;
    float resid_std = 0.02f / sqrtf(2.0f * c.num_layers);
    for (size_t i = 0; i < (size_t)c.vocab_size * c.channels; i++) p->wte[i] = 0.02f * rng_normal(&rng);
    for (size_t i = 0; i < m->param_sizes[1]; i++) p->wpe[i] = 0.02f * rng_normal(&rng);
    for (size_t i = 0; i < m->param_sizes[4]; i++) p->qkvw[i] = 0.02f * rng_normal(&rng);
    for (size_t i = 0; i < m->param_sizes[6]; i++) p->attprojw[i] = resid_std * rng_normal(&rng);
    for (size_t i = 0; i < m->param_sizes[10]; i++) p->fcw[i] = 0.02f * rng_normal(&rng);
    for (size_t i = 0; i < m->param_sizes[12]; i++) p->fcprojw[i] = resid_std * rng_normal(&rng);
    for (size_t i = 0; i < m->param_sizes[2]; i++) { p->ln1w[i] = 1.0f; p->ln2w[i] = 1.0f; }
    for (int i = 0; i < c.channels; i++) p->lnfw[i] = 1.0f;
}

// Base weight matrix of an adapter slot (layer l, target t), (out,in) row-major.
static float *gpt2_slot_weight(void *ctx, int l, int t) {
    GPT2 *m = ctx;
    size_t C = m->config.channels;
    switch (t) {
        case T_QKV: return m->params.qkvw + (size_t)l * 3 * C * C;
        case T_ATTPROJ: return m->params.attprojw + (size_t)l * C * C;
        case T_FC: return m->params.fcw + (size_t)l * 4 * C * C;
        default: return m->params.fcprojw + (size_t)l * 4 * C * C;
    }
}

// Attaches an adapter (NULL: full fine-tuning) and allocates what training needs for (B,T).
// Gradient buffers of the base exist only when nothing is frozen.
static void gpt2_setup_training(GPT2 *m, Adapter *ad, int B, int T) {
    m->adapter = ad;
    if (!ad && !m->grads_memory) {
        m->grads_memory = xcalloc(m->num_parameters, sizeof(float), "gradients");
        point_parameters(&m->grads, m->grads_memory, m->param_sizes);
    }
    m->lowest_trainable = -1;
    if (ad) {
        m->lowest_trainable = 1 << 30;
        for (int s = 0; s < ad->nslots; s++) {
            int pos = 4 * ad->slot_layer[s] + ad->slot_target[s];
            if (pos < m->lowest_trainable) m->lowest_trainable = pos;
        }
        if (adapter_alloc_acts(ad, B * T) != 0) die("out of memory allocating adapter activations");
    }
    if (m->acts_memory && m->batch_size == B && m->seq_len == T) return;
    free(m->acts_memory); free(m->grads_acts_memory); free(m->inputs); free(m->targets); free(m->dlosses);
    m->batch_size = B; m->seq_len = T;
    fill_in_activation_sizes(m->act_sizes, m->config, B, T);
    m->num_activations = 0;
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) m->num_activations += m->act_sizes[i];
    m->acts_memory = xcalloc(m->num_activations, sizeof(float), "activations");
    m->grads_acts_memory = xcalloc(m->num_activations, sizeof(float), "activation gradients");
    point_activations(&m->acts, m->acts_memory, m->act_sizes);
    point_activations(&m->grads_acts, m->grads_acts_memory, m->act_sizes);
    m->inputs = xcalloc((size_t)B * T, sizeof(int), "inputs");
    m->targets = xcalloc((size_t)B * T, sizeof(int), "targets");
    m->dlosses = xcalloc((size_t)B * T, sizeof(float), "dlosses");
}

static void gpt2_free(GPT2 *m) {
    free(m->params_memory); free(m->grads_memory); free(m->acts_memory); free(m->grads_acts_memory);
    free(m->inputs); free(m->targets); free(m->dlosses);
    memset(m, 0, sizeof(*m));
}

// y = x W^T + b (+ the adapter's s·B A drop(x) when slot (l,t) is adapted)
static void linear_forward(GPT2 *m, int l, int t, float *out, const float *inp, const float *W, const float *b,
                           int N, int C, int OC) {
    const float *Wf = W; // with an adapter, maybe W + s B A (see lora/adapter.h: merged execution)
    if (m->adapter) PROF(PC_LORA, Wf = adapter_forward_weight(m->adapter, l, t, W, N));
    PROF(PC_MATMUL, matmul_forward(out, inp, Wf, b, N, C, OC));
    if (m->adapter) PROF(PC_LORA, adapter_forward(m->adapter, l, t, out, inp, N));
}

// The backward of linear_forward. Base weight gradients only when the base trains; the input
// gradient (written, not accumulated) only when something below needs it (dinp NULL otherwise).
static void linear_backward(GPT2 *m, int l, int t, float *dinp, float *dW, float *db, const float *dout,
                            const float *inp, const float *W, int N, int C, int OC) {
    if (dinp) PROF(PC_MATMUL, matmul_backward_input(dinp, dout, m->adapter ? adapter_backward_weight(m->adapter, l, t, W) : W, N, C, OC));
    if (dW || db) PROF(PC_WGRAD, matmul_backward(NULL, dW, db, dout, inp, W, N, C, OC));
    if (m->adapter) PROF(PC_LORA, adapter_backward(m->adapter, l, t, dinp, dout, inp, N));
}

// Forward pass. inputs, targets are (B,T); targets may be NULL (no loss). mask (B,T) may be NULL:
// then every target counts; otherwise only positions with mask=1 (answer tokens) count.
// Sets m->mean_loss to the mean loss over counted targets (-1 when none or no targets).
static void gpt2_forward(GPT2 *m, const int *inputs, const int *targets, const uint8_t *mask, int B, int T) {
    GPT2Config c = m->config;
    int V = c.vocab_size, Vp = c.padded_vocab_size, L = c.num_layers, NH = c.num_heads, C = c.channels;
    if (!m->acts_memory || B != m->batch_size || T != m->seq_len)
        die("internal: gpt2_forward with B=%d T=%d but activations for B=%d T=%d", B, T, m->batch_size, m->seq_len);
    if (T > c.max_seq_len) die("sequence length %d exceeds the model's context %d", T, c.max_seq_len);
    for (int i = 0; i < B * T; i++) {
        if (inputs[i] < 0 || inputs[i] >= V) die("input token id %d is outside the vocab (%d)", inputs[i], V);
        if (targets && (targets[i] < 0 || targets[i] >= V)) die("target token id %d is outside the vocab (%d)", targets[i], V);
    }
    memcpy(m->inputs, inputs, sizeof(int) * B * T);
    if (targets) memcpy(m->targets, targets, sizeof(int) * B * T);
    ParameterTensors p = m->params;
    ActivationTensors a = m->acts;
    int N = B * T;
    PROF(PC_EMBED, encoder_forward(a.encoded, inputs, p.wte, p.wpe, B, T, C));
    for (int l = 0; l < L; l++) {
        float *residual = l == 0 ? a.encoded : a.residual3 + (size_t)(l - 1) * N * C;
        size_t o1 = (size_t)l * N * C, o3 = (size_t)l * N * 3 * C, o4 = (size_t)l * N * 4 * C, ob = (size_t)l * N;
        size_t oa = (size_t)l * B * NH * T * T;
        PROF(PC_LN, FAST_OR_REF(layernorm_forward, a.ln1 + o1, a.ln1_mean + ob, a.ln1_rstd + ob, residual, p.ln1w + l * C, p.ln1b + l * C, N, C));
        linear_forward(m, l, T_QKV, a.qkv + o3, a.ln1 + o1, p.qkvw + (size_t)l * 3 * C * C, p.qkvb + l * 3 * C, N, C, 3 * C);
        PROF(PC_ATT_FWD, FAST_OR_REF(attention_forward, a.atty + o1, a.preatt + oa, a.att + oa, a.qkv + o3, B, T, C, NH));
        linear_forward(m, l, T_ATTPROJ, a.attproj + o1, a.atty + o1, p.attprojw + (size_t)l * C * C, p.attprojb + l * C, N, C, C);
        PROF(PC_RESID, residual_forward(a.residual2 + o1, residual, a.attproj + o1, (size_t)N * C));
        PROF(PC_LN, FAST_OR_REF(layernorm_forward, a.ln2 + o1, a.ln2_mean + ob, a.ln2_rstd + ob, a.residual2 + o1, p.ln2w + l * C, p.ln2b + l * C, N, C));
        linear_forward(m, l, T_FC, a.fch + o4, a.ln2 + o1, p.fcw + (size_t)l * 4 * C * C, p.fcb + l * 4 * C, N, C, 4 * C);
        PROF(PC_GELU, FAST_OR_REF(gelu_forward, a.fch_gelu + o4, a.fch + o4, (size_t)N * 4 * C));
        linear_forward(m, l, T_FCPROJ, a.fcproj + o1, a.fch_gelu + o4, p.fcprojw + (size_t)l * 4 * C * C, p.fcprojb + l * C, N, 4 * C, C);
        PROF(PC_RESID, residual_forward(a.residual3 + o1, a.residual2 + o1, a.fcproj + o1, (size_t)N * C));
    }
    float *residual = a.residual3 + (size_t)(L - 1) * N * C;
    PROF(PC_LN, FAST_OR_REF(layernorm_forward, a.lnf, a.lnf_mean, a.lnf_rstd, residual, p.lnfw, p.lnfb, N, C));
    PROF(PC_LMHEAD, matmul_forward(a.logits, a.lnf, p.wte, NULL, N, C, Vp)); // LM head tied to wte
    m->mean_loss = -1.0f;
    if (!targets) return;
    PROF(PC_CE, FAST_OR_REF(softmax_crossentropy_forward, a.losses, a.probs, a.logits, targets, N, V, Vp));
    double sum = 0;
    long count = 0;
    for (int i = 0; i < N; i++) if (!mask || mask[i]) { sum += a.losses[i]; count++; }
    if (count > 0) m->mean_loss = (float)(sum / count);
}

// dst = src (src NULL: 0), in parallel: one thread's memset or memcpy does not fill the memory bus
static void copy_floats(float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += 16384) {
        size_t k = (n - i < 16384 ? n - i : 16384) * sizeof(float);
        if (src) memcpy(dst + i, src + i, k);
        else memset(dst + i, 0, k);
    }
}
static void zero_floats(float *p, size_t n) { copy_floats(p, NULL, n); }

// The parameter gradients, once per optimizer step (micro-batches accumulate into them).
static void gpt2_zero_grad(GPT2 *m) {
    if (m->grads_memory) zero_floats(m->grads_memory, m->num_parameters);
    if (m->adapter) memset(m->adapter->grads, 0, (m->adapter->nA + m->adapter->nB) * sizeof(float));
}

// The activation gradients that the backward accumulates into (+=), at the start of every backward:
// they belong to one micro-batch. The others are written before they are read: the linears' input
// gradients (matmul_backward_input), the residual stream's (copies, see gpt2_backward), the
// attention's scratch (preatt, att); mean, rstd, probs and losses have none.
static void gpt2_zero_act_grads(GPT2 *m) {
    size_t N = (size_t)m->batch_size * m->seq_len, C = m->config.channels, L = m->config.num_layers;
    ActivationTensors ga = m->grads_acts;
    zero_floats(ga.logits, N * m->config.padded_vocab_size); // softmax_crossentropy_backward
    zero_floats(ga.residual3 + (L - 1) * N * C, N * C);      // lnf's layernorm_backward
    zero_floats(ga.fch, L * N * 4 * C);                      // gelu_backward
    zero_floats(ga.qkv, L * N * 3 * C);                      // attention_backward
}

// Backward pass of the last forward. Each counted target's loss gets weight `scale` (1/count for a
// mean; 1/(count over all micro-batches) under gradient accumulation). Accumulates into the parameter
// gradients (zeroed by gpt2_zero_grad once per step); the activation gradients are its own, zeroed here.
static void gpt2_backward(GPT2 *m, const uint8_t *mask, float scale) {
    GPT2Config c = m->config;
    int B = m->batch_size, T = m->seq_len, N = B * T;
    int V = c.vocab_size, Vp = c.padded_vocab_size, L = c.num_layers, NH = c.num_heads, C = c.channels;
    ParameterTensors p = m->params, g = m->grads;
    int full = m->grads_memory != NULL;
    ActivationTensors a = m->acts, ga = m->grads_acts;
    int lo = m->lowest_trainable; // gradients are needed at and above this position only
    PROF(PC_ZERO, gpt2_zero_act_grads(m));
    for (int i = 0; i < N; i++) m->dlosses[i] = (!mask || mask[i]) ? scale : 0.0f;
    PROF(PC_CE, FAST_OR_REF(softmax_crossentropy_backward, ga.logits, m->dlosses, a.probs, m->targets, N, V, Vp));
    PROF(PC_LMHEAD, matmul_backward_input(ga.lnf, ga.logits, p.wte, N, C, Vp));
    if (full) PROF(PC_WGRAD, matmul_backward(NULL, g.wte, NULL, ga.logits, a.lnf, p.wte, N, C, Vp));
    float *residual = a.residual3 + (size_t)(L - 1) * N * C;
    float *dresidual = ga.residual3 + (size_t)(L - 1) * N * C;
    PROF(PC_LN, FAST_OR_REF(layernorm_backward, dresidual, full ? g.lnfw : NULL, full ? g.lnfb : NULL, ga.lnf, residual, p.lnfw, a.lnf_mean, a.lnf_rstd, N, C));
    for (int l = L - 1; l >= 0 && lo < 4 * l + 4; l--) {
        residual = l == 0 ? a.encoded : a.residual3 + (size_t)(l - 1) * N * C;
        dresidual = l == 0 ? ga.encoded : ga.residual3 + (size_t)(l - 1) * N * C;
        size_t o1 = (size_t)l * N * C, o3 = (size_t)l * N * 3 * C, o4 = (size_t)l * N * 4 * C, ob = (size_t)l * N;
        size_t oa = (size_t)l * B * NH * T * T;
        int p0 = 4 * l; // positions of qkv, attn_proj, fc, fc_proj: p0 .. p0+3
        // fc_proj and the residual around the MLP: residual3 = residual2 + fcproj passes its gradient
        // unchanged to both, so fc_proj's output gradient is residual3's (read in place) and residual2's
        // starts as a copy of it (ln2's backward adds the rest)
        PROF(PC_RESID, copy_floats(ga.residual2 + o1, ga.residual3 + o1, (size_t)N * C));
        linear_backward(m, l, T_FCPROJ, lo < p0 + 3 ? ga.fch_gelu + o4 : NULL, full ? g.fcprojw + (size_t)l * 4 * C * C : NULL,
                        full ? g.fcprojb + l * C : NULL, ga.residual3 + o1, a.fch_gelu + o4, p.fcprojw + (size_t)l * 4 * C * C, N, 4 * C, C);
        if (lo <= p0 + 2) {
            PROF(PC_GELU, FAST_OR_REF(gelu_backward, ga.fch + o4, a.fch + o4, ga.fch_gelu + o4, (size_t)N * 4 * C));
            linear_backward(m, l, T_FC, lo < p0 + 2 ? ga.ln2 + o1 : NULL, full ? g.fcw + (size_t)l * 4 * C * C : NULL,
                            full ? g.fcb + l * 4 * C : NULL, ga.fch + o4, a.ln2 + o1, p.fcw + (size_t)l * 4 * C * C, N, C, 4 * C);
        }
        if (lo < p0 + 2)
            PROF(PC_LN, FAST_OR_REF(layernorm_backward, ga.residual2 + o1, full ? g.ln2w + l * C : NULL, full ? g.ln2b + l * C : NULL,
                                    ga.ln2 + o1, a.residual2 + o1, p.ln2w + l * C, a.ln2_mean + ob, a.ln2_rstd + ob, N, C));
        if (lo > p0 + 1) break; // nothing trainable below the MLP of this layer
        // attn_proj and the residual around attention, likewise: residual2 = residual + attproj
        PROF(PC_RESID, copy_floats(dresidual, ga.residual2 + o1, (size_t)N * C));
        linear_backward(m, l, T_ATTPROJ, lo < p0 + 1 ? ga.atty + o1 : NULL, full ? g.attprojw + (size_t)l * C * C : NULL,
                        full ? g.attprojb + l * C : NULL, ga.residual2 + o1, a.atty + o1, p.attprojw + (size_t)l * C * C, N, C, C);
        if (lo <= p0) {
            PROF(PC_ATT_BWD, FAST_OR_REF(attention_backward, ga.qkv + o3, ga.preatt + oa, ga.att + oa, ga.atty + o1, a.qkv + o3, a.att + oa, B, T, C, NH));
            linear_backward(m, l, T_QKV, lo < p0 ? ga.ln1 + o1 : NULL, full ? g.qkvw + (size_t)l * 3 * C * C : NULL,
                            full ? g.qkvb + l * 3 * C : NULL, ga.qkv + o3, a.ln1 + o1, p.qkvw + (size_t)l * 3 * C * C, N, C, 3 * C);
        }
        if (lo < p0)
            PROF(PC_LN, FAST_OR_REF(layernorm_backward, dresidual, full ? g.ln1w + l * C : NULL, full ? g.ln1b + l * C : NULL,
                                    ga.ln1 + o1, residual, p.ln1w + l * C, a.ln1_mean + ob, a.ln1_rstd + ob, N, C));
    }
    if (full) { PROF(PC_EMBED, encoder_backward(g.wte, g.wpe, ga.encoded, m->inputs, B, T, C)); g_base_weight_grad_calls++; }
}

// ----------------------------------------------------------------------------
// AdamW over groups of trainable values (a whole tensor, a factor, or the kept entries of B)

typedef struct {
    float *p, *g;          // values and gradients
    size_t n;              // number of trainable entries
    const uint32_t *idx;   // NULL: entries 0..n-1; else the trainable positions (LoRI-S's mask)
    int decay;             // weight decay applies (2-D weights only)
} OptGroup;

typedef struct {
    OptGroup groups[64];
    int ngroups;
    size_t total;          // trainable entries: the size of m and v
    float *m, *v;          // first and second moments, one pair per trainable entry
    float beta1, beta2, eps;
    int t;                 // steps taken (for the bias correction)
} AdamW;

static void adamw_add(AdamW *o, float *p, float *g, size_t n, const uint32_t *idx, int decay) {
    if (o->ngroups == 64) die("internal: too many optimizer groups");
    o->groups[o->ngroups++] = (OptGroup){p, g, n, idx, decay};
    o->total += n;
}

static void adamw_alloc(AdamW *o) {
    free(o->m); free(o->v);
    o->m = xcalloc(o->total, sizeof(float), "optimizer m");
    o->v = xcalloc(o->total, sizeof(float), "optimizer v");
    o->beta1 = 0.9f; o->beta2 = 0.999f; o->eps = 1e-8f; o->t = 0;
}

static void adamw_reset_moments(AdamW *o) {
    memset(o->m, 0, o->total * sizeof(float));
    memset(o->v, 0, o->total * sizeof(float));
    o->t = 0;
}

static void adamw_free(AdamW *o) { free(o->m); free(o->v); memset(o, 0, sizeof(*o)); }

// Global L2 norm of the trainable gradients (double accumulation, fixed order).
static float adamw_grad_norm(const AdamW *o) {
    double s = 0;
    for (int k = 0; k < o->ngroups; k++) {
        const OptGroup *gr = &o->groups[k];
        for (size_t i = 0; i < gr->n; i++) { double v = gr->g[gr->idx ? gr->idx[i] : i]; s += v * v; }
    }
    return (float)sqrt(s);
}

// One AdamW step (decoupled weight decay, PyTorch's and llm.c's form):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr (mhat / (sqrt(vhat) + eps) + wd p)
// `gscale` multiplies every gradient first (gradient clipping). Entries not in a group never move:
// that is how LoRI-S keeps masked entries of B exactly 0.
static void adamw_step(AdamW *o, float lr, float wd, float gscale) {
    o->t++;
    float bc1 = 1.0f - powf(o->beta1, (float)o->t), bc2 = 1.0f - powf(o->beta2, (float)o->t);
    size_t base = 0;
    for (int k = 0; k < o->ngroups; k++) {
        const OptGroup *gr = &o->groups[k];
        float decay = gr->decay ? wd : 0.0f;
        float *mm = o->m + base, *vv = o->v + base;
#pragma omp parallel for
        for (size_t i = 0; i < gr->n; i++) {
            size_t j = gr->idx ? gr->idx[i] : i;
            float g = gr->g[j] * gscale;
            float mi = o->beta1 * mm[i] + (1.0f - o->beta1) * g;
            float vi = o->beta2 * vv[i] + (1.0f - o->beta2) * g * g;
            mm[i] = mi; vv[i] = vi;
            float mhat = mi / bc1, vhat = vi / bc2;
            gr->p[j] -= lr * (mhat / (sqrtf(vhat) + o->eps) + decay * gr->p[j]);
        }
        base += gr->n;
    }
}

// Registers what trains: every tensor for full fine-tuning; else the adapter's factors.
static void adamw_setup(AdamW *o, GPT2 *m) {
    memset(o, 0, sizeof(*o));
    if (!m->adapter) {
        float *p = m->params_memory, *g = m->grads_memory;
        for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
            adamw_add(o, p, g, m->param_sizes[i], NULL, param_is_matrix[i]);
            p += m->param_sizes[i]; g += m->param_sizes[i];
        }
    } else {
        Adapter *ad = m->adapter;
        if (adapter_trains_A(ad)) adamw_add(o, ad->params, ad->grads, ad->nA, NULL, 1);
        if (ad->mask) adamw_add(o, ad->params + ad->nA, ad->grads + ad->nA, ad->nkept, ad->kept, 1); // LoRI-S
        else adamw_add(o, ad->params + ad->nA, ad->grads + ad->nA, ad->nB, NULL, 1);
    }
    adamw_alloc(o);
}

// ----------------------------------------------------------------------------
// learning-rate schedules (llm.c's): linear warmup, then constant / linear / cosine decay to
// lr * final_frac at the last step

typedef enum { SCHED_CONSTANT, SCHED_LINEAR, SCHED_COSINE } Schedule;
static const char *schedule_names[] = {"constant", "linear", "cosine"};

static float get_lr(Schedule k, float lr, int step, int warmup, int total, float final_frac) {
    if (step < warmup) return lr * (float)(step + 1) / (float)warmup;
    if (k == SCHED_CONSTANT || total <= warmup) return lr;
    float ratio = (float)(step - warmup) / (float)(total - warmup);
    if (ratio > 1.0f) ratio = 1.0f;
    float lr_min = lr * final_frac;
    if (k == SCHED_LINEAR) return lr - ratio * (lr - lr_min);
    return lr_min + 0.5f * (1.0f + cosf(3.14159265358979f * ratio)) * (lr - lr_min);
}

// ----------------------------------------------------------------------------
// inference: one sequence at a time with a key/value cache, on a given set of parameters
// (the base, or the base with the adapter merged in: merging is exact up to float rounding)

typedef struct {
    float *kv;      // (L, maxT, 2C): keys then values of every position so far
    float *x, *xn, *buf3, *att, *h4, *logits;
    int len;        // positions filled
} InferState;

static void infer_init(InferState *s, const GPT2Config *c) {
    size_t C = c->channels;
    s->kv = xcalloc((size_t)c->num_layers * c->max_seq_len * 2 * C, sizeof(float), "kv cache");
    s->x = xcalloc(C, sizeof(float), "infer"); s->xn = xcalloc(C, sizeof(float), "infer");
    s->buf3 = xcalloc(3 * C, sizeof(float), "infer"); s->att = xcalloc(c->max_seq_len, sizeof(float), "infer");
    s->h4 = xcalloc(4 * C, sizeof(float), "infer"); s->logits = xcalloc(c->padded_vocab_size, sizeof(float), "infer");
    s->len = 0;
}
static void infer_free(InferState *s) {
    free(s->kv); free(s->x); free(s->xn); free(s->buf3); free(s->att); free(s->h4); free(s->logits);
    memset(s, 0, sizeof(*s));
}

// y (OC) = W (OC,C) x (C) + b
static void matvec(float *y, const float *W, const float *x, const float *b, int C, int OC) {
    for (int o = 0; o < OC; o++) {
        const float *w = W + (size_t)o * C;
        float acc = b ? b[o] : 0.0f;
        for (int i = 0; i < C; i++) acc += w[i] * x[i];
        y[o] = acc;
    }
}

// Feeds one token at the next position; computes the logits (over V) when want_logits.
static void infer_step(const GPT2Config *c, const ParameterTensors *p, InferState *s, int token, int want_logits) {
    int C = c->channels, NH = c->num_heads, hs = C / NH, pos = s->len;
    for (int i = 0; i < C; i++) s->x[i] = p->wte[(size_t)token * C + i] + p->wpe[(size_t)pos * C + i];
    for (int l = 0; l < c->num_layers; l++) {
        float *kv = s->kv + (size_t)l * c->max_seq_len * 2 * C;
        layernorm_forward(s->xn, NULL, NULL, s->x, p->ln1w + l * C, p->ln1b + l * C, 1, C);
        matvec(s->buf3, p->qkvw + (size_t)l * 3 * C * C, s->xn, p->qkvb + l * 3 * C, C, 3 * C);
        memcpy(kv + (size_t)pos * 2 * C, s->buf3 + C, sizeof(float) * 2 * C);
        float *y = s->h4; // C floats of attention output
        for (int h = 0; h < NH; h++) {
            const float *q = s->buf3 + h * hs;
            float maxv = -INFINITY, sum = 0, scale = 1.0f / sqrtf((float)hs);
            for (int t2 = 0; t2 <= pos; t2++) {
                const float *k = kv + (size_t)t2 * 2 * C + h * hs;
                float d = 0;
                for (int i = 0; i < hs; i++) d += q[i] * k[i];
                s->att[t2] = d * scale;
                if (s->att[t2] > maxv) maxv = s->att[t2];
            }
            for (int t2 = 0; t2 <= pos; t2++) { s->att[t2] = expf(s->att[t2] - maxv); sum += s->att[t2]; }
            for (int i = 0; i < hs; i++) y[h * hs + i] = 0;
            for (int t2 = 0; t2 <= pos; t2++) {
                const float *v = kv + (size_t)t2 * 2 * C + C + h * hs;
                float w = s->att[t2] / sum;
                for (int i = 0; i < hs; i++) y[h * hs + i] += w * v[i];
            }
        }
        matvec(s->xn, p->attprojw + (size_t)l * C * C, y, p->attprojb + l * C, C, C);
        for (int i = 0; i < C; i++) s->x[i] += s->xn[i];
        layernorm_forward(s->xn, NULL, NULL, s->x, p->ln2w + l * C, p->ln2b + l * C, 1, C);
        matvec(s->h4, p->fcw + (size_t)l * 4 * C * C, s->xn, p->fcb + l * 4 * C, C, 4 * C);
        for (int i = 0; i < 4 * C; i++) { float v = s->h4[i]; s->h4[i] = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v))); }
        matvec(s->xn, p->fcprojw + (size_t)l * 4 * C * C, s->h4, p->fcprojb + l * C, 4 * C, C);
        for (int i = 0; i < C; i++) s->x[i] += s->xn[i];
    }
    s->len++;
    if (!want_logits) return;
    layernorm_forward(s->xn, NULL, NULL, s->x, p->lnfw, p->lnfb, 1, C);
    matvec(s->logits, p->wte, s->xn, NULL, C, c->vocab_size);
}

// Picks the next token: argmax when temperature <= 0, else a sample from softmax(logits / temperature).
static int sample_next(const float *logits, int V, float temperature, uint64_t *rng) {
    int best = 0;
    for (int i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    if (temperature <= 0) return best;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((logits[i] - logits[best]) / temperature);
    double r = rng_uniform(rng) * sum, acc = 0;
    for (int i = 0; i < V; i++) { acc += exp((logits[i] - logits[best]) / temperature); if (acc > r) return i; }
    return V - 1;
}

// Generates up to max_new tokens after the prompt into out; stops after emitting stop1 or stop2
// (-1 = none) or at the context end. Returns the number of tokens generated.
static int gpt2_generate(const GPT2Config *c, const ParameterTensors *p, InferState *s, const int *prompt, int np,
                         int max_new, float temperature, uint64_t *rng, int stop1, int stop2, int *out) {
    s->len = 0;
    if (np <= 0 || np >= c->max_seq_len) return 0;
    for (int i = 0; i < np; i++) infer_step(c, p, s, prompt[i], i == np - 1);
    int n = 0;
    while (n < max_new) {
        int tok = sample_next(s->logits, c->vocab_size, temperature, rng);
        out[n++] = tok;
        if (tok == stop1 || tok == stop2 || s->len >= c->max_seq_len) break;
        infer_step(c, p, s, tok, 1);
    }
    return n;
}

// The parameters the model computes with: the base itself, or a copy with the adapter merged in.
static const float *gpt2_effective_params(GPT2 *m, float **scratch) {
    if (!m->adapter) return m->params_memory;
    if (!*scratch) *scratch = xcalloc(m->num_parameters, sizeof(float), "merged parameters");
    memcpy(*scratch, m->params_memory, m->num_parameters * sizeof(float));
    GPT2 view = *m;
    point_parameters(&view.params, *scratch, m->param_sizes);
    for (int s = 0; s < m->adapter->nslots; s++)
        adapter_fold(m->adapter, s, gpt2_slot_weight(&view, m->adapter->slot_layer[s], m->adapter->slot_target[s]), 1.0f);
    return *scratch;
}

// ----------------------------------------------------------------------------
// training configuration and the command line

typedef struct {
    char model[1024];        // -e: llm.c checkpoint file, Hugging Face GPT-2 folder, or a descriptor (d12, L=4,C=128,...)
    char train_pattern[1024];// -i
    char val_pattern[1024];  // -j
    char output_dir[1024];   // -o
    char tokenizer[1024];
    int B, T, total_batch, max_steps;
    float lr;
    int warmup;
    float final_frac;
    char schedule[32];
    float weight_decay;
    int val_every, val_batches, sample_every, gen_len, ckpt_every, resume;
    float grad_clip;
    int seed, threads, shuffle;
    float temperature;
    // adapters
    char adapter[16];
    int rank;
    float alpha;
    int rslora;
    float dropout;
    char targets[128];
    char init[16];
    int adapter_seed;
    char lori_init[16];
    float sparsity;
    char mask[1024];         // model|layer|matrix|random|FILE
    char lori_stage[8];      // d|s|ds
    float lori_lr_d, lori_lr_s;
    int lori_steps_s;
    int lori_new_a;
    int plora_every;
    float plora_momentum;
    char plora_schedule[16]; // stage|global
    char merge_out[1024];
    char adapter_in[1024];
    char dump_logits[1024];
    int ref_kernels;
    char nan_policy[16];     // stop|skip
    int print_every;         // progress line every N steps
    char eval_em[2048];      // comma-separated test shards (with .lossmask) scored by exact match
    int eval_examples;       // examples per exact-match shard (0: all)
    int eval_show;           // examples printed per exact-match shard
    int stop_at;             // stop after this global step as if interrupted (saves a resumable state)
    char export_hf[1024];    // write the model, adapter folded in, as a Hugging Face GPT-2 folder
    char export_peft[1024];  // write the adapter as a Hugging Face PEFT LoRA folder
    char import_peft[1024];  // start from a PEFT LoRA folder (GPT-2 keys)
} TrainConfig;

// What a run measured, for callers that orchestrate runs (the embedded default, ./compare).
typedef struct {
    float first_loss, final_train_loss, final_val_loss;
    double seconds, tok_per_s;
    size_t total_params, trainable, lora_equiv;
    long adapter_bytes;      // size of DIR/adapter.bin (0: none)
    long lora_file_bytes;    // what an equal-rank dense LoRA file takes
    int steps;
    int em_n, em_correct;    // exact match on the first --eval-em shard
} TrainResult;

static void config_defaults(TrainConfig *c) {
    memset(c, 0, sizeof(*c));
    c->B = 4; c->T = 64; c->total_batch = -1; c->max_steps = -1;
    c->lr = 3e-4f; c->warmup = 0; c->final_frac = 1.0f; strcpy(c->schedule, "cosine");
    c->weight_decay = 0.0f; c->val_every = 20; c->val_batches = 20; c->sample_every = 20; c->gen_len = 64;
    c->ckpt_every = 0; c->resume = 0; c->grad_clip = 1.0f; c->seed = 1337; c->threads = 0; c->shuffle = 1;
    c->temperature = 1.0f;
    snprintf(c->adapter, sizeof(c->adapter), "%s", DEFAULT_ADAPTER);
    c->rank = 16; c->alpha = 32.0f; c->dropout = 0.0f; strcpy(c->targets, "qkv,attn_proj,fc,fc_proj");
    strcpy(c->init, "kaiming"); strcpy(c->lori_init, "kaiming"); c->sparsity = 0.9f; strcpy(c->mask, "model");
    strcpy(c->lori_stage, "ds"); c->lori_lr_d = -1; c->lori_lr_s = -1; c->lori_steps_s = -1;
    c->plora_every = 100; c->plora_momentum = 0.0f; strcpy(c->plora_schedule, "global");
    strcpy(c->nan_policy, "stop");
    c->print_every = 1;
    c->eval_examples = 0;
    c->eval_show = 3;
}

typedef enum { OPT_INT, OPT_FLOAT, OPT_STR, OPT_FLAG } OptType;
typedef struct {
    char shortc;          // llm.c's short flag, or 0
    const char *name;     // long flag (without --)
    OptType type;
    size_t offset, size;  // field in TrainConfig
    const char *help;
} OptSpec;

#define OPT(s, n, t, f, h) {s, n, t, offsetof(TrainConfig, f), sizeof(((TrainConfig *)0)->f), h}
static const OptSpec options[] = {
    OPT('e', "model", OPT_STR, model, "llm.c checkpoint (v3 fp32 or v5 bf16), a Hugging Face GPT-2 folder (config.json + model.safetensors), or a descriptor: d12|d24|d36|d48 or L=4,C=128,H=4,V=257,T=128[,P=..]"),
    OPT('i', "train", OPT_STR, train_pattern, "training shards: file or glob pattern (llm.c .bin; X.lossmask beside X.bin masks the loss)"),
    OPT('j', "val", OPT_STR, val_pattern, "validation shards: file or glob pattern"),
    OPT('o', "output", OPT_STR, output_dir, "output directory: train.csv, checkpoints, adapter.bin (empty: none)"),
    OPT(0, "tokenizer", OPT_STR, tokenizer, "llm.c tokenizer file for decoding samples (default: tokenizer.bin beside the train shards)"),
    OPT('b', "batch", OPT_INT, B, "micro-batch size B"),
    OPT('t', "seq-len", OPT_INT, T, "sequence length T"),
    OPT('d', "total-batch", OPT_INT, total_batch, "total batch in tokens, a multiple of B*T (gradient accumulation); -1: B*T"),
    OPT('x', "max-steps", OPT_INT, max_steps, "training steps (per LoRI stage); -1: one epoch of the training data"),
    OPT('l', "lr", OPT_FLOAT, lr, "learning rate (AdamW, beta1 0.9, beta2 0.999, eps 1e-8)"),
    OPT('u', "warmup", OPT_INT, warmup, "linear warmup steps"),
    OPT('q', "final-lr-frac", OPT_FLOAT, final_frac, "final learning rate as a fraction of -l (linear/cosine)"),
    OPT('k', "schedule", OPT_STR, schedule, "learning-rate schedule: constant|linear|cosine"),
    OPT('c', "weight-decay", OPT_FLOAT, weight_decay, "AdamW weight decay (2-D weights only)"),
    OPT('v', "val-every", OPT_INT, val_every, "validation loss every N steps (0: only at the end)"),
    OPT('m', "val-batches", OPT_INT, val_batches, "validation batches per evaluation"),
    OPT('s', "sample-every", OPT_INT, sample_every, "print a sample every N steps (0: never)"),
    OPT('g', "gen-len", OPT_INT, gen_len, "sample length in tokens"),
    OPT('n', "ckpt-every", OPT_INT, ckpt_every, "checkpoint (resumable state) every N steps (0: only at the end)"),
    OPT('y', "resume", OPT_INT, resume, "1: resume from the state in the output directory"),
    OPT(0, "grad-clip", OPT_FLOAT, grad_clip, "clip the global gradient norm to this (0: off)"),
    OPT(0, "seed", OPT_INT, seed, "seed for random init, data order, adapters, dropout, sampling"),
    OPT(0, "threads", OPT_INT, threads, "OpenMP threads (0: all cores)"),
    OPT(0, "shuffle", OPT_INT, shuffle, "1: shuffle training shards and rows per epoch (seeded); 0: in order"),
    OPT(0, "temperature", OPT_FLOAT, temperature, "sampling temperature (0: greedy)"),
    OPT(0, "adapter", OPT_STR, adapter, "none (full fine-tuning) | lora | lori | plora"),
    OPT(0, "rank", OPT_INT, rank, "adapter rank r"),
    OPT(0, "alpha", OPT_FLOAT, alpha, "adapter alpha: scale s = alpha / r"),
    OPT(0, "rslora", OPT_FLAG, rslora, "rsLoRA scale s = alpha / sqrt(r)"),
    OPT(0, "dropout", OPT_FLOAT, dropout, "dropout on the adapter's input"),
    OPT(0, "targets", OPT_STR, targets, "adapted linears: any of qkv,attn_proj,fc,fc_proj (or all)"),
    OPT(0, "init", OPT_STR, init, "LoRA/PLoRA A init: kaiming (U(+-1/sqrt(in))) | gaussian (N(0, 1/r))"),
    OPT(0, "adapter-seed", OPT_INT, adapter_seed, "seed of A (0: derived from --seed)"),
    OPT(0, "lori-init", OPT_STR, lori_init, "LoRI's frozen A: kaiming | gaussian"),
    OPT(0, "sparsity", OPT_FLOAT, sparsity, "LoRI-S: fraction of B masked out, in [0,1)"),
    OPT(0, "mask", OPT_STR, mask, "LoRI-S mask: model | layer | matrix (top-k |B| of LoRI-D) | random (not the paper's) | a mask file"),
    OPT(0, "lori-stage", OPT_STR, lori_stage, "d: LoRI-D only; s: LoRI-S only (needs a mask); ds: LoRI-D -> mask -> LoRI-S"),
    OPT(0, "lori-lr-d", OPT_FLOAT, lori_lr_d, "LoRI-D learning rate (-1: -l)"),
    OPT(0, "lori-lr-s", OPT_FLOAT, lori_lr_s, "LoRI-S learning rate (-1: 10 x -l, as the official scripts)"),
    OPT(0, "lori-steps-s", OPT_INT, lori_steps_s, "LoRI-S steps in the ds pipeline (-1: same as -x)"),
    OPT(0, "lori-new-a", OPT_FLAG, lori_new_a, "LoRI-S draws a new A (the official code's accident) instead of reusing LoRI-D's seed"),
    OPT(0, "plora-every", OPT_INT, plora_every, "PLoRA: steps per stage (unload into the base after each)"),
    OPT(0, "plora-momentum", OPT_FLOAT, plora_momentum, "PLoRA: keep m of s*B*A in the adapter at an unload (0: plain unload + re-init)"),
    OPT(0, "plora-schedule", OPT_STR, plora_schedule, "PLoRA learning-rate schedule: global (over all steps) | stage (restarts each stage)"),
    OPT(0, "merge-out", OPT_STR, merge_out, "write the base with the adapter folded in as an llm.c checkpoint"),
    OPT(0, "export-hf", OPT_STR, export_hf, "write the model (the adapter folded in, as --merge-out) as a Hugging Face GPT-2 folder (config.json, model.safetensors; vocab.json + merges.txt from -e DIR or the -i shards' folder when there)"),
    OPT(0, "adapter-in", OPT_STR, adapter_in, "load an adapter (our format) to evaluate, sample, merge or continue training"),
    OPT(0, "export-peft", OPT_STR, export_peft, "write the final adapter as a Hugging Face PEFT LoRA folder (adapter_config.json + adapter_model.safetensors)"),
    OPT(0, "import-peft", OPT_STR, import_peft, "start from a PEFT LoRA adapter folder for GPT-2 (to evaluate, merge or continue training as LoRA/PLoRA)"),
    OPT(0, "dump-logits", OPT_STR, dump_logits, "write the first validation row's tokens (FILE.tokens, int32) and logits (FILE, float32 T x V)"),
    OPT(0, "ref-kernels", OPT_FLAG, ref_kernels, "use the plain reference matrix product instead of the fast one"),
    OPT(0, "print-every", OPT_INT, print_every, "print the progress line every N steps"),
    OPT(0, "eval-em", OPT_STR, eval_em, "after training: exact-match score (greedy) on these test shards with loss masks, comma-separated"),
    OPT(0, "eval-examples", OPT_INT, eval_examples, "examples per --eval-em shard (0: all)"),
    OPT(0, "eval-show", OPT_INT, eval_show, "examples printed per --eval-em shard"),
    OPT(0, "stop-at", OPT_INT, stop_at, "stop after this step, saving a resumable state in -o (0: never); resume with -y 1"),
    OPT(0, "nan-policy", OPT_STR, nan_policy, "non-finite loss or gradient: stop (keep the last checkpoint) | skip (skip the update)"),
};
#define NUM_OPTIONS (int)(sizeof(options) / sizeof(options[0]))

// Every flag of the table with its default (the GPU trainers' usage lists them too).
static void print_options(void) {
    TrainConfig d;
    config_defaults(&d);
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
}

static void print_usage(const char *prog) {
    printf("usage: %s [options]\n", prog);
    printf("GPT-2 training on the CPU with full fine-tuning, LoRA, LoRI or PeriodicLoRA (default adapter: %s)\n\n", DEFAULT_ADAPTER);
    print_options();
    printf("  -h, --help               print this help\n");
}

// Parses argv into c (after defaults). Returns 0; 1 if help was printed; -1 on a bad flag (message printed).
static int parse_args(TrainConfig *c, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) { print_usage(argv[0]); return 1; }
        const OptSpec *o = NULL;
        const char *val = NULL;
        if (arg[0] == '-' && arg[1] != '-' && arg[1] && !arg[2]) {
            for (int k = 0; k < NUM_OPTIONS; k++) if (options[k].shortc == arg[1]) o = &options[k];
        } else if (arg[0] == '-' && arg[1] == '-') {
            const char *name = arg + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            for (int k = 0; k < NUM_OPTIONS; k++)
                if (strlen(options[k].name) == len && strncmp(options[k].name, name, len) == 0) o = &options[k];
            if (eq) val = eq + 1;
        }
        if (!o) { fprintf(stderr, "error: unknown flag '%s' (see -h)\n", arg); return -1; }
        char *field = (char *)c + o->offset;
        if (o->type == OPT_FLAG) {
            if (val) { fprintf(stderr, "error: flag --%s takes no value\n", o->name); return -1; }
            *(int *)field = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) { fprintf(stderr, "error: flag '%s' needs a value\n", arg); return -1; }
            val = argv[++i];
        }
        char *end = NULL;
        errno = 0;
        if (o->type == OPT_INT) {
            long v = strtol(val, &end, 10);
            if (errno || end == val || *end || v < -2147483647L || v > 2147483647L) {
                fprintf(stderr, "error: flag '%s' expects an integer, got '%s'\n", arg, val); return -1;
            }
            *(int *)field = (int)v;
        } else if (o->type == OPT_FLOAT) {
            float v = strtof(val, &end);
            if (errno || end == val || *end || !isfinite(v)) {
                fprintf(stderr, "error: flag '%s' expects a finite number, got '%s'\n", arg, val); return -1;
            }
            *(float *)field = v;
        } else {
            if (strlen(val) >= o->size) { fprintf(stderr, "error: value of '%s' is too long\n", arg); return -1; }
            strcpy(field, val);
        }
    }
    return 0;
}

static int name_index(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++) if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

// Checks every value; prints one message naming the flag. 0 or -1.
static int validate_args(const TrainConfig *c) {
#define BAD(...) do { fprintf(stderr, "error: " __VA_ARGS__); fputc('\n', stderr); return -1; } while (0)
    if (c->B <= 0) BAD("-b (micro-batch) must be > 0, got %d", c->B);
    if (c->T <= 0) BAD("-t (sequence length) must be > 0, got %d", c->T);
    if ((long long)c->B * c->T > 2147483647LL) BAD("-b %d x -t %d = %lld tokens per micro-batch: too many (at most 2147483647)", c->B, c->T, (long long)c->B * c->T);
    if (c->total_batch != -1 && (c->total_batch <= 0 || c->total_batch % (c->B * c->T) != 0))
        BAD("-d (total batch) must be -1 or a positive multiple of B*T = %d, got %d", c->B * c->T, c->total_batch);
    if (c->max_steps < -1) BAD("-x (max steps) must be >= -1, got %d", c->max_steps);
    if (!(c->lr >= 0)) BAD("-l (learning rate) must be >= 0");
    if (c->warmup < 0) BAD("-u (warmup) must be >= 0");
    if (!(c->final_frac >= 0 && c->final_frac <= 1)) BAD("-q (final LR fraction) must be in [0,1]");
    if (name_index(c->schedule, schedule_names, 3) < 0) BAD("-k: unknown schedule '%s' (constant|linear|cosine)", c->schedule);
    if (!(c->weight_decay >= 0)) BAD("-c (weight decay) must be >= 0");
    if (c->val_every < 0 || c->val_batches < 0 || c->sample_every < 0 || c->gen_len < 0 || c->ckpt_every < 0)
        BAD("-v, -m, -s, -g, -n must be >= 0");
    if (c->resume != 0 && c->resume != 1) BAD("-y must be 0 or 1");
    if (c->resume && !c->output_dir[0]) BAD("-y 1 needs -o DIR (the state is read from DIR/state.bin)");
    if (!(c->grad_clip >= 0)) BAD("--grad-clip must be >= 0");
    if (c->threads < 0) BAD("--threads must be >= 0");
    if (name_index(c->adapter, adapter_kind_names, 4) < 0) BAD("--adapter: unknown '%s' (none|lora|lori|plora)", c->adapter);
    if (c->rank <= 0) BAD("--rank must be > 0, got %d", c->rank);
    if (!(c->alpha > 0)) BAD("--alpha must be > 0");
    if (!(c->dropout >= 0 && c->dropout < 1)) BAD("--dropout must be in [0,1), got %g", c->dropout);
    if (parse_targets(c->targets) <= 0) BAD("--targets: '%s' is not a list of qkv,attn_proj,fc,fc_proj", c->targets);
    if (strcmp(c->init, "kaiming") && strcmp(c->init, "gaussian")) BAD("--init must be kaiming or gaussian");
    if (strcmp(c->lori_init, "kaiming") && strcmp(c->lori_init, "gaussian")) BAD("--lori-init must be kaiming or gaussian");
    if (!(c->sparsity >= 0 && c->sparsity < 1)) BAD("--sparsity must be in [0,1), got %g", c->sparsity);
    if (strcmp(c->lori_stage, "d") && strcmp(c->lori_stage, "s") && strcmp(c->lori_stage, "ds")) BAD("--lori-stage must be d, s or ds");
    if (c->plora_every <= 0) BAD("--plora-every must be > 0");
    if (!(c->plora_momentum >= 0 && c->plora_momentum < 1)) BAD("--plora-momentum must be in [0,1)");
    if (strcmp(c->plora_schedule, "global") && strcmp(c->plora_schedule, "stage")) BAD("--plora-schedule must be global or stage");
    if (strcmp(c->nan_policy, "stop") && strcmp(c->nan_policy, "skip")) BAD("--nan-policy must be stop or skip");
    if (c->temperature < 0) BAD("--temperature must be >= 0");
    if (c->print_every <= 0) BAD("--print-every must be > 0");
    if (c->stop_at < 0) BAD("--stop-at must be >= 0");
    if (c->import_peft[0] && c->adapter_in[0]) BAD("--import-peft and --adapter-in are exclusive");
    if (c->stop_at > 0 && !c->output_dir[0]) BAD("--stop-at needs -o DIR to save the state in");
    if (c->eval_examples < 0 || c->eval_show < 0) BAD("--eval-examples and --eval-show must be >= 0");
    return 0;
#undef BAD
}

// ----------------------------------------------------------------------------
// resumable training state: DIR/state.bin (our format)
//   header 256 int32: [0]=20241121 [1]=1 [2]=adapter kind [3]=next step [4]=LoRI phase (0 D, 1 S)
//   [5]=PLoRA stage [6]=base params follow [7]=mask follows [8]=optimizer t; uint64 at int pairs
//   [16,17] data epoch, [18,19] shard, [20,21] row, [22,23] optimizer entries, [24,25] dropout rng,
//   [26,27] sample rng, [28,29] adapter params
//   body: base params (float, if [6]), adapter params (float, nA+nB), mask (nB bytes, if [7]), m, v

typedef struct {
    int step, phase;
    int64_t epoch, shard, row;
    uint64_t sample_rng;
} TrainPos;

static void put_u64(int32_t *h, int at, uint64_t v) { memcpy(h + at, &v, 8); }
static uint64_t get_u64(const int32_t *h, int at) { uint64_t v; memcpy(&v, h + at, 8); return v; }

static int save_state(const char *path, GPT2 *m, AdamW *opt, const TrainPos *pos, char *err, size_t errlen) {
    Adapter *ad = m->adapter;
    int32_t h[256] = {0};
    h[0] = 20241121; h[1] = 1; h[2] = ad ? (int)ad->cfg.kind : 0; h[3] = pos->step; h[4] = pos->phase;
    h[5] = ad ? ad->stage : 0;
    h[6] = !ad || ad->cfg.kind == ADAPTER_PLORA; // the base changes only in full FT and PLoRA
    h[7] = ad && ad->mask;
    h[8] = opt->t;
    put_u64(h, 16, (uint64_t)pos->epoch); put_u64(h, 18, (uint64_t)pos->shard); put_u64(h, 20, (uint64_t)pos->row);
    put_u64(h, 22, opt->total); put_u64(h, 24, ad ? ad->drop_rng : 0); put_u64(h, 26, pos->sample_rng);
    put_u64(h, 28, ad ? ad->nA + ad->nB : 0);
    const void *bufs[6] = {h, m->params_memory, ad ? ad->params : NULL, ad ? ad->mask : NULL, opt->m, opt->v};
    size_t sizes[6] = {sizeof(h), h[6] ? m->num_parameters * 4 : 0, ad ? (ad->nA + ad->nB) * 4 : 0,
                       h[7] ? ad->nB : 0, opt->total * 4, opt->total * 4};
    return write_chunks_atomic(path, bufs, sizes, 6, err, errlen);
}

// Restores what save_state wrote. The optimizer is set up again afterwards by the caller when the
// mask changes its layout, so the mask is restored first: call with opt == NULL to restore the
// model/adapter/mask/position only, then with opt to fill the moments.
static int load_state(const char *path, GPT2 *m, AdamW *opt, TrainPos *pos, char *err, size_t errlen) {
    size_t size;
    uint8_t *buf = read_whole_file(path, &size, err, errlen);
    if (!buf) return -1;
    int32_t h[256];
    Adapter *ad = m->adapter;
    if (size < sizeof(h)) { snprintf(err, errlen, "%s: truncated state file", path); free(buf); return -1; }
    memcpy(h, buf, sizeof(h));
    if (h[0] != 20241121 || h[1] != 1) { snprintf(err, errlen, "%s: not a training state file (magic/version)", path); free(buf); return -1; }
    if (h[2] != (ad ? (int)ad->cfg.kind : 0)) {
        snprintf(err, errlen, "%s: saved with --adapter %s, resuming with --adapter %s", path,
                 adapter_kind_names[h[2] >= 0 && h[2] < 4 ? h[2] : 0], ad ? adapter_kind_names[ad->cfg.kind] : "none");
        free(buf); return -1;
    }
    size_t nad = get_u64(h, 28), ntot = get_u64(h, 22);
    if (nad != (ad ? ad->nA + ad->nB : 0)) { snprintf(err, errlen, "%s: adapter shape differs from the command line's (--rank/--targets)", path); free(buf); return -1; }
    if (h[3] < 0 || h[4] < 0 || h[4] > 1 || h[5] < 0 || h[8] < 0 || (h[6] != 0 && h[6] != 1) || (h[7] != 0 && h[7] != 1) ||
        (int64_t)get_u64(h, 16) < 0 || (int64_t)get_u64(h, 18) < 0 || (int64_t)get_u64(h, 20) < 0 || ntot > size / 8) {
        snprintf(err, errlen, "%s: corrupt header (step, phase, stage, flags, data position or optimizer size out of range)", path);
        free(buf); return -1;
    }
    size_t expect = sizeof(h) + (h[6] ? m->num_parameters * 4 : 0) + nad * 4 + (h[7] ? (ad ? ad->nB : 0) : 0) + ntot * 8;
    if (size != expect) { snprintf(err, errlen, "%s: %zu bytes, expected %zu (truncated, or a different model)", path, size, expect); free(buf); return -1; }
    const uint8_t *p = buf + sizeof(h);
    if (h[7] && ad) {
        const uint8_t *mk = p + (h[6] ? m->num_parameters * 4 : 0) + nad * 4;
        for (size_t i = 0; i < ad->nB; i++)
            if (mk[i] > 1) { snprintf(err, errlen, "%s: mask entry %zu is %u, not 0 or 1", path, i, mk[i]); free(buf); return -1; }
    }
    if (h[6]) { memcpy(m->params_memory, p, m->num_parameters * 4); p += m->num_parameters * 4; }
    if (ad) {
        memcpy(ad->params, p, nad * 4); p += nad * 4;
        // the mask only on the first call: adapter_set_mask frees ad->kept, which adamw_setup has
        // since registered as the optimizer's index list for B
        if (h[7]) { if (!opt) adapter_set_mask(ad, p, 0); p += ad->nB; }
        ad->stage = h[5];
        ad->drop_rng = get_u64(h, 24);
    }
    pos->step = h[3]; pos->phase = h[4];
    pos->epoch = (int64_t)get_u64(h, 16); pos->shard = (int64_t)get_u64(h, 18); pos->row = (int64_t)get_u64(h, 20);
    pos->sample_rng = get_u64(h, 26);
    if (opt) {
        if (opt->total != ntot) { snprintf(err, errlen, "%s: the file has %zu optimizer entries, this run has %zu", path, ntot, opt->total); free(buf); return -1; }
        memcpy(opt->m, p, ntot * 4); p += ntot * 4;
        memcpy(opt->v, p, ntot * 4);
        opt->t = h[8];
    }
    free(buf);
    return 0;
}

// ----------------------------------------------------------------------------
// evaluation and sampling

static void print_sample(GPT2 *m, const Tokenizer *tok, int gen_len, float temperature, uint64_t *rng, float **scratch) {
    GPT2Config c = m->config;
    ParameterTensors p;
    point_parameters(&p, (float *)gpt2_effective_params(m, scratch), m->param_sizes);
    InferState st;
    infer_init(&st, &c);
    int prompt = tok->table ? tok->eot : c.vocab_size - 1;
    int *out = xcalloc((size_t)gen_len + 1, sizeof(int), "sample");
    int n = gpt2_generate(&c, &p, &st, &prompt, 1, gen_len < c.max_seq_len - 1 ? gen_len : c.max_seq_len - 1,
                          temperature, rng, -1, -1, out);
    printf("generating:\n---\n");
    for (int i = 0; i < n; i++) {
        if (tok->table) tokenizer_print(tok, out[i], stdout);
        else printf("%d ", out[i]);
    }
    printf("\n---\n");
    free(out);
    infer_free(&st);
}

// Exact match under greedy decoding on an instruction shard (with its .lossmask): each document
// EOT + prompt + answer is cut at the mask; the model continues EOT + prompt until '\n' or EOT,
// and data/tasks.h's scorer compares the result with the answer. max_examples 0: all; `show`
// examples are printed. Runs on the effective parameters (adapter merged), examples in parallel.
typedef struct { int n, correct; } EMResult;

static EMResult eval_exact_match(GPT2 *m, const char *path, int max_examples, int show, float **scratch) {
    EMResult r = {0, 0};
    char err[512];
    Shard sh;
    if (shard_load(&sh, path, m->config.vocab_size, err, sizeof(err)) != 0) die("--eval-em: %s", err);
    if (!sh.mask) die("--eval-em: %s has no .lossmask beside it: cannot tell prompts from answers", path);
    long n = tasks_extract_examples(sh.tokens, sh.mask, sh.ntok, NULL, 0);
    if (n < 0) die("--eval-em: %s: malformed instruction shard (documents must be EOT + prompt + masked answer)", path);
    tasks_example *ex = xcalloc((size_t)n, sizeof(tasks_example), "examples");
    tasks_extract_examples(sh.tokens, sh.mask, sh.ntok, ex, n);
    if (max_examples > 0 && n > max_examples) n = max_examples;
    GPT2Config c = m->config;
    ParameterTensors p;
    point_parameters(&p, (float *)gpt2_effective_params(m, scratch), m->param_sizes);
    int eot = TASKS_EOT < c.vocab_size ? TASKS_EOT : c.vocab_size - 1;
    int *ok = xcalloc((size_t)n, sizeof(int), "scores");
    int *gen = xcalloc((size_t)n * TASKS_MAX_ANSWER, sizeof(int), "generations");
    int *ngen = xcalloc((size_t)n, sizeof(int), "generations");
#pragma omp parallel
    {
        InferState st;
        infer_init(&st, &c);
        int ctx[TASKS_MAX_PROMPT + 2 + 1024];
#pragma omp for schedule(dynamic, 4)
        for (long i = 0; i < n; i++) {
            int np = 0;
            ctx[np++] = eot;
            for (int k = 0; k < ex[i].prompt_len && np < (int)(sizeof(ctx) / sizeof(ctx[0])); k++) ctx[np++] = sh.tokens[ex[i].prompt + k];
            int ans[TASKS_MAX_ANSWER + 1024];
            int na = ex[i].answer_len < (int)(sizeof(ans) / sizeof(ans[0])) ? ex[i].answer_len : (int)(sizeof(ans) / sizeof(ans[0]));
            for (int k = 0; k < na; k++) ans[k] = sh.tokens[ex[i].answer + k];
            int room = c.max_seq_len - np;
            int maxn = room < TASKS_MAX_ANSWER ? room : TASKS_MAX_ANSWER;
            uint64_t rng = 0;
            ngen[i] = maxn > 0 ? gpt2_generate(&c, &p, &st, ctx, np, maxn, 0.0f, &rng, '\n', eot, gen + i * TASKS_MAX_ANSWER) : 0;
            ok[i] = tasks_exact_match(gen + i * TASKS_MAX_ANSWER, ngen[i], ans, na);
        }
        infer_free(&st);
    }
    for (long i = 0; i < n; i++) {
        r.n++;
        r.correct += ok[i];
        if (i < show) {
            printf("  [%s] ", ok[i] ? "ok" : "xx");
            for (int k = 0; k < ex[i].prompt_len; k++) putchar(sh.tokens[ex[i].prompt + k]);
            printf(" -> ");
            for (int k = 0; k < ngen[i]; k++) {
                int t = gen[i * TASKS_MAX_ANSWER + k];
                if (t == '\n') printf("\\n"); else if (t == eot) printf("<eot>"); else if (t < 256 && t >= 32) putchar(t); else printf("<%d>", t);
            }
            printf("\n");
        }
    }
    free(ok); free(gen); free(ngen); free(ex);
    shard_free(&sh);
    return r;
}

static void format_eta(double s, char *buf, size_t n) {
    if (s < 0 || !isfinite(s)) { snprintf(buf, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

static volatile sig_atomic_t g_stop_requested = 0;
static void on_signal(int sig) { (void)sig; g_stop_requested = 1; }

static void join_path(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

// ----------------------------------------------------------------------------
// training: one loop (run_training_on) for both trainers; the arithmetic is a Backend's, this
// file's CPU model (cpu_backend) or the GPU (cuda/host.c's GPUBackend)

typedef struct {
    int is_s;        // LoRI-S phase (trains B ⊙ M)
    int steps;
    float lr;
} Phase;

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
    void (*setup)(Backend *be, Adapter *ad, const TrainConfig *cfg); // attach ad, allocate for (B,T)
    void (*opt_setup)(Backend *be);          // opt's groups from what trains now, moments zero
    void (*load)(Backend *be);               // host -> backend: what trains, the mask, dropout stream, opt
    void (*sync)(Backend *be, int with_opt); // backend -> host: what trains, dropout stream (and opt)
    void (*set_training)(Backend *be, int on); // the adapter's dropout on/off
    // one (B,T) batch: the mean loss over its counted targets (mask); targets NULL: logits only
    float (*forward)(Backend *be, const int *inputs, const int *targets, const uint8_t *mask);
    // the same, then its backward: gradients accumulate, `scale` the weight of a counted target
    float (*forward_backward)(Backend *be, const int *inputs, const int *targets, const uint8_t *mask, float scale);
    void (*get_logits)(Backend *be, float *out); // (T, Vp): the first row's logits of the last forward
    void (*begin_step)(Backend *be, int timed);  // zero the gradients (timed: the step counts in a profile)
    float (*grad_norm)(Backend *be);
    void (*adamw_step)(Backend *be, float lr, float weight_decay, float gscale);
    void (*plora_unload)(Backend *be, float m);  // lora/adapter.h's plora_unload; m = 0: moments reset
    void (*end_step)(Backend *be);               // the step's work is done (the GPU's synchronised)
    void (*report_setup)(Backend *be);           // after the start-up report
    void (*report_end)(Backend *be, int timed_steps, double seconds); // after the average step
    void (*free)(Backend *be);
};

// --- the CPU backend: this file's model, computing on the host's copies

static int g_prof_wanted = 0; // CPU_PROFILE set

static void cpu_setup(Backend *be, Adapter *ad, const TrainConfig *cfg) {
    const char *prof_env = getenv("CPU_PROFILE");
    g_prof_wanted = prof_env && *prof_env && strcmp(prof_env, "0") != 0;
    memset(g_prof_s, 0, sizeof(g_prof_s));
    g_use_ref_kernels = cfg->ref_kernels;
    gpt2_setup_training(be->model, ad, cfg->B, cfg->T);
    snprintf(be->desc, sizeof(be->desc), "threads %d | gemm %s", be->nthreads, g_use_ref_kernels ? "reference" : gemm_isa());
}
static void cpu_opt_setup(Backend *be) { adamw_free(be->opt); adamw_setup(be->opt, be->model); }
static void cpu_none(Backend *be) { (void)be; }
static void cpu_sync(Backend *be, int with_opt) { (void)be; (void)with_opt; }
static void cpu_set_training(Backend *be, int on) { if (be->model->adapter) be->model->adapter->training = on; }
static float cpu_forward(Backend *be, const int *inputs, const int *targets, const uint8_t *mask) {
    GPT2 *m = be->model;
    gpt2_forward(m, inputs, targets, mask, m->batch_size, m->seq_len);
    return m->mean_loss;
}
static float cpu_forward_backward(Backend *be, const int *inputs, const int *targets, const uint8_t *mask, float scale) {
    float loss = cpu_forward(be, inputs, targets, mask);
    gpt2_backward(be->model, mask, scale);
    return loss;
}
static void cpu_get_logits(Backend *be, float *out) {
    GPT2 *m = be->model;
    memcpy(out, m->acts.logits, (size_t)m->seq_len * m->config.padded_vocab_size * sizeof(float));
}
static void cpu_begin_step(Backend *be, int timed) {
    g_prof_on = g_prof_wanted && timed;
    PROF(PC_ZERO, gpt2_zero_grad(be->model));
}
static float cpu_grad_norm(Backend *be) {
    float norm;
    PROF(PC_OPT, norm = adamw_grad_norm(be->opt));
    return norm;
}
static void cpu_adamw_step(Backend *be, float lr, float weight_decay, float gscale) {
    PROF(PC_OPT, adamw_step(be->opt, lr, weight_decay, gscale));
}
static void cpu_plora_unload(Backend *be, float m) {
    plora_unload(be->model->adapter, gpt2_slot_weight, be->model, m);
    if (m == 0) adamw_reset_moments(be->opt);
}
static void cpu_end_step(Backend *be) { (void)be; g_prof_on = 0; }
static void cpu_report_end(Backend *be, int timed_steps, double seconds) {
    if (!g_prof_wanted || !timed_steps) return;
    double sum = 0;
    for (int i = 0; i < PC_NCAT; i++) sum += g_prof_s[i];
    printf("CPU profile (CPU_PROFILE): ms per step over %d steps (%d threads)\n", timed_steps, be->nthreads);
    for (int i = 0; i < PC_NCAT; i++)
        printf("  %-34s %9.3f ms  %5.1f%%\n", prof_names[i], 1000 * g_prof_s[i] / timed_steps, 100 * g_prof_s[i] / seconds);
    printf("  %-34s %9.3f ms  %5.1f%%\n", "rest (data, checks, loss, sync)", 1000 * (seconds - sum) / timed_steps,
           100 * (seconds - sum) / seconds);
}

static const Backend cpu_backend = {
    .setup = cpu_setup, .opt_setup = cpu_opt_setup, .load = cpu_none, .sync = cpu_sync,
    .set_training = cpu_set_training, .forward = cpu_forward, .forward_backward = cpu_forward_backward,
    .get_logits = cpu_get_logits, .begin_step = cpu_begin_step, .grad_norm = cpu_grad_norm, .adamw_step = cpu_adamw_step,
    .plora_unload = cpu_plora_unload, .end_step = cpu_end_step, .report_setup = cpu_none, .report_end = cpu_report_end,
    .free = cpu_none,
};

// Mean loss over the counted targets of the first nbatches batches of dl (dropout off).
static float evaluate_loss(Backend *be, DataLoader *dl, int nbatches) {
    be->set_training(be, 0);
    if (dataloader_reset(dl) != 0) die("%s", dl->err);
    double sum = 0;
    long count = 0;
    for (int i = 0; i < nbatches; i++) {
        if (dataloader_next_batch(dl) != 0) die("%s", dl->err);
        float mean = be->forward(be, dl->inputs, dl->targets, dl->mask);
        long n = 0;
        for (int k = 0; k < dl->B * dl->T; k++) n += dl->mask[k];
        if (n > 0) { sum += (double)mean * n; count += n; }
    }
    be->set_training(be, 1);
    return count > 0 ? (float)(sum / count) : NAN;
}

// The whole run: the model, data and adapter on the host, the phases (LoRI-D, LoRI-S), resume,
// the training loop on the backend, checkpoints, the log, and the output files.
static int run_training_on(Backend *be, TrainConfig *cfg, int argc, char **argv, TrainResult *res) {
    char err[1024];
#ifdef OMP
    if (cfg->threads > 0) omp_set_num_threads(cfg->threads);
    be->nthreads = omp_get_max_threads();
#else
    be->nthreads = 1;
#endif
    AdapterKind kind = (AdapterKind)name_index(cfg->adapter, adapter_kind_names, 4);
    char cmdline[2048] = "";
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(cmdline);
        snprintf(cmdline + l, sizeof(cmdline) - l, "%s%s", i ? " " : "", argv[i]);
    }

    // --- the model
    GPT2 model;
    if (!cfg->model[0]) die("-e: give a model: an llm.c checkpoint file or a descriptor such as d12 or L=4,C=128,H=4,V=257,T=128");
    GPT2Config desc;
    struct stat stt;
    if (stat(cfg->model, &stt) == 0 && S_ISDIR(stt.st_mode)) {
        if (gpt2_load_hf(&model, cfg->model, err, sizeof(err)) != 0) die("-e: %s", err);
    } else if (stat(cfg->model, &stt) == 0) {
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
        if (cfg->import_peft[0]) {
            if (kind == ADAPTER_LORI) die("--import-peft: a PEFT LoRA adapter trains as --adapter lora or plora, not lori (its A is not seed-defined)");
            if (peft_import(&adapter, cfg->import_peft, c.num_layers, c.channels, err, sizeof(err)) != 0) die("--import-peft: %s", err);
            adapter.cfg.kind = kind;
            adapter.cfg.dropout = cfg->dropout;
            printf("adapter: imported PEFT LoRA from %s (rank %d, alpha %g%s)\n", cfg->import_peft, adapter.cfg.rank,
                   adapter.cfg.alpha, adapter.cfg.rslora ? ", rsLoRA" : "");
        } else if (cfg->adapter_in[0]) {
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
    if (kind == ADAPTER_LORI && steps == 0) { // evaluation of a LoRI adapter: no stage, B as loaded
        phases[nphases++] = (Phase){0, 0, cfg->lr};
    } else if (kind == ADAPTER_LORI) {
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

    // --- the backend: the model's arithmetic from here on
    AdamW opt;
    memset(&opt, 0, sizeof(opt));
    be->model = &model;
    be->opt = &opt;
    be->setup(be, ad, cfg);
    printf("model: L=%d C=%d H=%d V=%d (padded %d) maxT=%d, %zu parameters | %s\n", c.num_layers, c.channels, c.num_heads,
           c.vocab_size, c.padded_vocab_size, c.max_seq_len, model.num_parameters, be->desc);

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
    if (cfg->resume) {
        join_path(path, sizeof(path), cfg->output_dir, "state.bin");
        if (load_state(path, &model, NULL, &pos, err, sizeof(err)) != 0) die("-y: %s", err);
        be->opt_setup(be); // the groups of the restored mask, then the moments
        if (load_state(path, &model, &opt, &pos, err, sizeof(err)) != 0) die("-y: %s", err);
        if (have_train && dataloader_seek(&train, pos.epoch, pos.shard, pos.row) != 0) die("-y: %s", train.err);
        printf("resumed from %s at step %d (phase %d)\n", path, pos.step, pos.phase);
    } else {
        be->opt_setup(be);
    }
    be->load(be);
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
        be->report_setup(be);
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
            be->sync(be, 0); // LoRI-D's B, as trained
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
            be->opt_setup(be);
            be->load(be);
        }
        if (pos.step < phase_start) pos.step = phase_start;
        pos.phase = ph;
        for (; pos.step < phase_start + P.steps; pos.step++) {
            int step = pos.step, lstep = step - phase_start;
            int last = step == total_steps - 1;
            float val_loss = NAN;
            if (have_val && ((cfg->val_every > 0 && step % cfg->val_every == 0))) {
                val_loss = evaluate_loss(be, &val, val_batches);
                last_val = val_loss;
                printf("step %d | val loss %.6f\n", step, val_loss);
            }
            if (cfg->sample_every > 0 && step > 0 && step % cfg->sample_every == 0 && cfg->gen_len > 0) {
                be->sync(be, 0);
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
            be->begin_step(be, lstep > 0);
            double loss_sum = 0;
            for (int k = 0; k < grad_accum && count > 0; k++) {
                const int *x = binp + k * bt, *y = btgt + k * bt;
                const uint8_t *mk = bmask + k * bt;
                long n = 0;
                for (size_t i = 0; i < bt; i++) n += mk[i];
                if (n == 0) { be->forward(be, x, y, mk); continue; } // no loss, but the dropout masks are drawn
                loss_sum += (double)be->forward_backward(be, x, y, mk, 1.0f / (float)count) * n;
            }
            float loss = count > 0 ? (float)(loss_sum / count) : NAN;
            float norm = be->grad_norm(be);
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
                be->adamw_step(be, lr, cfg->weight_decay, gscale);
            }
            // PLoRA: the end of a stage
            if (kind == ADAPTER_PLORA && (lstep + 1) % cfg->plora_every == 0 && !last) {
                be->plora_unload(be, cfg->plora_momentum);
                printf("PLoRA: unloaded stage %d into the base at step %d (momentum %g)%s\n", ad->stage, step + 1,
                       cfg->plora_momentum, cfg->plora_momentum == 0 ? "; A redrawn, B = 0, moments reset" : "");
            }
            be->end_step(be);
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
                be->sync(be, 1);
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
        last_val = evaluate_loss(be, &val, val_batches);
        printf("final val loss %.6f\n", last_val);
        if (csv) fprintf(csv, "%d,,%.6f,,,,\n", total_steps, last_val);
    }
    if (csv) fclose(csv);
    if (timed_steps) printf("average step %.1f ms, %.0f tok/s\n", 1000 * train_time / timed_steps,
                            (double)bt * grad_accum * timed_steps / train_time);
    be->report_end(be, timed_steps, train_time);
    be->sync(be, 1);
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
    if (cfg->export_peft[0]) {
        if (!ad) die("--export-peft needs an adapter (--adapter lora|lori|plora)");
        if (peft_export(ad, cfg->export_peft, cfg->model, err, sizeof(err)) != 0) die("--export-peft: %s", err);
        printf("wrote %s/ (PEFT LoRA: adapter_config.json, adapter_model.safetensors)\n", cfg->export_peft);
    }
    if (cfg->merge_out[0]) {
        const float *p = gpt2_effective_params(&model, &merged_scratch);
        if (gpt2_write_checkpoint(&c, p, model.num_parameters, cfg->merge_out, err, sizeof(err)) != 0) die("--merge-out: %s", err);
        printf("wrote %s (merged llm.c checkpoint)\n", cfg->merge_out);
    }
    if (cfg->export_hf[0]) {
        char tokdir[1100];  // the tokenizer: -e's folder, else the training shards' folder
        if (stat(cfg->model, &stt) == 0 && S_ISDIR(stt.st_mode)) snprintf(tokdir, sizeof(tokdir), "%s", cfg->model);
        else if (have_train) { snprintf(tokdir, sizeof(tokdir), "%s", train.files[0]); char *sl = strrchr(tokdir, '/'); if (sl) *sl = 0; else strcpy(tokdir, "."); }
        else tokdir[0] = 0;
        const float *p = gpt2_effective_params(&model, &merged_scratch);
        if (gpt2_write_hf(&c, p, cfg->export_hf, tokdir[0] ? tokdir : NULL, err, sizeof(err)) != 0) die("--export-hf: %s", err);
    }
    if (cfg->dump_logits[0]) {
        if (!have_val) die("--dump-logits needs -j validation data");
        be->set_training(be, 0);
        dataloader_reset(&val);
        if (dataloader_next_batch(&val) != 0) die("-j: %s", val.err);
        be->forward(be, val.inputs, NULL, NULL);
        float *row = xcalloc((size_t)T * c.padded_vocab_size, sizeof(float), "logits");
        be->get_logits(be, row);
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
    be->free(be);
    free(binp); free(btgt); free(bmask); free(merged_scratch); free(B_loaded); free(mask_loaded);
    adamw_free(&opt);
    if (ad) adapter_free(ad);
    if (have_train) dataloader_free(&train);
    if (have_val) dataloader_free(&val);
    tokenizer_free(&tok);
    gpt2_free(&model);
    return 0;
}

static int run_training(TrainConfig *cfg, int argc, char **argv, TrainResult *res) {
    Backend be = cpu_backend;
    return run_training_on(&be, cfg, argc, argv, res);
}

// ----------------------------------------------------------------------------
// the embedded default: `./train_lori` (or any trainer binary) with no flags runs offline on a
// fresh machine: generate the task suite, pretrain and cache a tiny base, fine-tune it on one task
// with the binary's adapter (LoRI-D -> mask -> LoRI-S for train_lori), evaluate before and after.
// The recipe is here, in one place; change it here (and in the README) if the numbers need it.

#define DEFAULT_DATA_DIR "data/tasks"
#define DEFAULT_OUT_DIR "out"
#define DEFAULT_TASK "classify"
#define DEFAULT_MODEL "L=4,C=128,H=4,V=257,T=128"
#define DEFAULT_B 16
#define DEFAULT_T 64
#define DEFAULT_PRETRAIN_STEPS 700
#define DEFAULT_PRETRAIN_LR 2e-3f
#define DEFAULT_FT_STEPS 150   // per LoRI stage
#define DEFAULT_FT_LR 5e-3f    // LoRI-D's; LoRI-S uses 10x, as the official scripts
#define DEFAULT_RANK 16

static void default_base_config(TrainConfig *c) {
    config_defaults(c);
    snprintf(c->model, sizeof(c->model), "%s", DEFAULT_MODEL);
    snprintf(c->train_pattern, sizeof(c->train_pattern), "%s/pretrain_train.bin", DEFAULT_DATA_DIR);
    snprintf(c->val_pattern, sizeof(c->val_pattern), "%s/pretrain_val.bin", DEFAULT_DATA_DIR);
    snprintf(c->output_dir, sizeof(c->output_dir), "%s/base", DEFAULT_OUT_DIR);
    strcpy(c->adapter, "none");
    c->B = DEFAULT_B; c->T = DEFAULT_T; c->max_steps = DEFAULT_PRETRAIN_STEPS;
    c->lr = DEFAULT_PRETRAIN_LR; c->warmup = 20; c->final_frac = 0.1f; strcpy(c->schedule, "cosine");
    c->val_every = 0; c->val_batches = 20; c->sample_every = 0; c->print_every = 50;
}

// The recipe string stamped beside the cached base: a different recipe retrains it.
// It includes a hash of the pretraining shard, so regenerated (different) data retrains it too.
static void default_base_recipe(char *buf, size_t n) {
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/pretrain_train.bin", DEFAULT_DATA_DIR);
    size_t size = 0;
    uint8_t *data = read_whole_file(path, &size, err, sizeof(err));
    uint64_t h = 0xCBF29CE484222325ull; // FNV-1a
    for (size_t i = 0; data && i < size; i++) { h ^= data[i]; h *= 0x100000001B3ull; }
    free(data);
    snprintf(buf, n, "model=%s B=%d T=%d steps=%d lr=%g seed=1337 data=%016llx\n", DEFAULT_MODEL, DEFAULT_B, DEFAULT_T,
             DEFAULT_PRETRAIN_STEPS, (double)DEFAULT_PRETRAIN_LR, (unsigned long long)h);
}

static int run_default(const char *prog) {
    double t_start = now_s();
    const char *adapter_name = DEFAULT_ADAPTER;
    printf("== %s with no flags: the embedded default (see README: 'The embedded default')\n", prog);
    printf("   task '%s', tiny GPT-2 %s, adapter %s%s\n", DEFAULT_TASK, DEFAULT_MODEL, adapter_name,
           strcmp(adapter_name, "lori") == 0 ? " (LoRI-D -> mask -> LoRI-S)" : "");
    // 1. the task suite
    if (!tasks_present(DEFAULT_DATA_DIR)) {
        printf("== generating the task suite into %s/ (seed %d)\n", DEFAULT_DATA_DIR, TASKS_DEFAULT_SEED);
        if (tasks_generate(DEFAULT_DATA_DIR, TASKS_DEFAULT_SEED, 0) != 0) die("could not generate the task suite in %s", DEFAULT_DATA_DIR);
    }
    mkdir(DEFAULT_OUT_DIR, 0755);
    // 2. the tiny base model, pretrained once and cached
    char base[1200], stamp[1200], recipe[512], have[512] = "";
    snprintf(base, sizeof(base), "%s/base/model.bin", DEFAULT_OUT_DIR);
    snprintf(stamp, sizeof(stamp), "%s/base/RECIPE", DEFAULT_OUT_DIR);
    default_base_recipe(recipe, sizeof(recipe));
    FILE *sf = fopen(stamp, "r");
    if (sf) { if (!fgets(have, sizeof(have), sf)) have[0] = 0; fclose(sf); }
    struct stat st;
    TrainResult pre = {0};
    if (stat(base, &st) != 0 || strcmp(have, recipe) != 0) {
        printf("== pretraining the base model (%d steps; cached in %s afterwards)\n", DEFAULT_PRETRAIN_STEPS, base);
        TrainConfig bc;
        default_base_config(&bc);
        char *argv0[] = {(char *)"pretrain"};
        run_training(&bc, 1, argv0, &pre);
        sf = fopen(stamp, "w");
        if (sf) { fputs(recipe, sf); fclose(sf); }
    } else {
        printf("== using the cached base model %s (delete it to pretrain again)\n", base);
    }
    // 3. before: the base model's exact match on the task's test split
    char test[1200], train[1200], val[1200], outdir[1200];
    snprintf(test, sizeof(test), "%s/%s_test.bin", DEFAULT_DATA_DIR, DEFAULT_TASK);
    snprintf(train, sizeof(train), "%s/%s_train.bin", DEFAULT_DATA_DIR, DEFAULT_TASK);
    snprintf(val, sizeof(val), "%s/%s_val.bin", DEFAULT_DATA_DIR, DEFAULT_TASK);
    snprintf(outdir, sizeof(outdir), "%s/%s_%s", DEFAULT_OUT_DIR, adapter_name, DEFAULT_TASK);
    TrainConfig ec;
    config_defaults(&ec);
    snprintf(ec.model, sizeof(ec.model), "%s", base);
    snprintf(ec.val_pattern, sizeof(ec.val_pattern), "%s", val);
    snprintf(ec.eval_em, sizeof(ec.eval_em), "%s", test);
    strcpy(ec.adapter, "none");
    ec.B = DEFAULT_B; ec.T = DEFAULT_T; ec.max_steps = 0; ec.sample_every = 0; ec.eval_show = 3;
    TrainResult before = {0};
    printf("== before fine-tuning: the base model on %s\n", test);
    char *argv1[] = {(char *)"evaluate"};
    run_training(&ec, 1, argv1, &before);
    // 4. fine-tune with the binary's adapter
    TrainConfig fc;
    config_defaults(&fc);
    snprintf(fc.model, sizeof(fc.model), "%s", base);
    snprintf(fc.train_pattern, sizeof(fc.train_pattern), "%s", train);
    snprintf(fc.val_pattern, sizeof(fc.val_pattern), "%s", val);
    snprintf(fc.output_dir, sizeof(fc.output_dir), "%s", outdir);
    snprintf(fc.eval_em, sizeof(fc.eval_em), "%s", test);
    fc.B = DEFAULT_B; fc.T = DEFAULT_T; fc.max_steps = DEFAULT_FT_STEPS; fc.lr = DEFAULT_FT_LR;
    fc.rank = DEFAULT_RANK; fc.alpha = 2.0f * DEFAULT_RANK; fc.warmup = 10; fc.final_frac = 0.1f;
    fc.val_every = 50; fc.sample_every = 0; fc.print_every = 25; fc.eval_show = 5;
    if (strcmp(adapter_name, "none") == 0) fc.lr = 1e-3f;
    if (strcmp(adapter_name, "plora") == 0) { fc.max_steps = 2 * DEFAULT_FT_STEPS; fc.plora_every = DEFAULT_FT_STEPS / 2; }
    if (strcmp(adapter_name, "lora") == 0) fc.max_steps = 2 * DEFAULT_FT_STEPS;
    printf("== fine-tuning on %s -> %s/\n", train, outdir);
    char *argv2[] = {(char *)prog};
    TrainResult after = {0};
    run_training(&fc, 1, argv2, &after);
    double total = now_s() - t_start;
    // 5. the table
    double em0 = before.em_n ? 100.0 * before.em_correct / before.em_n : 0, em1 = after.em_n ? 100.0 * after.em_correct / after.em_n : 0;
    printf("\n== summary: %s on task '%s' (%d test examples)\n", adapter_name, DEFAULT_TASK, after.em_n);
    printf("| %-32s | %-28s |\n", "", "result");
    printf("|----------------------------------|------------------------------|\n");
    printf("| %-32s | %-28zu |\n", "trainable parameters", after.trainable);
    char cell[64];
    snprintf(cell, sizeof(cell), "%.3f%%", 100.0 * after.trainable / after.total_params);
    printf("| %-32s | %-28s |\n", "  of the full model", cell);
    if (after.lora_equiv) {
        snprintf(cell, sizeof(cell), "%.2f%%", 100.0 * after.trainable / after.lora_equiv);
        printf("| %-32s | %-28s |\n", "  of an equal-rank LoRA", cell);
    }
    if (after.adapter_bytes) {
        snprintf(cell, sizeof(cell), "%ld (LoRA: %ld)", after.adapter_bytes, after.lora_file_bytes);
        printf("| %-32s | %-28s |\n", "adapter file bytes", cell);
    }
    printf("| %-32s | %-7.4f -> %-17.4f |\n", "val loss (answer tokens)", before.final_val_loss, after.final_val_loss);
    printf("| %-32s | %6.1f%% -> %6.1f%%            |\n", "exact match (greedy)", em0, em1);
    printf("| %-32s | %-28.1f |\n", "fine-tuning time (s)", after.seconds);
    printf("| %-32s | %-28.0f |\n", "fine-tuning tokens/s", after.tok_per_s);
    printf("| %-32s | %-28.1f |\n", "total wall time (s)", total);
    // 6. summary.json and the loss curve
    char path[1300];
    snprintf(path, sizeof(path), "%s/summary.json", outdir);
    char tmp[1400];
    FILE *f = report_open(path, tmp, sizeof(tmp));
    if (f) {
        fprintf(f, "{\n  \"adapter\": "); json_str(f, adapter_name);
        fprintf(f, ",\n  \"task\": "); json_str(f, DEFAULT_TASK);
        fprintf(f, ",\n  \"model\": "); json_str(f, DEFAULT_MODEL);
        fprintf(f, ",\n  \"total_parameters\": %zu,\n  \"trainable_parameters\": %zu,\n  \"lora_equal_rank_parameters\": %zu", after.total_params, after.trainable, after.lora_equiv);
        fprintf(f, ",\n  \"adapter_bytes\": %ld,\n  \"lora_adapter_bytes\": %ld", after.adapter_bytes, after.lora_file_bytes);
        fprintf(f, ",\n  \"val_loss_before\": "); json_num(f, before.final_val_loss);
        fprintf(f, ",\n  \"val_loss_after\": "); json_num(f, after.final_val_loss);
        fprintf(f, ",\n  \"exact_match_before\": "); json_num(f, em0 / 100);
        fprintf(f, ",\n  \"exact_match_after\": "); json_num(f, em1 / 100);
        fprintf(f, ",\n  \"test_examples\": %d", after.em_n);
        fprintf(f, ",\n  \"fine_tune_seconds\": "); json_num(f, after.seconds);
        fprintf(f, ",\n  \"fine_tune_tokens_per_second\": "); json_num(f, after.tok_per_s);
        fprintf(f, ",\n  \"total_seconds\": "); json_num(f, total);
        fprintf(f, "\n}\n");
        report_close(f, tmp, path);
    }
    double *xs = NULL, *ys = NULL;
    snprintf(path, sizeof(path), "%s/train.csv", outdir);
    int n = read_train_csv(path, &xs, &ys);
    if (n > 0) {
        SvgSeries ser = {adapter_name, xs, ys, n};
        char title[256];
        snprintf(title, sizeof(title), "%s on '%s': training loss (answer tokens)", adapter_name, DEFAULT_TASK);
        snprintf(path, sizeof(path), "%s/loss.svg", outdir);
        svg_line_chart(path, title, "step", "loss", &ser, 1);
    }
    free(xs); free(ys);
    printf("\nwrote %s/: summary.json, adapter.bin, train.csv, loss.svg\n", outdir);
    return 0;
}

#ifndef TESTING
int main(int argc, char **argv) {
    if (argc == 1) return run_default(argv[0]);
    TrainConfig cfg;
    config_defaults(&cfg);
    int rc = parse_args(&cfg, argc, argv);
    if (rc != 0) return rc < 0 ? 1 : 0;
    if (validate_args(&cfg) != 0) return 1;
    return run_training(&cfg, argc, argv, NULL);
}
#endif
