/*
kernels/fast.h — fast float versions of the non-matmul layers of kernels/layers.h.

Same math, same shapes, same accumulate-into-gradients contract; what changes:
  - exp/tanh come from a vectorisable polynomial (fast_expf: relative error < 2e-7 on the range
    used) instead of libm's scalar calls, which dominated GELU and the softmaxes;
  - dot products and row sums use `#pragma omp simd reduction`, so they vectorise without
    -ffast-math (the summation order changes, deterministically);
  - each function is compiled for AVX-512, AVX2 and baseline x86-64 (GCC/Clang target_clones) and
    the loader picks the best one the CPU has: detected at run time, never assumed.
The reference versions stay the definition; test_kernels/test_gpt2 check these against them on
awkward shapes (T = 1, B = 1, sizes that are not multiples of the vector width).
*/
#ifndef KERNELS_FAST_H
#define KERNELS_FAST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__SANITIZE_ADDRESS__) && !defined(NO_TARGET_CLONES)
#define FAST_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FAST_CLONES
#endif

// exp(x) for float x: 2^k * p(r), x = k ln2 + r, |r| <= ln2/2, p a degree-6 Taylor polynomial
// (truncation 1.3e-8 relative); inputs are clamped to [-87, 88] (exp(-87) ~ 1.6e-38).
static inline float fast_expf(float x_in) {
    float x = x_in < -87.0f ? -87.0f : (x_in > 88.0f ? 88.0f : x_in);
    x = x == x ? x : 0.0f; // NaN: computed on 0 (no NaN -> int conversion), returned as NaN below
    float kf = nearbyintf(x * 1.44269504088896341f);
    float r = x - kf * 0.693145751953125f;   // ln2 split in two for an exact product
    r = r - kf * 1.428606765330187e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    int32_t k = (int32_t)kf;
    union { int32_t i; float f; } s = {(k + 127) << 23};
    return x_in == x_in ? p * s.f : x_in;
}

// tanh(u) = 1 - 2 / (exp(2u) + 1): absolute error ~1e-7 everywhere, saturates cleanly
static inline float fast_tanhf(float u) { return 1.0f - 2.0f / (fast_expf(2.0f * u) + 1.0f); }

#define FAST_GELU_SCALE 0.7978845608028654f

FAST_CLONES
static void gelu_forward_fast(float *out, const float *inp, size_t N) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + fast_tanhf(FAST_GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

FAST_CLONES
static void gelu_backward_fast(float *dinp, const float *inp, const float *dout, size_t N) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        float th = fast_tanhf(FAST_GELU_SCALE * (x + 0.044715f * x * x * x));
        float local = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * FAST_GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += local * dout[i];
    }
}

FAST_CLONES
static void layernorm_forward_fast(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                   const float *bias, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float m = 0, v = 0;
#pragma omp simd reduction(+ : m)
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) { float d = x[c] - m; v += d * d; }
        v /= C;
        float s = 1.0f / sqrtf(v + 1e-5f);
        float *o = out + (size_t)n * C;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (s * (x[c] - m)) * weight[c] + bias[c];
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = s;
    }
}

FAST_CLONES
static void layernorm_backward_fast(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                    const float *weight, const float *mean, const float *rstd, int N, int C) {
    if (dweight || dbias) { // rows in a fixed order (deterministic); each row vectorised over c
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            if (dbias) {
#pragma omp simd
                for (int c = 0; c < C; c++) dbias[c] += d[c];
            }
            if (dweight) {
#pragma omp simd
                for (int c = 0; c < C; c++) dweight[c] += (x[c] - m) * s * d[c];
            }
        }
    }
    if (!dinp) return;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
        float m = mean[n], s = rstd[n], a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
        for (int c = 0; c < C; c++) { float dn = weight[c] * d[c]; a += dn; b += dn * (x[c] - m) * s; }
        a /= C; b /= C;
        float *di = dinp + (size_t)n * C;
#pragma omp simd
        for (int c = 0; c < C; c++) di[c] += s * (weight[c] * d[c] - a - (x[c] - m) * s * b);
    }
}

// Causal attention, as attention_forward/backward in kernels/layers.h, as small matrix products
// per (batch, head) on kernels/gemm.h's microkernels (gemm_serial: one thread each, the loop over
// (b,h) is the parallel one). The scores are computed in blocks of ATT_RB query rows, each against
// the keys up to the block's last row, so the causal upper triangle costs at most one block:
//   forward   pre[rows, :r1] = scale q[rows] k[:r1]^T;  att = softmax over t2 <= t (0 above);
//             out[rows] = att[rows, :r1] v[:r1]
//   backward  datt[rows, :r1] = dout[rows] v[:r1]^T;  dpre = att (datt - sum_t2 att datt) (0 above);
//             dq[rows] += scale dpre[rows, :r1] k[:r1];  for key blocks [j0,j1):
//             dk[j0:j1] += scale dpre[j0:, j0:j1]^T q[j0:];  dv[j0:j1] += att[j0:, j0:j1]^T dout[j0:]
// (the backward relies on att being 0 above the diagonal, as both forwards leave it). preatt's
// upper triangle holds scores of masked pairs, unused as in the reference.
enum { ATT_RB = 48 }; // a multiple of every microkernel's row count (12, 6, 4); 24..72 measure alike

// The attention kernels' scratch: one block per thread, allocated once before training (never in a
// step) by attention_work_alloc for the largest T and thread count it will run with; free() it.
static size_t attention_work_floats(int T, int hs) {
    int n = T > hs ? T : hs;
    return (gemm_serial_work(n, n) + 15) / 16 * 16; // whole 64-byte lines per thread
}
static float *attention_work_alloc(int T, int hs, int nthreads) {
    size_t bytes = attention_work_floats(T, hs) * sizeof(float) * (size_t)(nthreads > 0 ? nthreads : 1);
    return aligned_alloc(64, bytes);
}
static float *att_work(float *work, int T, int hs) {
#ifdef _OPENMP
    return work + attention_work_floats(T, hs) * (size_t)omp_get_thread_num();
#else
    return work;
#endif
}

FAST_CLONES
// work: attention_work_alloc(T, C / NH, threads) floats
static void attention_forward_fast(float *out, float *preatt, float *att, const float *inp, int B, int T, int C, int NH,
                                   float *workspace) {
    int C3 = 3 * C, hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    const gemm_impl *im = gemm_select();
#pragma omp parallel
    {
        float *work = att_work(workspace, T, hs);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const float *q = inp + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
                float *pre = preatt + ((size_t)b * NH + h) * T * T, *a = att + ((size_t)b * NH + h) * T * T;
                float *o = out + (size_t)b * T * C + h * hs;
                for (int r0 = 0; r0 < T; r0 += ATT_RB) {
                    int r1 = r0 + ATT_RB < T ? r0 + ATT_RB : T;
                    gemm_serial(im, 'N', 'T', r1 - r0, r1, hs, scale, q + (size_t)r0 * C3, C3, k, C3, 0.0f, pre + (size_t)r0 * T, T, work);
                    for (int t = r0; t < r1; t++) {
                        const float *p = pre + (size_t)t * T;
                        float *ar = a + (size_t)t * T;
                        float maxv = -INFINITY;
#pragma omp simd reduction(max : maxv)
                        for (int t2 = 0; t2 <= t; t2++) maxv = p[t2] > maxv ? p[t2] : maxv;
                        float sum = 0;
#pragma omp simd reduction(+ : sum)
                        for (int t2 = 0; t2 <= t; t2++) { float e = fast_expf(p[t2] - maxv); ar[t2] = e; sum += e; }
                        float inv = 1.0f / sum;
#pragma omp simd
                        for (int t2 = 0; t2 <= t; t2++) ar[t2] *= inv;
                        for (int t2 = t + 1; t2 < T; t2++) ar[t2] = 0;
                    }
                    gemm_serial(im, 'N', 'N', r1 - r0, hs, r1, 1.0f, a + (size_t)r0 * T, T, v, C3, 0.0f, o + (size_t)r0 * C, C, work);
                }
            }
        }
    }
}

FAST_CLONES
static void attention_backward_fast(float *dinp, float *dpreatt, float *datt, const float *dout, const float *inp,
                                    const float *att, int B, int T, int C, int NH, float *workspace) {
    int C3 = 3 * C, hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    const gemm_impl *im = gemm_select();
#pragma omp parallel
    {
        float *work = att_work(workspace, T, hs);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                size_t off = (size_t)b * T * C3 + h * hs;
                const float *q = inp + off, *k = q + C, *v = q + 2 * C;
                float *dq = dinp + off, *dk = dq + C, *dv = dq + 2 * C;
                const float *a = att + ((size_t)b * NH + h) * T * T, *d = dout + (size_t)b * T * C + h * hs;
                float *da = datt + ((size_t)b * NH + h) * T * T, *dpre = dpreatt + ((size_t)b * NH + h) * T * T;
                for (int r0 = 0; r0 < T; r0 += ATT_RB) {
                    int r1 = r0 + ATT_RB < T ? r0 + ATT_RB : T;
                    gemm_serial(im, 'N', 'T', r1 - r0, r1, hs, 1.0f, d + (size_t)r0 * C, C, v, C3, 0.0f, da + (size_t)r0 * T, T, work);
                    for (int t = r0; t < r1; t++) {
                        const float *ar = a + (size_t)t * T, *dar = da + (size_t)t * T;
                        float *dp = dpre + (size_t)t * T;
                        float dot = 0;
#pragma omp simd reduction(+ : dot)
                        for (int t2 = 0; t2 <= t; t2++) dot += ar[t2] * dar[t2];
#pragma omp simd
                        for (int t2 = 0; t2 <= t; t2++) dp[t2] = ar[t2] * (dar[t2] - dot);
                        for (int t2 = t + 1; t2 < r1; t2++) dp[t2] = 0;
                    }
                    gemm_serial(im, 'N', 'N', r1 - r0, hs, r1, scale, dpre + (size_t)r0 * T, T, k, C3, 1.0f, dq + (size_t)r0 * C3, C3, work);
                }
                for (int j0 = 0; j0 < T; j0 += ATT_RB) {
                    int j1 = j0 + ATT_RB < T ? j0 + ATT_RB : T;
                    gemm_serial(im, 'T', 'N', j1 - j0, hs, T - j0, scale, dpre + (size_t)j0 * T + j0, T, q + (size_t)j0 * C3, C3,
                                1.0f, dk + (size_t)j0 * C3, C3, work);
                    gemm_serial(im, 'T', 'N', j1 - j0, hs, T - j0, 1.0f, a + (size_t)j0 * T + j0, T, d + (size_t)j0 * C, C,
                                1.0f, dv + (size_t)j0 * C3, C3, work);
                }
            }
        }
    }
}

// fused softmax + cross-entropy over the real vocabulary, as in kernels/layers.h
FAST_CLONES
static void softmax_crossentropy_forward_fast(float *losses, float *probs, const float *logits, const int *targets,
                                              int N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *lg = logits + (size_t)n * Vp;
        float *p = probs + (size_t)n * Vp;
        float maxv = -INFINITY;
#pragma omp simd reduction(max : maxv)
        for (int i = 0; i < V; i++) maxv = lg[i] > maxv ? lg[i] : maxv;
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int i = 0; i < V; i++) { float e = fast_expf(lg[i] - maxv); p[i] = e; sum += e; }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int i = 0; i < V; i++) p[i] *= inv;
        for (int i = V; i < Vp; i++) p[i] = 0;
        losses[n] = maxv + logf(sum) - lg[targets[n]];
    }
}

FAST_CLONES
static void softmax_crossentropy_backward_fast(float *dlogits, const float *dlosses, const float *probs,
                                               const int *targets, int N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float d = dlosses[n];
        if (d == 0) continue;
        float *dl = dlogits + (size_t)n * Vp;
        const float *p = probs + (size_t)n * Vp;
#pragma omp simd
        for (int i = 0; i < V; i++) dl[i] += p[i] * d;
        dl[targets[n]] -= d;
    }
}

#endif // KERNELS_FAST_H
