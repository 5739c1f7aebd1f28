/*
kernels/layers.h — GPT-2's layers as plain forward/backward pairs: the clean reference math.

Written once over a scalar type `real` and included twice: by the trainer with real = float, and
by the tests with real = double, so every backward can be checked against central finite
differences computed in double precision. Set before including:
    #define real float
    #define LAYER_FN(name) name            // (the tests use name##_f64)
Shapes are given as (B,T,C) etc.; N = B*T when a layer does not care about the batch structure.
Backward functions ACCUMULATE (+=) into their gradient outputs, like llm.c, and any gradient
output may be NULL: that is how frozen weights skip their weight-gradient work.
No intrinsics here: the fast matrix product lives in kernels/gemm.h and is tested against these.
*/
#include <stddef.h>
#include <tgmath.h> // sqrt/exp/tanh/log pick the float or double version from the argument

#ifndef real
#error "define real (float or double) and LAYER_FN before including kernels/layers.h"
#endif

// ----------------------------------------------------------------------------
// token + position embedding
// out is (B,T,C); inp is (B,T) token ids; wte is (Vp,C); wpe is (maxT,C)
static void LAYER_FN(encoder_forward)(real *out, const int *inp, const real *wte, const real *wpe,
                                      int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            real *o = out + ((size_t)b * T + t) * C;
            const real *we = wte + (size_t)inp[b * T + t] * C;
            const real *pe = wpe + (size_t)t * C;
            for (int c = 0; c < C; c++) o[c] = we[c] + pe[c];
        }
    }
}

// dwte is (Vp,C), dwpe is (maxT,C), dout is (B,T,C)
static void LAYER_FN(encoder_backward)(real *dwte, real *dwpe, const real *dout, const int *inp,
                                       int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const real *d = dout + ((size_t)b * T + t) * C;
            real *dw = dwte + (size_t)inp[b * T + t] * C;
            real *dp = dwpe + (size_t)t * C;
            for (int c = 0; c < C; c++) { dw[c] += d[c]; dp[c] += d[c]; }
        }
    }
}

// ----------------------------------------------------------------------------
// LayerNorm over the last dimension, eps 1e-5 (PyTorch's default)
// out, inp are (N,C); mean, rstd are (N,) saved for the backward; weight, bias are (C,)
static void LAYER_FN(layernorm_forward)(real *out, real *mean, real *rstd, const real *inp,
                                        const real *weight, const real *bias, int N, int C) {
    const real eps = (real)1e-5;
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real m = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        real v = 0;
        for (int c = 0; c < C; c++) { real d = x[c] - m; v += d * d; }
        v /= C;
        real s = 1 / sqrt(v + eps);
        real *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (s * (x[c] - m)) * weight[c] + bias[c];
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = s;
    }
}

// dinp, dout, inp are (N,C); dweight, dbias are (C,) (NULL when frozen); dinp may be NULL
static void LAYER_FN(layernorm_backward)(real *dinp, real *dweight, real *dbias, const real *dout,
                                         const real *inp, const real *weight, const real *mean,
                                         const real *rstd, int N, int C) {
    if (dweight || dbias) { // serial over n: dweight/dbias are sums over rows, kept in a fixed order
        for (int n = 0; n < N; n++) {
            const real *d = dout + (size_t)n * C;
            const real *x = inp + (size_t)n * C;
            for (int c = 0; c < C; c++) {
                real xhat = (x[c] - mean[n]) * rstd[n];
                if (dbias) dbias[c] += d[c];
                if (dweight) dweight[c] += xhat * d[c];
            }
        }
    }
    if (!dinp) return;
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *d = dout + (size_t)n * C;
        const real *x = inp + (size_t)n * C;
        real m = mean[n], s = rstd[n];
        // dx = s * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = d * weight
        real dnorm_mean = 0, dnorm_norm_mean = 0;
        for (int c = 0; c < C; c++) {
            real xhat = (x[c] - m) * s;
            real dn = weight[c] * d[c];
            dnorm_mean += dn;
            dnorm_norm_mean += dn * xhat;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        real *di = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            real xhat = (x[c] - m) * s;
            real dn = weight[c] * d[c];
            di[c] += s * (dn - dnorm_mean - xhat * dnorm_norm_mean);
        }
    }
}

// ----------------------------------------------------------------------------
// linear layer, reference version: out = inp @ weight^T + bias
// out is (N,OC); inp is (N,C); weight is (OC,C) (PyTorch's nn.Linear layout); bias is (OC,) or NULL
static void LAYER_FN(matmul_forward_ref)(real *out, const real *inp, const real *weight, const real *bias,
                                         int N, int C, int OC) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real *o = out + (size_t)n * OC;
        for (int k = 0; k < OC; k++) {
            const real *w = weight + (size_t)k * C;
            real acc = bias ? bias[k] : 0;
            for (int c = 0; c < C; c++) acc += x[c] * w[c];
            o[k] = acc;
        }
    }
}

// dinp (N,C) += dout @ weight; dweight (OC,C) += dout^T @ inp; dbias (OC) += sum_n dout. Each may be NULL.
static void LAYER_FN(matmul_backward_ref)(real *dinp, real *dweight, real *dbias, const real *dout,
                                          const real *inp, const real *weight, int N, int C, int OC) {
    if (dinp) {
#pragma omp parallel for
        for (int n = 0; n < N; n++) {
            const real *d = dout + (size_t)n * OC;
            real *di = dinp + (size_t)n * C;
            for (int k = 0; k < OC; k++) {
                const real *w = weight + (size_t)k * C;
                real dk = d[k];
                for (int c = 0; c < C; c++) di[c] += dk * w[c];
            }
        }
    }
    if (dweight || dbias) {
#pragma omp parallel for
        for (int k = 0; k < OC; k++) {
            real *dw = dweight ? dweight + (size_t)k * C : NULL;
            real db = 0;
            for (int n = 0; n < N; n++) {
                real dk = dout[(size_t)n * OC + k];
                db += dk;
                if (dw) {
                    const real *x = inp + (size_t)n * C;
                    for (int c = 0; c < C; c++) dw[c] += dk * x[c];
                }
            }
            if (dbias) dbias[k] += db;
        }
    }
}

// ----------------------------------------------------------------------------
// causal multi-head self-attention
// inp is (B,T,3C) holding [q;k;v]; each of q,k,v is split into NH heads of hs = C/NH contiguous channels
// preatt, att are (B,NH,T,T) (scores before / after softmax, upper triangle unused); out is (B,T,C)
static void LAYER_FN(attention_forward)(real *out, real *preatt, real *att, const real *inp,
                                        int B, int T, int C, int NH) {
    int C3 = 3 * C, hs = C / NH;
    real scale = 1 / sqrt((real)hs);
#pragma omp parallel for collapse(3)
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < NH; h++) {
                const real *q = inp + ((size_t)b * T + t) * C3 + h * hs;
                real *pre = preatt + (((size_t)b * NH + h) * T + t) * T;
                real *a = att + (((size_t)b * NH + h) * T + t) * T;
                real maxv = -INFINITY;
                for (int t2 = 0; t2 <= t; t2++) {
                    const real *k = inp + ((size_t)b * T + t2) * C3 + h * hs + C;
                    real v = 0;
                    for (int i = 0; i < hs; i++) v += q[i] * k[i];
                    v *= scale;
                    pre[t2] = v;
                    if (v > maxv) maxv = v;
                }
                real sum = 0;
                for (int t2 = 0; t2 <= t; t2++) { real e = exp(pre[t2] - maxv); a[t2] = e; sum += e; }
                real inv = 1 / sum;
                for (int t2 = 0; t2 < T; t2++) a[t2] = t2 <= t ? a[t2] * inv : 0;
                real *o = out + ((size_t)b * T + t) * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const real *v = inp + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
                    real w = a[t2];
                    for (int i = 0; i < hs; i++) o[i] += w * v[i];
                }
            }
        }
    }
}

// dinp is (B,T,3C); dpreatt, datt are (B,NH,T,T) scratch (overwritten); dout is (B,T,C)
static void LAYER_FN(attention_backward)(real *dinp, real *dpreatt, real *datt, const real *dout,
                                         const real *inp, const real *att, int B, int T, int C, int NH) {
    int C3 = 3 * C, hs = C / NH;
    real scale = 1 / sqrt((real)hs);
    // parallel over (b,h): each pair owns its slice of dinp's q,k,v channels
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                const real *a = att + (((size_t)b * NH + h) * T + t) * T;
                real *da = datt + (((size_t)b * NH + h) * T + t) * T;
                real *dpre = dpreatt + (((size_t)b * NH + h) * T + t) * T;
                const real *d = dout + ((size_t)b * T + t) * C + h * hs;
                // out = sum_t2 a[t2] v[t2]
                for (int t2 = 0; t2 <= t; t2++) {
                    const real *v = inp + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
                    real *dv = dinp + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
                    real acc = 0;
                    for (int i = 0; i < hs; i++) { acc += v[i] * d[i]; dv[i] += a[t2] * d[i]; }
                    da[t2] = acc;
                }
                // softmax: dpre = a * (da - sum(a * da))
                real dot = 0;
                for (int t2 = 0; t2 <= t; t2++) dot += a[t2] * da[t2];
                for (int t2 = 0; t2 <= t; t2++) dpre[t2] = a[t2] * (da[t2] - dot);
                // pre = scale * q . k
                const real *q = inp + ((size_t)b * T + t) * C3 + h * hs;
                real *dq = dinp + ((size_t)b * T + t) * C3 + h * hs;
                for (int t2 = 0; t2 <= t; t2++) {
                    const real *k = inp + ((size_t)b * T + t2) * C3 + h * hs + C;
                    real *dk = dinp + ((size_t)b * T + t2) * C3 + h * hs + C;
                    real g = dpre[t2] * scale;
                    for (int i = 0; i < hs; i++) { dq[i] += k[i] * g; dk[i] += q[i] * g; }
                }
            }
        }
    }
}

// ----------------------------------------------------------------------------
// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
#define GELU_SCALE 0.7978845608028654 // sqrt(2/pi)
static void LAYER_FN(gelu_forward)(real *out, const real *inp, size_t N) {
#pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        real x = inp[i];
        real cube = (real)0.044715 * x * x * x;
        out[i] = (real)0.5 * x * (1 + tanh((real)GELU_SCALE * (x + cube)));
    }
}

static void LAYER_FN(gelu_backward)(real *dinp, const real *inp, const real *dout, size_t N) {
#pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        real x = inp[i];
        real u = (real)GELU_SCALE * (x + (real)0.044715 * x * x * x);
        real th = tanh(u);
        real sech2 = 1 - th * th;
        real local = (real)0.5 * (1 + th) + (real)0.5 * x * sech2 * (real)GELU_SCALE * (1 + 3 * (real)0.044715 * x * x);
        dinp[i] += local * dout[i];
    }
}

// ----------------------------------------------------------------------------
// residual connection: out = a + b, all (N,)
static void LAYER_FN(residual_forward)(real *out, const real *a, const real *b, size_t N) {
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}
static void LAYER_FN(residual_backward)(real *da, real *db, const real *dout, size_t N) {
    for (size_t i = 0; i < N; i++) { da[i] += dout[i]; db[i] += dout[i]; }
}

// ----------------------------------------------------------------------------
// softmax + cross-entropy over the real vocabulary V (the padded columns V..Vp-1 are ignored)
// logits, probs are (N,Vp); targets is (N,); losses is (N,): -log p[target]
static void LAYER_FN(softmax_crossentropy_forward)(real *losses, real *probs, const real *logits,
                                                   const int *targets, int N, int V, int Vp) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *lg = logits + (size_t)n * Vp;
        real *p = probs + (size_t)n * Vp;
        real maxv = -INFINITY;
        for (int i = 0; i < V; i++) if (lg[i] > maxv) maxv = lg[i];
        real sum = 0;
        for (int i = 0; i < V; i++) { p[i] = exp(lg[i] - maxv); sum += p[i]; }
        for (int i = 0; i < V; i++) p[i] /= sum;
        for (int i = V; i < Vp; i++) p[i] = 0;
        // log-sum-exp form: accurate even when p[target] underflows
        losses[n] = maxv + log(sum) - lg[targets[n]];
    }
}

// dlogits (N,Vp) += (probs - onehot(target)) * dlosses[n]; padded columns get no gradient
static void LAYER_FN(softmax_crossentropy_backward)(real *dlogits, const real *dlosses, const real *probs,
                                                    const int *targets, int N, int V, int Vp) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        real *dl = dlogits + (size_t)n * Vp;
        const real *p = probs + (size_t)n * Vp;
        real d = dlosses[n];
        if (d == 0) continue;
        for (int i = 0; i < V; i++) dl[i] += p[i] * d;
        dl[targets[n]] -= d;
    }
}

// ----------------------------------------------------------------------------
// the adapter's low-rank path, y += s * B A drop(x): shared by LoRA, LoRI and PeriodicLoRA.
// x is (N,in); A is (r,in); B is (out,r); u is (N,r) = drop(x) A^T, saved for the backward;
// y is (N,out). drop is NULL (no dropout) or (N,in) with entries 0 or 1/(1-p).
static void LAYER_FN(lowrank_forward)(real *y, real *u, const real *x, const real *A, const real *B,
                                      const real *drop, real s, int N, int in, int out, int r) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const real *xn = x + (size_t)n * in;
        const real *dn = drop ? drop + (size_t)n * in : NULL;
        real *un = u + (size_t)n * r;
        for (int j = 0; j < r; j++) {
            const real *a = A + (size_t)j * in;
            real acc = 0;
            if (dn) { for (int c = 0; c < in; c++) acc += xn[c] * dn[c] * a[c]; }
            else    { for (int c = 0; c < in; c++) acc += xn[c] * a[c]; }
            un[j] = acc;
        }
        real *yn = y + (size_t)n * out;
        for (int o = 0; o < out; o++) {
            const real *bo = B + (size_t)o * r;
            real acc = 0;
            for (int j = 0; j < r; j++) acc += bo[j] * un[j];
            yn[o] += s * acc;
        }
    }
}

// dB (out,r) += s dy^T u; du = s dy B (N,r) scratch; dA (r,in) += du^T drop(x) (NULL: A frozen);
// dx (N,in) += (du A) * drop (NULL: no input gradient needed)
static void LAYER_FN(lowrank_backward)(real *dx, real *dA, real *dB, real *du, const real *dy,
                                       const real *x, const real *u, const real *A, const real *B,
                                       const real *drop, real s, int N, int in, int out, int r) {
#pragma omp parallel for
    for (int o = 0; o < out; o++) {
        real *dbo = dB + (size_t)o * r;
        for (int n = 0; n < N; n++) {
            real g = s * dy[(size_t)n * out + o];
            const real *un = u + (size_t)n * r;
            for (int j = 0; j < r; j++) dbo[j] += g * un[j];
        }
    }
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        real *dun = du + (size_t)n * r;
        const real *dyn = dy + (size_t)n * out;
        for (int j = 0; j < r; j++) dun[j] = 0;
        for (int o = 0; o < out; o++) {
            real g = s * dyn[o];
            const real *bo = B + (size_t)o * r;
            for (int j = 0; j < r; j++) dun[j] += g * bo[j];
        }
        if (dx) {
            real *dxn = dx + (size_t)n * in;
            const real *dn = drop ? drop + (size_t)n * in : NULL;
            for (int j = 0; j < r; j++) {
                const real *a = A + (size_t)j * in;
                real g = dun[j];
                if (dn) { for (int c = 0; c < in; c++) dxn[c] += g * a[c] * dn[c]; }
                else    { for (int c = 0; c < in; c++) dxn[c] += g * a[c]; }
            }
        }
    }
    if (dA) {
#pragma omp parallel for
        for (int j = 0; j < r; j++) {
            real *daj = dA + (size_t)j * in;
            for (int n = 0; n < N; n++) {
                real g = du[(size_t)n * r + j];
                const real *xn = x + (size_t)n * in;
                const real *dn = drop ? drop + (size_t)n * in : NULL;
                if (dn) { for (int c = 0; c < in; c++) daj[c] += g * xn[c] * dn[c]; }
                else    { for (int c = 0; c < in; c++) daj[c] += g * xn[c]; }
            }
        }
    }
}
