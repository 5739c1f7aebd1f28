/*
llmc/optim.h — AdamW over groups of trainable values, and llm.c's learning-rate schedules.

A group is a whole tensor, an adapter factor, or the kept entries of LoRI-S's B (an index list):
entries outside every group never move, which is how masked entries of B stay exactly 0.

The trainable entries are numbered 0..total-1 in group order. ZeRO-1 (data parallel, -z 1): a rank
keeps the moments of its shard [lo, hi) of that numbering only, and adamw_step updates only those
entries; the caller sums the gradients of the shard over the ranks first and shares the updated
values afterwards (train_gpt2.c's backend, with llmc/dist.h). Unsharded, lo = 0 and hi = total.
*/
#ifndef LLMC_OPTIM_H
#define LLMC_OPTIM_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "utils.h"
#include "model.h"

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
    size_t total;          // trainable entries
    size_t lo, hi;         // the shard whose moments this process keeps (ZeRO-1); else 0, total
    float *m, *v;          // first and second moments of entries lo..hi-1 (m[i - lo])
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
    o->lo = 0; o->hi = o->total;
    o->m = xcalloc(o->total, sizeof(float), "optimizer m");
    o->v = xcalloc(o->total, sizeof(float), "optimizer v");
    o->beta1 = 0.9f; o->beta2 = 0.999f; o->eps = 1e-8f; o->t = 0;
}

// ZeRO-1: keep (zeroed) moments for entries [lo, hi) only
static void adamw_shard(AdamW *o, size_t lo, size_t hi) {
    free(o->m); free(o->v);
    o->lo = lo; o->hi = hi;
    o->m = xcalloc(hi > lo ? hi - lo : 1, sizeof(float), "optimizer m (shard)");
    o->v = xcalloc(hi > lo ? hi - lo : 1, sizeof(float), "optimizer v (shard)");
}
static int adamw_sharded(const AdamW *o) { return o->lo != 0 || o->hi != o->total; }

static void adamw_reset_moments(AdamW *o) {
    memset(o->m, 0, (o->hi - o->lo) * sizeof(float));
    memset(o->v, 0, (o->hi - o->lo) * sizeof(float));
    o->t = 0;
}

static void adamw_free(AdamW *o) { free(o->m); free(o->v); memset(o, 0, sizeof(*o)); }

// Sum of squares of the trainable gradients numbered [lo, hi) (double accumulation, fixed order).
static double adamw_grad_sumsq(const AdamW *o, size_t lo, size_t hi) {
    double s = 0;
    size_t base = 0;
    for (int k = 0; k < o->ngroups; base += o->groups[k].n, k++) {
        const OptGroup *gr = &o->groups[k];
        if (hi <= base || lo >= base + gr->n) continue;
        size_t a = lo > base ? lo - base : 0, b = hi < base + gr->n ? hi - base : gr->n;
        for (size_t i = a; i < b; i++) { double v = gr->g[gr->idx ? gr->idx[i] : i]; s += v * v; }
    }
    return s;
}
// Global L2 norm of the trainable gradients.
static float adamw_grad_norm(const AdamW *o) { return (float)sqrt(adamw_grad_sumsq(o, 0, o->total)); }

// One AdamW step (decoupled weight decay, PyTorch's and llm.c's form):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr (mhat / (sqrt(vhat) + eps) + wd p)
// `gscale` multiplies every gradient first (gradient clipping). Entries not in a group never move:
// that is how LoRI-S keeps masked entries of B exactly 0.
static void adamw_step(AdamW *o, float lr, float wd, float gscale) {
    o->t++;
    float bc1 = 1.0f - powf(o->beta1, (float)o->t), bc2 = 1.0f - powf(o->beta2, (float)o->t);
    size_t base = 0;
    for (int k = 0; k < o->ngroups; base += o->groups[k].n, k++) {
        const OptGroup *gr = &o->groups[k];
        float decay = gr->decay ? wd : 0.0f;
        // this group's entries within the shard: i in [a, b), moments at base + i - lo
        if (o->hi <= base || o->lo >= base + gr->n) continue;
        size_t a = o->lo > base ? o->lo - base : 0, b = o->hi < base + gr->n ? o->hi - base : gr->n;
        float *mm = o->m + (base + a - o->lo), *vv = o->v + (base + a - o->lo);
#pragma omp parallel for
        for (size_t i = a; i < b; i++) {
            size_t j = gr->idx ? gr->idx[i] : i;
            float g = gr->g[j] * gscale;
            float mi = o->beta1 * mm[i - a] + (1.0f - o->beta1) * g;
            float vi = o->beta2 * vv[i - a] + (1.0f - o->beta2) * g * g;
            mm[i - a] = mi; vv[i - a] = vi;
            float mhat = mi / bc1, vhat = vi / bc2;
            gr->p[j] -= lr * (mhat / (sqrtf(vhat) + o->eps) + decay * gr->p[j]);
        }
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

#endif // LLMC_OPTIM_H
