/*
lora/merge.h — merging several adapters into one (lora/METHODS.md §4; what PEFT's add_weighted_adapter does).

    MergeConfig mc = {MERGE_CAT, .density = 1, .seed = 0, .svd_rank = 0};
    adapter_merge(&out, inputs, weights, n, &mc, err, errlen);   // out: a fresh LoRA adapter, scale 1

Every input has its own rank r_t, scale s_t and weight w_t; ΔW_t = s_t B_t A_t for every slot.
The result is a plain LoRA adapter (rslora off, alpha = rank, so its scale is exactly 1, as PEFT's
merged adapter) over the union of the inputs' targets; an input without a slot contributes nothing.

  cat              A = [w_1 s_1 A_1; ...; w_T s_T A_T], B = [B_1 ... B_T]: ΔW = Σ w_t s_t B_t A_t exactly,
                   rank Σ r_t.
  linear           per factor: A = Σ sign_t sqrt|w_t s_t| A_t, B = Σ sqrt|w_t s_t| B_t (the sign on A
                   only, as PEFT). Equal ranks. The product has cross terms B_t A_u.
  magnitude_prune  per factor and input: keep the top floor(density·n) entries by |x|, then linear.
  ties             the same pruning, then per entry: elected sign = sign of Σ_t x_t (0 counts as +),
                   result = Σ_{t agreeing} c_t x_t / (number agreeing, at least 1), c_t the linear factors.
  dare_linear      per factor and input: keep each entry with probability density and rescale the
                   survivors by 1/density (PEFT skipped the rescale from v0.9 to v0.18); then linear.
  dare_ties        DARE's drop and rescale, then TIES' election and disjoint mean.
  svd              ΔW = Σ w_t s_t B_t A_t truncated to svd_rank (default: the largest input rank) by
                   SVD: B = U_k S_k, A = V_kᵀ. Computed without forming ΔW: ΔW = B_cat A_cat (the cat
                   factors), QR of B_cat and of A_catᵀ (Householder, double), then a one-sided Jacobi
                   SVD of the small (Σr × Σr) core. Our choice: s_t enters once (PEFT's svd path
                   multiplies get_delta_weight, which already holds s_t, by w_t·s_t again).
The random drops of DARE come from splitmix64 seeded with (seed, input, slot, factor): reproducible.
*/
#ifndef LORA_MERGE_H
#define LORA_MERGE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../llmc/utils.h"
#include "adapter.h"

typedef enum { MERGE_CAT, MERGE_LINEAR, MERGE_TIES, MERGE_DARE_LINEAR, MERGE_DARE_TIES, MERGE_MAGNITUDE_PRUNE, MERGE_SVD, MERGE_NUM } MergeMethod;
static const char *merge_method_names[MERGE_NUM] = {"cat", "linear", "ties", "dare_linear", "dare_ties", "magnitude_prune", "svd"};

typedef struct {
    MergeMethod method;
    float density;    // ties, dare_*, magnitude_prune: fraction kept, in (0, 1]
    uint64_t seed;    // dare_*: the drop pattern
    int svd_rank;     // svd: rank of the result (0: the largest input rank)
} MergeConfig;

static int merge_method_from_name(const char *s) {
    for (int i = 0; i < MERGE_NUM; i++) if (strcmp(s, merge_method_names[i]) == 0) return i;
    return -1;
}

// ----------------------------------------------------------------------------
// per-factor operations (one factor of one slot: n entries of each of T inputs)

// Keeps the top floor(density·n) entries of x by |x| (ties: lower index first), zeroes the rest.
static void merge_magnitude_prune(float *x, size_t n, float density) {
    if (density >= 1.0f) return;
    size_t k = (size_t)((double)density * (double)n);
    MagIdx *m = xcalloc((n ? n : 1), sizeof(MagIdx), "merge");
    for (size_t i = 0; i < n; i++) { m[i].mag = fabsf(x[i]); m[i].idx = (uint32_t)i; }
    qsort(m, n, sizeof(MagIdx), magidx_desc);
    for (size_t i = k; i < n; i++) x[m[i].idx] = 0.0f;
    free(m);
}

// DARE: keeps each entry with probability density, survivors scaled by 1/density.
static void merge_dare_drop(float *x, size_t n, float density, uint64_t seed, int t, int slot, int factor) {
    if (density >= 1.0f) return;
    uint64_t rng = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)((t * 1048576 + slot) * 2 + factor + 1));
    splitmix64(&rng);
    float inv = 1.0f / density;
    for (size_t i = 0; i < n; i++) x[i] = rng_uniform(&rng) < density ? x[i] * inv : 0.0f;
}

// out = Σ c_t x_t (linear) or TIES' disjoint mean with an elected sign. xs: T arrays of n (pruned).
static void merge_combine(float *out, float *const *xs, const double *c, int T, size_t n, int ties) {
    for (size_t i = 0; i < n; i++) {
        double acc = 0;
        if (!ties) {
            for (int t = 0; t < T; t++) acc += c[t] * xs[t][i];
            out[i] = (float)acc;
            continue;
        }
        double total = 0;
        for (int t = 0; t < T; t++) total += xs[t][i];
        int elected = total >= 0 ? 1 : -1, cnt = 0;
        for (int t = 0; t < T; t++) {
            float v = xs[t][i];
            int sg = v > 0 ? 1 : v < 0 ? -1 : 0;
            if (sg == elected) { acc += c[t] * v; cnt++; }
        }
        out[i] = (float)(acc / (cnt > 0 ? cnt : 1));
    }
}

// ----------------------------------------------------------------------------
// small dense linear algebra in double, for the svd merge

// Householder QR of X (m, n), m >= n, row-major: Q (m, n) with orthonormal columns, R (n, n) upper
// triangular, X = Q R. Rank-deficient X is fine (R then has zeros on its diagonal; Q stays orthonormal).
static void merge_qr(const double *X, int m, int n, double *Q, double *R) {
    double *W = xcalloc((size_t)m * n, sizeof(double), "merge"), *v = xcalloc((size_t)m * n, sizeof(double), "merge"), *beta = xcalloc((size_t)n, sizeof(double), "merge");
    memcpy(W, X, sizeof(double) * (size_t)m * n);
    for (int k = 0; k < n; k++) {
        double norm = 0;
        for (int i = k; i < m; i++) norm += W[(size_t)i * n + k] * W[(size_t)i * n + k];
        norm = sqrt(norm);
        double *vk = v + (size_t)k * m;
        for (int i = 0; i < m; i++) vk[i] = i >= k ? W[(size_t)i * n + k] : 0.0;
        double alpha = W[(size_t)k * n + k] >= 0 ? -norm : norm;
        vk[k] -= alpha;
        double vv = 0;
        for (int i = k; i < m; i++) vv += vk[i] * vk[i];
        beta[k] = vv > 0 ? 2.0 / vv : 0.0;
        for (int j = k; j < n; j++) {  // W -= beta v (v^T W)
            double d = 0;
            for (int i = k; i < m; i++) d += vk[i] * W[(size_t)i * n + j];
            d *= beta[k];
            for (int i = k; i < m; i++) W[(size_t)i * n + j] -= d * vk[i];
        }
    }
    for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) R[(size_t)i * n + j] = j >= i ? W[(size_t)i * n + j] : 0.0;
    // Q = H_0 H_1 ... H_{n-1} applied to the first n columns of the identity
    for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) Q[(size_t)i * n + j] = i == j ? 1.0 : 0.0;
    for (int k = n - 1; k >= 0; k--) {
        const double *vk = v + (size_t)k * m;
        for (int j = 0; j < n; j++) {
            double d = 0;
            for (int i = k; i < m; i++) d += vk[i] * Q[(size_t)i * n + j];
            d *= beta[k];
            for (int i = k; i < m; i++) Q[(size_t)i * n + j] -= d * vk[i];
        }
    }
    free(W); free(v); free(beta);
}

// One-sided Jacobi (Hestenes) SVD of M (n, n): M = U diag(S) V^T, S descending. M is overwritten.
static void merge_jacobi_svd(double *M, int n, double *U, double *S, double *V) {
    for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) V[(size_t)i * n + j] = i == j ? 1.0 : 0.0;
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0;
        for (int p = 0; p < n - 1; p++) {
            for (int q = p + 1; q < n; q++) {
                double a = 0, b = 0, g = 0;
                for (int i = 0; i < n; i++) {
                    double x = M[(size_t)i * n + p], y = M[(size_t)i * n + q];
                    a += x * x; b += y * y; g += x * y;
                }
                if (g == 0 || fabs(g) <= 1e-15 * sqrt(a * b)) continue;
                off = fmax(off, fabs(g) / sqrt(a * b));
                double zeta = (b - a) / (2 * g);
                double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
                double c = 1 / sqrt(1 + t * t), s = c * t;
                for (int i = 0; i < n; i++) {
                    double x = M[(size_t)i * n + p], y = M[(size_t)i * n + q];
                    M[(size_t)i * n + p] = c * x - s * y; M[(size_t)i * n + q] = s * x + c * y;
                    x = V[(size_t)i * n + p]; y = V[(size_t)i * n + q];
                    V[(size_t)i * n + p] = c * x - s * y; V[(size_t)i * n + q] = s * x + c * y;
                }
            }
        }
        if (off < 1e-15) break;
    }
    // singular values are the column norms; sort descending (selection sort: n is small)
    int *ord = xcalloc((size_t)n, sizeof(int), "merge");
    double *norm = xcalloc((size_t)n, sizeof(double), "merge");
    for (int j = 0; j < n; j++) {
        double s2 = 0;
        for (int i = 0; i < n; i++) s2 += M[(size_t)i * n + j] * M[(size_t)i * n + j];
        norm[j] = sqrt(s2); ord[j] = j;
    }
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (norm[ord[b]] > norm[ord[a]]) { int tmp = ord[a]; ord[a] = ord[b]; ord[b] = tmp; }
    double *V2 = xcalloc((size_t)n * n, sizeof(double), "merge");
    for (int jj = 0; jj < n; jj++) {
        int j = ord[jj];
        S[jj] = norm[j];
        for (int i = 0; i < n; i++) {
            U[(size_t)i * n + jj] = norm[j] > 0 ? M[(size_t)i * n + j] / norm[j] : 0.0;
            V2[(size_t)i * n + jj] = V[(size_t)i * n + j];
        }
    }
    memcpy(V, V2, sizeof(double) * (size_t)n * n);
    free(V2); free(ord); free(norm);
}

// ----------------------------------------------------------------------------
// the merge

static int adapter_merge_flat(Adapter *out, const Adapter *const *in, const float *w, int T, const MergeConfig *mc, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (T < 1) { snprintf(err, errlen, "merge: no input adapters"); return -1; }
    if ((int)mc->method < 0 || mc->method >= MERGE_NUM) { snprintf(err, errlen, "merge: unknown method"); return -1; }
    int L = in[0]->L, C = in[0]->C, targets = 0, rsum = 0, rmax = 0, equal_ranks = 1;
    for (int t = 0; t < T; t++) {
        if (in[t]->L != L || in[t]->C != C) { snprintf(err, errlen, "merge: input %d is for L=%d C=%d, input 0 for L=%d C=%d", t + 1, in[t]->L, in[t]->C, L, C); return -1; }
        if (!isfinite(w[t])) { snprintf(err, errlen, "merge: weight %d is not finite", t + 1); return -1; }
        targets |= in[t]->cfg.targets;
        rsum += in[t]->cfg.rank;
        if (in[t]->cfg.rank > rmax) rmax = in[t]->cfg.rank;
        if (in[t]->cfg.rank != in[0]->cfg.rank) equal_ranks = 0;
    }
    MergeMethod m = mc->method;
    int pruning = m == MERGE_TIES || m == MERGE_DARE_LINEAR || m == MERGE_DARE_TIES || m == MERGE_MAGNITUDE_PRUNE;
    if (pruning && !(mc->density > 0 && mc->density <= 1)) { snprintf(err, errlen, "merge: --density must be in (0, 1] for %s", merge_method_names[m]); return -1; }
    if (m != MERGE_CAT && m != MERGE_SVD && !equal_ranks) { snprintf(err, errlen, "merge: %s needs equal ranks (use cat or svd)", merge_method_names[m]); return -1; }
    int R = m == MERGE_CAT ? rsum : m == MERGE_SVD ? (mc->svd_rank > 0 ? mc->svd_rank : rmax) : in[0]->cfg.rank;
    if (m == MERGE_SVD && rsum > C) { snprintf(err, errlen, "merge: svd needs the summed rank %d <= C = %d", rsum, C); return -1; }
    if (m == MERGE_SVD && R > rsum) R = rsum;
    AdapterConfig cfg = {.kind = ADAPTER_LORA, .rank = R, .alpha = (float)R, .rslora = 0, .dropout = in[0]->cfg.dropout,
                         .targets = targets, .init = INIT_KAIMING, .seed = in[0]->cfg.seed};
    if (R > C) { snprintf(err, errlen, "merge: the result's rank %d is above C = %d (adapter.h's limit); use svd with --svd-rank <= %d", R, C, C); return -1; }
    if (adapter_create(out, &cfg, L, C, err, errlen)) return -1;
    memset(out->params, 0, sizeof(float) * (out->nA + out->nB));
    double *cA = xcalloc((size_t)T, sizeof(double), "merge"), *cB = xcalloc((size_t)T, sizeof(double), "merge");
    for (int t = 0; t < T; t++) {
        double ws = (double)w[t] * in[t]->scale;
        cA[t] = (ws >= 0 ? 1.0 : -1.0) * sqrt(fabs(ws)); cB[t] = sqrt(fabs(ws));
    }
    for (int s = 0; s < out->nslots; s++) {
        int l = out->slot_layer[s], tg = out->slot_target[s], nin = out->slot_in[s], nout = out->slot_out[s];
        float *Ao = adapter_A(out, s), *Bo = adapter_B(out, s);
        if (m == MERGE_CAT || m == MERGE_SVD) {
            // the cat factors: A_cat (rsum, in) rows w_t s_t A_t, B_cat (out, rsum) columns B_t
            double *Ac = xcalloc((size_t)rsum * nin, sizeof(double), "merge"), *Bc = xcalloc((size_t)nout * rsum, sizeof(double), "merge");
            int off = 0;
            for (int t = 0; t < T; t++) {
                int st = in[t]->slot_of[l][tg], r = in[t]->cfg.rank;
                if (st >= 0) {
                    const float *A = adapter_A(in[t], st), *B = adapter_B(in[t], st);
                    double ws = (double)w[t] * in[t]->scale;
                    for (size_t i = 0; i < (size_t)r * nin; i++) Ac[(size_t)off * nin + i] = ws * A[i];
                    for (int o = 0; o < nout; o++) for (int k = 0; k < r; k++) Bc[(size_t)o * rsum + off + k] = B[(size_t)o * r + k];
                }
                off += r;
            }
            if (m == MERGE_CAT) {
                for (size_t i = 0; i < (size_t)rsum * nin; i++) Ao[i] = (float)Ac[i];
                for (size_t i = 0; i < (size_t)nout * rsum; i++) Bo[i] = (float)Bc[i];
            } else {
                // ΔW = Bc Ac = Qb Rb (Qa Ra)^T = Qb (Rb Ra^T) Qa^T; core = U S V^T
                int n = rsum;
                double *AcT = xcalloc((size_t)nin * n, sizeof(double), "merge");
                for (int i = 0; i < n; i++) for (int j = 0; j < nin; j++) AcT[(size_t)j * n + i] = Ac[(size_t)i * nin + j];
                double *Qb = xcalloc((size_t)nout * n, sizeof(double), "merge"), *Rb = xcalloc((size_t)n * n, sizeof(double), "merge");
                double *Qa = xcalloc((size_t)nin * n, sizeof(double), "merge"), *Ra = xcalloc((size_t)n * n, sizeof(double), "merge");
                merge_qr(Bc, nout, n, Qb, Rb);
                merge_qr(AcT, nin, n, Qa, Ra);
                double *M = xcalloc((size_t)n * n, sizeof(double), "merge"), *U = xcalloc((size_t)n * n, sizeof(double), "merge");
                double *V = xcalloc((size_t)n * n, sizeof(double), "merge"), *S = xcalloc((size_t)n, sizeof(double), "merge");
                for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
                    double d = 0;
                    for (int k = 0; k < n; k++) d += Rb[(size_t)i * n + k] * Ra[(size_t)j * n + k];
                    M[(size_t)i * n + j] = d;
                }
                merge_jacobi_svd(M, n, U, S, V);
                for (int o = 0; o < nout; o++) for (int k = 0; k < R; k++) {   // B = Qb U_k S_k
                    double d = 0;
                    for (int i = 0; i < n; i++) d += Qb[(size_t)o * n + i] * U[(size_t)i * n + k];
                    Bo[(size_t)o * R + k] = (float)(d * S[k]);
                }
                for (int k = 0; k < R; k++) for (int j = 0; j < nin; j++) {    // A = (Qa V_k)^T
                    double d = 0;
                    for (int i = 0; i < n; i++) d += Qa[(size_t)j * n + i] * V[(size_t)i * n + k];
                    Ao[(size_t)k * nin + j] = (float)d;
                }
                free(AcT); free(Qb); free(Rb); free(Qa); free(Ra); free(M); free(U); free(V); free(S);
            }
            free(Ac); free(Bc);
            continue;
        }
        // factor-wise methods (equal ranks r = R)
        for (int factor = 0; factor < 2; factor++) {
            size_t n = factor == 0 ? (size_t)R * nin : (size_t)nout * R;
            float **xs = xcalloc((size_t)T, sizeof(float *), "merge");
            for (int t = 0; t < T; t++) {
                xs[t] = xcalloc(n ? n : 1, sizeof(float), "merge");
                int st = in[t]->slot_of[l][tg];
                if (st < 0) continue;
                memcpy(xs[t], factor == 0 ? adapter_A(in[t], st) : adapter_B(in[t], st), sizeof(float) * n);
                if (m == MERGE_TIES || m == MERGE_MAGNITUDE_PRUNE) merge_magnitude_prune(xs[t], n, mc->density);
                if (m == MERGE_DARE_LINEAR || m == MERGE_DARE_TIES) merge_dare_drop(xs[t], n, mc->density, mc->seed, t, s, factor);
            }
            merge_combine(factor == 0 ? Ao : Bo, xs, factor == 0 ? cA : cB, T, n, m == MERGE_TIES || m == MERGE_DARE_TIES);
            for (int t = 0; t < T; t++) free(xs[t]);
            free(xs);
        }
    }
    free(cA); free(cB);
    return 0;
}

// Merges T adapters. A PLoRA input with a stage history enters as its exact LoRA on the original
// base (adapter.h's adapter_flatten_stages), so every input describes its change to the same base.
static int adapter_merge(Adapter *out, const Adapter *const *in, const float *w, int T, const MergeConfig *mc, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (T < 1) { snprintf(err, errlen, "merge: no input adapters"); return -1; }
    Adapter *flat = calloc((size_t)T, sizeof(Adapter));
    const Adapter **use = malloc(sizeof(Adapter *) * (size_t)T);
    if (!flat || !use) { free(flat); free(use); snprintf(err, errlen, "merge: out of memory"); return -1; }
    int rc = 0;
    for (int t = 0; t < T && rc == 0; t++) {
        use[t] = in[t];
        if (in[t]->nhist == 0) continue;
        if (adapter_flatten_stages(in[t], &flat[t], err, errlen) != 0) rc = -1;
        else use[t] = &flat[t];
    }
    if (rc == 0) rc = adapter_merge_flat(out, use, w, T, mc, err, errlen);
    for (int t = 0; t < T; t++) if (use[t] == &flat[t]) adapter_free(&flat[t]);
    free(flat); free(use);
    return rc;
}

#endif // LORA_MERGE_H
