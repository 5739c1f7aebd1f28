/*
lora/adapter.h — one adapter mechanism for the linear layers of GPT-2, with three variants.

An adapted linear computes  y = W x + b + s · B A drop(x),  A (r,in), B (out,r)  (lora/METHODS.md §1).
The low-rank path is written once (lowrank_forward/backward in kernels/layers.h, and the fast
gemm-based version here); the variants differ only in the places marked VARIANT below:

  variant   what trains          how A is drawn                   mask on B            stage boundary
  LoRA      A and B              Kaiming-uniform (or gaussian)    none                 none
  LoRI-D    B only (A frozen)    from a stored seed               none                 -> mask extraction
  LoRI-S    B ⊙ M only           the same seed                    top-k |B| of LoRI-D  none
  PLoRA     A and B              fresh Kaiming-uniform per stage  none                 unload into W, re-init
                                 (kept, scaled, when momentum > 0)                     (history kept: see below)

Usage (the trainer does this):
    Adapter ad; adapter_create(&ad, &cfg, L, C);   // A drawn, B = 0: the model is exactly the base
    adapter_alloc_acts(&ad, B*T);
    ... in the model: W' = adapter_forward_weight(&ad, l, t, W, N) for the base matmul (W, or W + s B A),
                      adapter_forward(&ad, l, t, out, inp, N) after it,
                      adapter_backward_weight(&ad, l, t, W) for the base's input gradient and
                      adapter_backward(&ad, l, t, dinp, dout, inp, N) next to it
    adapter_fold(&ad, slot, W, +1)                  // merge W += s B A (-1 unmerges)
Parameters of all slots live in one buffer: every A first (slot order), then every B.
Slots are (layer, target) pairs in order l = 0..L-1, t = qkv, attn_proj, fc, fc_proj.

PLoRA's history: every unload appends what it folded into the base, per stage k the factors A_k and
c_k B_k with c_k = (1 - m) s (ad->hist, nhist stages, each laid out as params: A's then B's). So the
run's model is always  W_orig + sum_k c_k B_k A_k + s B A : an exact LoRA of rank (nhist + 1) r on
the ORIGINAL base (adapter_flatten_stages builds it), which is what adapter files and PEFT exports of
a PLoRA run hold.
*/
#ifndef LORA_ADAPTER_H
#define LORA_ADAPTER_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../llmc/utils.h"
#include "../kernels/gemm.h"
#include "variants.h"

enum { T_QKV = 0, T_ATTPROJ = 1, T_FC = 2, T_FCPROJ = 3, NUM_TARGETS = 4 };
typedef enum { INIT_KAIMING = 0, INIT_GAUSSIAN = 1 } AdapterInit;
typedef enum { MASK_MODEL = 0, MASK_LAYER = 1, MASK_MATRIX = 2, MASK_RANDOM = 3 } MaskMode;
// PLoRA's momentum unload with m > 0 (METHODS.md §3). Both fold (1 - m) s B A into the base; they
// differ in what the adapter keeps:
//   PLORA_SQRT     ours: A, B *= sqrt(m), the adapter keeps m s B A, the function is preserved
//   PLORA_WRITEUP  the PLoRA write-up's reading: A, B *= m, the adapter keeps m^2 s B A, so the
//                  function changes by -(m - m^2) s B A at every unload
typedef enum { PLORA_SQRT = 0, PLORA_WRITEUP = 1 } PLoRAMomentum;

__attribute__((unused)) static const char *target_names[NUM_TARGETS] = {"qkv", "attn_proj", "fc", "fc_proj"};
// a target's input and output widths in units of C: qkv (3C x C), attn_proj (C x C), fc (4C x C), fc_proj (C x 4C)
__attribute__((unused)) static const int target_in_mult[NUM_TARGETS] = {1, 1, 1, 4}, target_out_mult[NUM_TARGETS] = {3, 1, 4, 1};
__attribute__((unused)) static const char *mask_mode_names[] = {"model", "layer", "matrix", "random"};
__attribute__((unused)) static const char *plora_momentum_names[] = {"sqrt", "writeup"};

typedef struct {
    AdapterKind kind;
    int rank;
    float alpha;
    int rslora;        // 1: s = alpha / sqrt(r) (rsLoRA); 0: s = alpha / r
    float dropout;     // on the adapter's input only
    int targets;       // bitmask over T_QKV..T_FCPROJ
    AdapterInit init;  // A's distribution
    uint64_t seed;     // A's seed: A is a pure function of (seed, init, slot, shape)
} AdapterConfig;

typedef struct {
    AdapterConfig cfg;
    int L, C;
    float scale;              // s
    int nslots;
    int slot_of[1024][NUM_TARGETS]; // (layer, target) -> slot, or -1
    int *slot_layer, *slot_target, *slot_in, *slot_out;
    size_t *a_off, *b_off;    // offsets into params / grads
    size_t nA, nB;            // all A's, all B's
    float *params;            // (nA + nB): A's then B's
    float *grads;             // (nA + nB)
    // LoRI-S: the mask over B, as the sorted list of kept B indices (relative to the B region)
    uint8_t *mask;            // (nB,) 1 = trainable, NULL = dense
    uint32_t *kept;
    size_t nkept;
    // activations (allocated for N = B*T rows)
    int N;
    float *u;                 // (nslots, N, r): drop(x) A^T, saved by the forward
    float *drop;              // (nslots, N, in_max): dropout multipliers, only when dropout > 0
    float *xd;                // (N, 4C) scratch: drop(x)
    float *du;                // (N, r) scratch
    float *tmp;               // (N, 4C) scratch
    float *dat;               // (4C, r) scratch: dA^T
    // merged execution (adapter_forward_weight): per slot W + s B A, (out,in), or NULL
    float **wm;
    uint8_t *merged;          // (nslots,) 1: the last forward of the slot ran on wm[s]
    int merge;                // -1: when cheaper (default), 0: never, 1: always (tests)
    int training;             // dropout is active only while training
    uint64_t drop_rng;
    int stage;                // PLoRA: number of unloads done
    PLoRAMomentum plora_mode; // PLoRA: what an unload with m > 0 keeps (set by the trainer)
    float *hist;              // PLoRA: (nhist, nA + nB): per unloaded stage A_k, then c_k B_k
    int nhist, hist_cap;      // stages held, stages allocated
} Adapter;

static float adapter_scale(const AdapterConfig *c) {
    return c->rslora ? c->alpha / sqrtf((float)c->rank) : c->alpha / (float)c->rank;
}

// VARIANT: which factors train (lora/variants.h). LoRI freezes A.
static int adapter_trains_A(const Adapter *ad) { return variant_of(ad->cfg.kind)->trains_A; }

static float *adapter_A(const Adapter *ad, int s) { return ad->params + ad->a_off[s]; }
static float *adapter_B(const Adapter *ad, int s) { return ad->params + ad->nA + ad->b_off[s]; }

// VARIANT: how A is drawn. Kaiming-uniform with a = sqrt(5) is U(-1/sqrt(in), 1/sqrt(in)) (PEFT, loralib);
// gaussian is N(0, std = 1/r) as PEFT's init_lora_weights="gaussian". Each slot has its own stream
// derived from (seed, layer, target), so A of a layer does not depend on which other layers are adapted.
static void adapter_draw_A(Adapter *ad, int s, uint64_t seed) {
    uint64_t rng = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(ad->slot_layer[s] * NUM_TARGETS + ad->slot_target[s] + 1));
    splitmix64(&rng);
    float *A = adapter_A(ad, s);
    int in = ad->slot_in[s], r = ad->cfg.rank;
    float bound = 1.0f / sqrtf((float)in), std = 1.0f / (float)r;
    for (size_t i = 0; i < (size_t)r * in; i++)
        A[i] = ad->cfg.init == INIT_KAIMING ? (2.0f * rng_uniform(&rng) - 1.0f) * bound : std * rng_normal(&rng);
}

static void adapter_free(Adapter *ad) {
    free(ad->slot_layer); free(ad->slot_target); free(ad->slot_in); free(ad->slot_out);
    free(ad->a_off); free(ad->b_off); free(ad->params); free(ad->grads);
    free(ad->mask); free(ad->kept); free(ad->u); free(ad->drop); free(ad->xd); free(ad->du); free(ad->tmp); free(ad->dat);
    for (int s = 0; ad->wm && s < ad->nslots; s++) free(ad->wm[s]);
    free(ad->wm); free(ad->merged); free(ad->hist);
    memset(ad, 0, sizeof(*ad));
}

// Returns 0, or -1 with a message in err. A is drawn from cfg->seed, B = 0.
static int adapter_create(Adapter *ad, const AdapterConfig *cfg, int L, int C, char *err, size_t errlen) {
    memset(ad, 0, sizeof(*ad));
    if (cfg->rank <= 0) { snprintf(err, errlen, "--rank must be > 0 (got %d)", cfg->rank); return -1; }
    if (cfg->rank > C) { snprintf(err, errlen, "--rank %d is above the layer width %d", cfg->rank, C); return -1; }
    if (!(cfg->alpha > 0) || !isfinite(cfg->alpha)) { snprintf(err, errlen, "--alpha must be > 0"); return -1; }
    if (!(cfg->dropout >= 0 && cfg->dropout < 1)) { snprintf(err, errlen, "--dropout must be in [0,1)"); return -1; }
    if ((cfg->targets & 15) == 0) { snprintf(err, errlen, "--targets selects no layer"); return -1; }
    if (L <= 0 || L > 1024) { snprintf(err, errlen, "adapter: bad layer count %d", L); return -1; }
    ad->cfg = *cfg;
    ad->L = L; ad->C = C;
    ad->scale = adapter_scale(cfg);
    int n = 0;
    for (int l = 0; l < L; l++)
        for (int t = 0; t < NUM_TARGETS; t++) ad->slot_of[l][t] = (cfg->targets >> t) & 1 ? n++ : -1;
    ad->nslots = n;
    ad->slot_layer = calloc((size_t)n, sizeof(int)); ad->slot_target = calloc((size_t)n, sizeof(int));
    ad->slot_in = calloc((size_t)n, sizeof(int)); ad->slot_out = calloc((size_t)n, sizeof(int));
    ad->a_off = calloc((size_t)n, sizeof(size_t)); ad->b_off = calloc((size_t)n, sizeof(size_t));
    int r = cfg->rank;
    for (int l = 0; l < L; l++) {
        for (int t = 0; t < NUM_TARGETS; t++) {
            int s = ad->slot_of[l][t];
            if (s < 0) continue;
            ad->slot_layer[s] = l; ad->slot_target[s] = t;
            ad->slot_in[s] = target_in_mult[t] * C; ad->slot_out[s] = target_out_mult[t] * C;
            ad->a_off[s] = ad->nA; ad->nA += (size_t)r * ad->slot_in[s];
            ad->b_off[s] = ad->nB; ad->nB += (size_t)ad->slot_out[s] * r;
        }
    }
    ad->params = calloc(ad->nA + ad->nB, sizeof(float));
    ad->grads = calloc(ad->nA + ad->nB, sizeof(float));
    ad->wm = calloc((size_t)(n ? n : 1), sizeof(float *));
    ad->merged = calloc((size_t)(n ? n : 1), 1);
    ad->merge = -1;
    if (!ad->slot_layer || !ad->slot_target || !ad->slot_in || !ad->slot_out || !ad->a_off || !ad->b_off ||
        !ad->params || !ad->grads || !ad->wm || !ad->merged) { snprintf(err, errlen, "adapter: out of memory"); adapter_free(ad); return -1; }
    for (int s = 0; s < n; s++) adapter_draw_A(ad, s, cfg->seed);
    return 0;
}

static int adapter_merges(const Adapter *ad, int s, int N);

// The adapter's activations for N rows, and the merged weights W + s B A of the slots that run merged
// at N rows (adapter_merges): allocated here, before training, never in a step. Call again after
// changing ad->merge. 0, or -1 when out of memory.
static int adapter_alloc_acts(Adapter *ad, int N) {
    if (ad->N < N) {
        free(ad->u); free(ad->drop); free(ad->xd); free(ad->du); free(ad->tmp); free(ad->dat);
        ad->N = N;
        size_t r = (size_t)ad->cfg.rank, C4 = 4 * (size_t)ad->C;
        ad->u = malloc(sizeof(float) * ad->nslots * N * r);
        ad->xd = malloc(sizeof(float) * N * C4);
        ad->du = malloc(sizeof(float) * N * r);
        ad->tmp = malloc(sizeof(float) * N * C4);
        ad->dat = malloc(sizeof(float) * C4 * r);
        ad->drop = ad->cfg.dropout > 0 ? malloc(sizeof(float) * ad->nslots * N * C4) : NULL;
        if (!ad->u || !ad->xd || !ad->du || !ad->tmp || !ad->dat || (ad->cfg.dropout > 0 && !ad->drop)) return -1;
    }
    int training = ad->training;
    ad->training = 0; // evaluation runs merged even with dropout
    for (int s = 0; s < ad->nslots; s++)
        if (!ad->wm[s] && adapter_merges(ad, s, N) && !(ad->wm[s] = malloc(sizeof(float) * (size_t)ad->slot_out[s] * ad->slot_in[s]))) {
            ad->training = training;
            return -1;
        }
    ad->training = training;
    return 0;
}

// Trainable element count: what the optimizer keeps state for.
static size_t adapter_num_trainable(const Adapter *ad) {
    size_t nb = ad->mask ? ad->nkept : ad->nB;
    return (adapter_trains_A(ad) ? ad->nA : 0) + nb;
}

// ----------------------------------------------------------------------------
// forward / backward of one adapted linear (the base matmul is done by the caller)
//
// Two ways to run it, the same function: unmerged, y = x W^T + s (x A^T) B^T and dx = dy W + (s dy B) A,
// two extra products of N rows each way; or merged, y = x (W + s B A)^T and dx = dy (W + s B A), where
// W + s B A costs one (out,in,r) product and a copy of W per forward. Merged is cheaper when the
// batch has many rows for the layer's size (N (in + out) >= 4 in out: the tiny models' 2048 rows, not
// 124M's 256); never with dropout (the adapter's input is then not the base's). u = x A^T, dA and dB
// are computed either way.

static int adapter_merges(const Adapter *ad, int s, int N) {
    if (ad->drop && ad->training) return 0;
    if (ad->merge >= 0) return ad->merge;
    double in = ad->slot_in[s], o = ad->slot_out[s];
    return (double)N * (in + o) >= 4.0 * in * o;
}

// The weight the base product of slot (l,t) should use for N rows: W itself, or W + s B A (computed
// now, from the current A and B). Records the choice for adapter_forward/backward.
static const float *adapter_forward_weight(Adapter *ad, int l, int t, const float *W, int N) {
    int s = ad->slot_of[l][t];
    if (s < 0) return W;
    ad->merged[s] = (uint8_t)adapter_merges(ad, s, N);
    if (!ad->merged[s]) return W;
    int in = ad->slot_in[s], o = ad->slot_out[s], r = ad->cfg.rank;
    if (!ad->wm[s]) { ad->merged[s] = 0; return W; } // not prepared by adapter_alloc_acts: run unmerged
    memcpy(ad->wm[s], W, sizeof(float) * (size_t)o * in);
    gemm('N', 'N', o, in, r, ad->scale, adapter_B(ad, s), r, adapter_A(ad, s), in, 1.0f, ad->wm[s], in);
    return ad->wm[s];
}

// The weight of slot (l,t)'s last forward, for its input gradient: W or the merged W + s B A.
static const float *adapter_backward_weight(const Adapter *ad, int l, int t, const float *W) {
    int s = ad->slot_of[l][t];
    return s >= 0 && ad->merged[s] ? ad->wm[s] : W;
}

// Slot s's dropout multipliers (N, in) for this forward: drawn now (inverted dropout, kept for the
// backward) while training with dropout; NULL otherwise.
static float *adapter_draw_dropout(Adapter *ad, int s, int N) {
    if (!(ad->drop && ad->training)) return NULL;
    float *dm = ad->drop + (size_t)s * ad->N * 4 * ad->C;
    float keep = 1.0f - ad->cfg.dropout, inv = 1.0f / keep;
    for (size_t i = 0; i < (size_t)N * ad->slot_in[s]; i++) dm[i] = rng_uniform(&ad->drop_rng) < keep ? inv : 0.0f;
    return dm;
}
// The multipliers of slot s's last forward, or NULL.
static const float *adapter_dropout_of(const Adapter *ad, int s) {
    return ad->drop && ad->training ? ad->drop + (size_t)s * ad->N * 4 * ad->C : NULL;
}

// out (N,out) += s · drop(inp) A^T B^T for slot (l,t); no-op when (l,t) is not adapted
static void adapter_forward(Adapter *ad, int l, int t, float *out, const float *inp, int N) {
    int s = ad->slot_of[l][t];
    if (s < 0) return;
    int in = ad->slot_in[s], o = ad->slot_out[s], r = ad->cfg.rank;
    float *u = ad->u + (size_t)s * ad->N * r;
    const float *x = inp;
    const float *dm = adapter_draw_dropout(ad, s, N);
    if (dm) {
        for (size_t i = 0; i < (size_t)N * in; i++) ad->xd[i] = inp[i] * dm[i];
        x = ad->xd;
    }
    gemm('N', 'T', N, r, in, 1.0f, x, in, adapter_A(ad, s), in, 0.0f, u, r);          // u = x A^T
    if (ad->merged[s]) return;                                                       // in the base's product
    gemm('N', 'T', N, o, r, ad->scale, u, r, adapter_B(ad, s), r, 1.0f, out, o);      // out += s u B^T
}

// dinp (N,in) += the adapter's input gradient (skipped when dinp is NULL); accumulates dA, dB.
static void adapter_backward(Adapter *ad, int l, int t, float *dinp, const float *dout, const float *inp, int N) {
    int s = ad->slot_of[l][t];
    if (s < 0) return;
    int in = ad->slot_in[s], o = ad->slot_out[s], r = ad->cfg.rank;
    const float *u = ad->u + (size_t)s * ad->N * r;
    const float *A = adapter_A(ad, s), *B = adapter_B(ad, s);
    float *dA = ad->grads + ad->a_off[s], *dB = ad->grads + ad->nA + ad->b_off[s];
    const float *dm = adapter_dropout_of(ad, s);
    gemm('T', 'N', o, r, N, ad->scale, dout, o, u, r, 1.0f, dB, r);                   // dB += s dout^T u
    gemm('N', 'N', N, r, o, ad->scale, dout, o, B, r, 0.0f, ad->du, r);               // du = s dout B
    if (adapter_trains_A(ad)) {                                                      // dA += du^T drop(x)
        const float *x = inp;
        if (dm) { for (size_t i = 0; i < (size_t)N * in; i++) ad->xd[i] = inp[i] * dm[i]; x = ad->xd; }
        // as (drop(x)^T du)^T: r = 16 rows of output would fill one and a third of a 12-row tile
        gemm('T', 'N', in, r, N, 1.0f, x, in, ad->du, r, 0.0f, ad->dat, r);
        for (int j = 0; j < r; j++)
            for (int c = 0; c < in; c++) dA[(size_t)j * in + c] += ad->dat[(size_t)c * r + j];
    }
    if (dinp && !ad->merged[s]) {                                                    // dinp += (du A) * drop
        if (dm) {
            gemm('N', 'N', N, in, r, 1.0f, ad->du, r, A, in, 0.0f, ad->tmp, in);
            for (size_t i = 0; i < (size_t)N * in; i++) dinp[i] += ad->tmp[i] * dm[i];
        } else {
            gemm('N', 'N', N, in, r, 1.0f, ad->du, r, A, in, 1.0f, dinp, in);
        }
    }
}

// W (out,in) += factor · s · B A for slot s: merge (+1), unmerge (-1), PLoRA's unload (1 - m)
static void adapter_fold(const Adapter *ad, int s, float *W, float factor) {
    int in = ad->slot_in[s], o = ad->slot_out[s], r = ad->cfg.rank;
    gemm('N', 'N', o, in, r, factor * ad->scale, adapter_B(ad, s), r, adapter_A(ad, s), in, 1.0f, W, in);
}

// ----------------------------------------------------------------------------
// VARIANT (LoRI-S): the mask on B

// Installs a mask (nB bytes, 1 = trainable). With zero_outside, B outside it is zeroed so B ⊙ M holds
// from now on (LoRI-S); without, entries outside keep their values and stay frozen (continual learning:
// an earlier task's entries outside the new task's mask stay bit-identical).
static void adapter_set_mask(Adapter *ad, const uint8_t *mask, int zero_outside) {
    free(ad->mask); free(ad->kept);
    ad->mask = xcalloc(ad->nB, 1, "LoRI-S mask");
    memcpy(ad->mask, mask, ad->nB);
    ad->nkept = 0;
    for (size_t i = 0; i < ad->nB; i++) ad->nkept += mask[i] != 0;
    ad->kept = xcalloc(ad->nkept, sizeof(uint32_t), "LoRI-S kept indices");
    size_t k = 0;
    float *B = ad->params + ad->nA;
    for (size_t i = 0; i < ad->nB; i++) {
        if (mask[i]) ad->kept[k++] = (uint32_t)i;
        else if (zero_outside) B[i] = 0.0f;
    }
}

typedef struct { float mag; uint32_t idx; } MagIdx;
static int magidx_desc(const void *a, const void *b) {
    const MagIdx *x = a, *y = b;
    if (x->mag != y->mag) return x->mag < y->mag ? 1 : -1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);  // ties: lower index first, deterministic
}

// Marks the top round((1-sparsity)·n) entries by |B| among B-region entries [lo, hi) into mask.
static void mask_topk_range(const float *B, size_t lo, size_t hi, float sparsity, uint8_t *mask) {
    size_t n = hi - lo, keep = (size_t)llround((1.0 - sparsity) * (double)n);
    MagIdx *m = xcalloc(n, sizeof(MagIdx), "mask ranking");
    for (size_t i = 0; i < n; i++) { m[i].mag = fabsf(B[lo + i]); m[i].idx = (uint32_t)(lo + i); }
    qsort(m, n, sizeof(MagIdx), magidx_desc);
    for (size_t i = 0; i < keep; i++) mask[m[i].idx] = 1;
    free(m);
}

// Builds a LoRI-S mask from the current (LoRI-D) B: top-k by magnitude model-wise (one global
// threshold, the official code's default), layer-wise or matrix-wise; or random (each entry kept
// with probability 1 - sparsity: NOT the paper's method, offered for comparison). Caller frees.
static uint8_t *adapter_make_mask(const Adapter *ad, MaskMode mode, float sparsity, uint64_t seed) {
    uint8_t *mask = xcalloc(ad->nB, 1, "LoRI-S mask");
    const float *B = ad->params + ad->nA;
    if (mode == MASK_RANDOM) {
        uint64_t rng = seed ^ 0x243F6A8885A308D3ull;
        for (size_t i = 0; i < ad->nB; i++) mask[i] = rng_uniform(&rng) >= sparsity;
    } else if (mode == MASK_MODEL) {
        mask_topk_range(B, 0, ad->nB, sparsity, mask);
    } else if (mode == MASK_MATRIX) {
        for (int s = 0; s < ad->nslots; s++)
            mask_topk_range(B, ad->b_off[s], ad->b_off[s] + (size_t)ad->slot_out[s] * ad->cfg.rank, sparsity, mask);
    } else { // MASK_LAYER: slots of one layer are contiguous in the B region
        for (int l = 0; l < ad->L; l++) {
            size_t lo = (size_t)-1, hi = 0;
            for (int t = 0; t < NUM_TARGETS; t++) {
                int s = ad->slot_of[l][t];
                if (s < 0) continue;
                if (ad->b_off[s] < lo) lo = ad->b_off[s];
                size_t e = ad->b_off[s] + (size_t)ad->slot_out[s] * ad->cfg.rank;
                if (e > hi) hi = e;
            }
            if (hi > 0) mask_topk_range(B, lo, hi, sparsity, mask);
        }
    }
    return mask;
}

// ----------------------------------------------------------------------------
// VARIANT (PLoRA): the stage boundary. Unloads (1 - m) of s·B A into the base weights, records it in
// the history, and re-initialises the adapter (plora_restart). W_of(slot) gives a slot's base weight.
//   m = 0: the plain unload: A redrawn (a fresh seed per stage), B = 0.
//   m > 0: A and B are kept, scaled by sqrt(m) (PLORA_SQRT: the adapter keeps m s B A, the function is
//          preserved) or by m (PLORA_WRITEUP: it keeps m^2 s B A). A is not redrawn: the kept product
//          lives in A and B, a fresh A would drop it.
// The AdamW moments are reset at every unload, m or not (the caller does it; both backends): the
// factors have just been re-drawn or rescaled, so the moments describe parameters that are gone, and
// the paper restarts the optimizer with each stage. Bias correction restarts with them (t = 0).
static int plora_restart(Adapter *ad, float m);
static int plora_unload(Adapter *ad, float *(*W_of)(void *ctx, int layer, int target), void *ctx, float m) {
    for (int s = 0; s < ad->nslots; s++)
        adapter_fold(ad, s, W_of(ctx, ad->slot_layer[s], ad->slot_target[s]), 1.0f - m);
    return plora_restart(ad, m);
}

// Room for `stages` stages of history (the trainer reserves a run's unloads at set-up, so an unload
// allocates nothing). 0, or -1 when out of memory.
static int plora_reserve_history(Adapter *ad, int stages) {
    if (stages <= ad->hist_cap) return 0;
    float *h = realloc(ad->hist, sizeof(float) * (ad->nA + ad->nB) * (size_t)stages);
    if (!h) return -1;
    ad->hist = h;
    ad->hist_cap = stages;
    return 0;
}

// Appends the stage being unloaded to the history: A as it is, B times c = (1 - m) s, exactly the
// factors of what adapter_fold(.., 1 - m) added to the base. 0, or -1 when out of memory.
static int plora_record_stage(Adapter *ad, float m) {
    size_t n = ad->nA + ad->nB;
    if (plora_reserve_history(ad, ad->nhist + 1) != 0) return -1;
    float *st = ad->hist + n * (size_t)ad->nhist, c = (1.0f - m) * ad->scale;
    memcpy(st, ad->params, sizeof(float) * ad->nA);
    for (size_t i = 0; i < ad->nB; i++) st[ad->nA + i] = c * ad->params[ad->nA + i];
    ad->nhist++;
    return 0;
}

// The adapter's side of an unload, once (1 - m) s B A has been folded into the base (here or on a
// GPU, which copies the adapter to the host first): record the stage, then keep m s B A (sqrt) or
// m^2 s B A (writeup), or with m = 0 redraw A and zero B. 0, or -1 when out of memory.
static int plora_restart(Adapter *ad, float m) {
    if (plora_record_stage(ad, m) != 0) return -1;
    ad->stage++;
    if (m > 0) {
        float k = ad->plora_mode == PLORA_WRITEUP ? m : sqrtf(m);
        for (size_t i = 0; i < ad->nA + ad->nB; i++) ad->params[i] *= k;
    } else {
        memset(ad->params + ad->nA, 0, sizeof(float) * ad->nB);
        for (int s = 0; s < ad->nslots; s++) adapter_draw_A(ad, s, ad->cfg.seed + 1000003ull * (uint64_t)ad->stage);
    }
    return 0;
}

// Folds the history into base weights (W += c_k B_k A_k per stage and slot): what a PLoRA adapter
// loaded onto the ORIGINAL base needs before it trains on or runs as its current stage.
static void plora_fold_history(const Adapter *ad, float *(*W_of)(void *ctx, int layer, int target), void *ctx) {
    size_t n = ad->nA + ad->nB;
    int r = ad->cfg.rank;
    for (int k = 0; k < ad->nhist; k++) {
        const float *st = ad->hist + n * (size_t)k;
        for (int s = 0; s < ad->nslots; s++) {
            int in = ad->slot_in[s], o = ad->slot_out[s];
            gemm('N', 'N', o, in, r, 1.0f, st + ad->nA + ad->b_off[s], r, st + ad->a_off[s], in, 1.0f,
                 W_of(ctx, ad->slot_layer[s], ad->slot_target[s]), in);
        }
    }
}

// out = the exact LoRA of a PLoRA adapter with history on the original base: rank R = (nhist + 1) r,
// per slot A = [A_1; ...; A_K; A] (R, in) and B = [c_1 B_1 ... c_K B_K, s B] (out, R), alpha = R and
// no rsLoRA, so its scale is 1 (as merge.h's cat). Without history: a copy. -1 with a message when R
// is above the layer width (adapter.h's limit): then only the merged model (model.bin) holds the run.
static int adapter_flatten_stages(const Adapter *ad, Adapter *out, char *err, size_t errlen) {
    int r = ad->cfg.rank, K = ad->nhist, R = (K + 1) * r;
    AdapterConfig cfg = ad->cfg;
    if (K > 0) {
        if (R > ad->C) {
            snprintf(err, errlen, "this PLoRA adapter's %d stages of rank %d make an exact LoRA of rank %d, above the "
                     "layer width C = %d: no adapter of that rank exists here; use the run's merged model.bin "
                     "(or --merge-out) instead", K + 1, r, R, ad->C);
            return -1;
        }
        cfg.kind = ADAPTER_LORA; cfg.rank = R; cfg.alpha = (float)R; cfg.rslora = 0;
    }
    if (adapter_create(out, &cfg, ad->L, ad->C, err, errlen) != 0) return -1;
    size_t n = ad->nA + ad->nB;
    for (int s = 0; s < ad->nslots; s++) {
        int in = ad->slot_in[s], o = ad->slot_out[s];
        float *A = adapter_A(out, s), *B = adapter_B(out, s);
        for (int k = 0; k <= K; k++) {
            const float *src = k < K ? ad->hist + n * (size_t)k : ad->params;
            float c = k < K ? 1.0f : (K > 0 ? ad->scale : 1.0f);
            memcpy(A + (size_t)k * r * in, src + ad->a_off[s], sizeof(float) * (size_t)r * in);
            const float *Bk = src + ad->nA + ad->b_off[s];
            for (int i = 0; i < o; i++)
                for (int j = 0; j < r; j++) B[(size_t)i * R + k * r + j] = c * Bk[(size_t)i * r + j];
        }
    }
    if (K == 0 && ad->mask) adapter_set_mask(out, ad->mask, 0);
    out->stage = K > 0 ? 0 : ad->stage;
    return 0;
}

// Parses "qkv,attn_proj,fc,fc_proj" (or "all") into a bitmask; -1 on an unknown name.
static int parse_targets(const char *s) {
    if (strcmp(s, "all") == 0) return 15;
    int mask = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = -1;
        for (int t = 0; t < NUM_TARGETS; t++) if (strcmp(tok, target_names[t]) == 0) found = t;
        if (found < 0) return -1;
        mask |= 1 << found;
    }
    return mask;
}

#endif // LORA_ADAPTER_H
