/*
llmc/model.h — GPT-2's memory layout and its files, shared by the CPU and GPU trainers.

The tables of sizes that carve parameters (16 tensors, llm.c's order) and activations (23) out of one
allocation each, the GPT2 struct that holds them, the model's configuration and its validation,
llm.c's checkpoint files (read: version 3 fp32 and 5 bf16; write: version 3), model descriptors for
random init (d12.. or L=4,C=128,...), GPT-2's init, and the base weight of an adapter slot.
The computation (forward, backward) is the trainers': train_gpt2.c on the CPU, train_gpt2.cu on the GPU.
*/
#ifndef LLMC_MODEL_H
#define LLMC_MODEL_H

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "utils.h"
#include "../lora/adapter.h"
#include "../data/hf_gpt2.h"

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
    float *att_work;        // the CPU attention kernels' scratch (kernels/fast.h), one block per thread
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
// from tokenizer_dir when it has them (*copied says whether it did).
static int gpt2_write_hf(const GPT2Config *c, const float *params, const char *dir, const char *tokenizer_dir, int *copied,
                         char *err, size_t errlen) {
    HFConfig hc = {c->max_seq_len, c->vocab_size, c->padded_vocab_size, c->num_layers, c->num_heads, c->channels};
    return hf_write_gpt2(dir, &hc, params, tokenizer_dir, copied, err, errlen) ? -1 : 0;
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

static void gpt2_free(GPT2 *m) {
    free(m->params_memory); free(m->grads_memory); free(m->acts_memory); free(m->grads_acts_memory);
    free(m->inputs); free(m->targets); free(m->dlosses); free(m->att_work);
    memset(m, 0, sizeof(*m));
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

#endif // LLMC_MODEL_H
