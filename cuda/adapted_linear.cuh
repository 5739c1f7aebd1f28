/*
cuda/adapted_linear.cuh — the adapted linear layer on the GPU, forward and backward:

    y = x W^T + b + s (drop(x) A^T) B^T          x (N, in), W (out, in), A (r, in), B (out, r)

and its gradients dx = dy W + s (dy B) A (times the dropout mask), dB = s dy^T u with u = drop(x) A^T,
dA = s (dy B)^T drop(x); dW = dy^T x and db = colsum(dy) only where the base trains.

Two executions of the same math:
  - with dropout: the plain one, two skinny products forward (u, then y += s u B^T) and four
    backward (dB, du = s dy B, dA, dx += du A), the dropout masks the CPU trainer's draws;
  - without (kcat): the low-rank factor rides inside the layer's own products. The input keeps spare
    columns holding s u (activations.cuh) and the weight is kept once more as [W | B], so the forward
    is one product over K = in + r, y = [x | s u] [W | B]^T + b, and dB = dy^T (s u) reads s u back.
    Backward, qkv's and fc's input-gradient product over [W | B] also yields dy B in dx's spare
    columns (they are much wider out than in: the extra columns are nearly free); attn_proj's and
    fc_proj's, whose output gradient is the residual stream's, run over [W ; A] with du = s dy B in the
    residual gradient's spare columns (resid_backward), fc_proj's with the GELU backward in the
    product's epilogue in bf16.
Every function takes the layer (l, target t) and finds its adapter slot, if any; results go to the
arguments, never to state.
*/
#pragma once
#include "common.cuh"
#include "gemm.cuh"
#include "kernels.cuh"
#include "params.cuh"
#include "profile.cuh"

// Counts the weight-gradient products of the base model the trainer enqueues (captured once into
// a CUDA graph, or per eager step): a frozen base must leave it at 0 (tested).
static long long g_gpu_base_weight_grad_calls = 0;

// what every product of a layer needs
template <typename T> struct LinearCtx {
    GemmContext *gc;
    GPUAdapter<T> *ad;
    Profiler *prof;
    cudaStream_t st;
    int N, num_sms;
};

// out (N,OC) = inp (N,Cin; row stride ldin) W^T + bias, plus the adapter's low-rank term of slot (l,t).
// gout != NULL asks for gout (row stride ldgo) = gelu(out) too: in the product's epilogue (bf16, returns
// true), else the caller runs the GELU kernel (returns false).
template <typename T>
bool linear_forward(const LinearCtx<T> &x, int l, int t, T *out, const T *inp, long ldin, const T *W, const T *bias, int Cin,
                    int OC, T *gout = nullptr, long ldgo = 0) {
    constexpr bool is_bf16 = std::is_same<T, bf16>::value;
    GPUAdapter<T> &a = *x.ad;
    int s = a.slot(l, t), N = x.N;
    bool epi = gout && is_bf16;
    T *D = epi ? gout : out, *aux = epi ? out : nullptr;
    long ldD = epi ? ldgo : OC;
    if (s >= 0 && a.kcat) { // s u into inp's spare columns, then one product
        prof_mark(*x.prof, PC_LORA);
        T *su = const_cast<T *>(inp) + Cin;
        gemm<T, T>(x.gc, 'N', 'T', N, a.rank, Cin, a.scale, inp, ldin, a.A(s), Cin, 0.0f, su, ldin);
        prof_mark(*x.prof, PC_MATMUL);
        gemm<T, T>(x.gc, 'N', 'T', N, OC, Cin + a.rank, 1.0f, inp, ldin, a.slot_wb[s], Cin + a.rp, 0.0f, D, ldD, bias, aux, OC);
        a.slot_dropped[s] = 0;
        return epi;
    }
    prof_mark(*x.prof, PC_MATMUL);
    if (s < 0) {
        gemm<T, T>(x.gc, 'N', 'T', N, OC, Cin, 1.0f, inp, ldin, W, Cin, 0.0f, D, ldD, bias, aux, OC);
        return epi;
    }
    gemm<T, T>(x.gc, 'N', 'T', N, OC, Cin, 1.0f, inp, ldin, W, Cin, 0.0f, out, OC, bias);
    prof_mark(*x.prof, PC_LORA);
    int r = a.rank;
    T *us = a.u + (size_t)s * N * r;
    const T *xin = inp;
    a.slot_dropped[s] = a.dropout > 0 && a.training;
    if (a.slot_dropped[s]) { // inverted dropout on the adapter's input, the CPU trainer's draws
        a.slot_rng[s] = a.drop_state;
        float keep = 1.0f - a.dropout;
        long n = (long)N * Cin;
        dropout_apply_kernel<<<std::min(ceil_div(n, 256), 16 * x.num_sms), 256, 0, x.st>>>(a.xd, inp, n, a.drop_state, 0, keep,
                                                                                          1.0f / keep);
        CUDA_LAUNCH_CHECK();
        a.drop_state += (uint64_t)n * 0x9E3779B97F4A7C15ull;
        xin = a.xd;
    }
    gemm<T, T>(x.gc, 'N', 'T', N, r, Cin, 1.0f, xin, a.slot_dropped[s] ? Cin : ldin, a.A(s), Cin, 0.0f, us, r); // u = drop(x) A^T
    gemm<T, T>(x.gc, 'N', 'T', N, OC, r, a.scale, us, r, a.B(s), r, 1.0f, out, OC);      // out += s u B^T
    return false;
}

// full fine-tuning's weight and bias gradients of a linear: dW (OC,Cin) += dout^T inp, dbias += colsum(dout)
// (fp32; NULL when frozen). dout has row stride ldd (the bias sum needs it contiguous: ldd == OC).
template <typename T>
void base_grads(const LinearCtx<T> &x, float *dW, float *db, const T *dout, long ldd, const T *inp, long ldin, int Cin, int OC) {
    prof_mark(*x.prof, PC_WGRAD);
    if (dW) {
        gemm<T, float>(x.gc, 'T', 'N', OC, Cin, x.N, 1.0f, dout, ldd, inp, ldin, 1.0f, dW, Cin);
        g_gpu_base_weight_grad_calls++;
    }
    if (db) bias_backward(db, dout, x.N, OC, x.st);
}

// The adapter's input-gradient term du A of a linear, left to the caller to fold into the GELU
// backward: du (N, r; row stride ld) times `scale`, A the slot's fp32 master (r, in). du NULL: none.
template <typename T> struct LowRankTerm {
    const T *du = nullptr;
    long ld = 0;
    float scale = 1.0f;
    const float *A = nullptr;
};

// dinp (N,Cin; row stride ldi) = dout W (NULL: not needed); dW, dbias as base_grads; then the adapter:
// dB += s dout^T u, du = s dout B, dA += du^T drop(x), dinp += (du A) * drop. dout's row stride is ldd,
// inp's ldin. Where the layer keeps [W | B] and is much wider out than in (qkv, fc), one product
// gives [dinp | dout B]: du is read back from dinp's spare columns (then unscaled: the scale goes into
// the products that use it). fold_into_gelu: instead of dinp += du A, return that term (kcat only:
// fc_proj's in fp32, which the GELU backward kernel then takes; see gelu_backward_lowrank).
template <typename T>
LowRankTerm<T> linear_backward(const LinearCtx<T> &x, int l, int t, T *dinp, long ldi, float *dW, float *db, const T *dout,
                               long ldd, const T *inp, long ldin, const T *W, int Cin, int OC, bool fold_into_gelu = false) {
    GPUAdapter<T> &a = *x.ad;
    int s = a.slot(l, t), N = x.N;
    LowRankTerm<T> term;
    bool wide = dinp && s >= 0 && a.kcat && ldi >= Cin + a.rank && OC >= 2 * Cin;
    prof_mark(*x.prof, PC_MATMUL);
    if (wide) gemm<T, T>(x.gc, 'N', 'N', N, Cin + a.rank, OC, 1.0f, dout, ldd, a.slot_wb[s], Cin + a.rp, 0.0f, dinp, ldi);
    else if (dinp) gemm<T, T>(x.gc, 'N', 'N', N, Cin, OC, 1.0f, dout, ldd, W, Cin, 0.0f, dinp, ldi);
    base_grads(x, dW, db, dout, ldd, inp, ldin, Cin, OC);
    if (s < 0) return term;
    prof_mark(*x.prof, PC_LORA);
    int r = a.rank;
    const T *us = a.kcat ? inp + Cin : a.u + (size_t)s * N * r; // s u sits in inp's spare columns
    long ldu = a.kcat ? ldin : r;
    float keep = 1.0f - a.dropout;
    long n = (long)N * Cin;
    int blocks = std::min(ceil_div(n, 256), 16 * x.num_sms);
    gemm<T, float>(x.gc, 'T', 'N', OC, r, N, a.kcat ? 1.0f : a.scale, dout, ldd, us, ldu, 1.0f, a.dB(s), r);
    const T *dus = a.du; // du = dus * dsc
    long lddu = r;
    float dsc = 1.0f;
    if (wide) { dus = dinp + Cin; lddu = ldi; dsc = a.scale; }
    else gemm<T, T>(x.gc, 'N', 'N', N, r, OC, a.scale, dout, ldd, a.B(s), r, 0.0f, a.du, r);
    if (a.trains_A) {
        const T *xin = inp;
        if (a.slot_dropped[s]) {
            dropout_apply_kernel<<<blocks, 256, 0, x.st>>>(a.xd, inp, n, a.slot_rng[s], 0, keep, 1.0f / keep);
            CUDA_LAUNCH_CHECK();
            xin = a.xd;
        }
        gemm<T, float>(x.gc, 'T', 'N', r, Cin, N, dsc, dus, lddu, xin, a.slot_dropped[s] ? Cin : ldin, 1.0f, a.dA(s), Cin);
    }
    if (!dinp) return term;
    if (fold_into_gelu && !a.slot_dropped[s]) {
        term.du = dus; term.ld = lddu; term.scale = dsc; term.A = a.ab32 + a.a_off[s];
        return term;
    }
    if (a.slot_dropped[s]) { // (no dropout with [W | B]: ldi == Cin, dsc == 1 here)
        gemm<T, T>(x.gc, 'N', 'N', N, Cin, r, 1.0f, a.du, r, a.A(s), Cin, 0.0f, a.tmp, Cin);
        dropout_add_kernel<<<blocks, 256, 0, x.st>>>(dinp, a.tmp, n, a.slot_rng[s], 0, keep, 1.0f / keep);
        CUDA_LAUNCH_CHECK();
    } else {
        gemm<T, T>(x.gc, 'N', 'N', N, Cin, r, dsc, dus, lddu, a.A(s), Cin, 1.0f, dinp, ldi);
    }
    return term;
}

// The backward of the two products whose output gradient is the residual stream's (t = 1 attn_proj,
// t = 3 fc_proj) with the adapter's input-gradient term inside the product: du = s dres B goes into
// dres's spare columns (row stride ldr) and the weight is kept as [W ; A] (out + r, in), so
// dinp = [dres | du] [W ; A] is one product over K = C + r. fc_proj's also takes the GELU backward
// into the epilogue: dinp = gelu'(pre) * (dres W + du A), pre the GELU's input (fch, contiguous).
// Then the weight, bias and adapter gradients as linear_backward's. x: the layer's input (row stride
// ldx, spare columns holding s u). Returns false (nothing done) where this does not apply: attn_proj
// without an adapter, an adapter with dropout, fc_proj in fp32 (no DGELU epilogue).
template <typename T>
bool resid_backward(const LinearCtx<T> &c, int l, int t, T *dinp, long ldi, float *dW, float *db, T *dres, long ldr,
                    const T *x, long ldx, const T *W, const T *pre, int Cin, int OC) {
    constexpr bool is_bf16 = std::is_same<T, bf16>::value;
    GPUAdapter<T> &a = *c.ad;
    int s = a.slot(l, t), N = c.N, r = a.rank;
    bool gelu = t == 3;
    if ((gelu && !is_bf16) || (!gelu && s < 0) || (s >= 0 && !a.slot_wa[s])) return false;
    if (!gelu) pre = nullptr;
    if (s >= 0) { // du = s dres B into dres's spare columns
        prof_mark(*c.prof, PC_LORA);
        gemm<T, T>(c.gc, 'N', 'N', N, r, OC, a.scale, dres, ldr, a.B(s), r, 0.0f, dres + OC, ldr);
    }
    prof_mark(*c.prof, PC_MATMUL);
    if (dinp) {
        if (s >= 0) gemm<T, T>(c.gc, 'N', 'N', N, Cin, OC + r, 1.0f, dres, ldr, a.slot_wa[s], Cin, 0.0f, dinp, ldi, nullptr, (T *)pre, Cin, gelu);
        else gemm<T, T>(c.gc, 'N', 'N', N, Cin, OC, 1.0f, dres, ldr, W, Cin, 0.0f, dinp, ldi, nullptr, (T *)pre, Cin, gelu);
    }
    base_grads(c, dW, db, dres, ldr, x, ldx, Cin, OC);
    if (s < 0) return true;
    prof_mark(*c.prof, PC_LORA);
    gemm<T, float>(c.gc, 'T', 'N', OC, r, N, 1.0f, dres, ldr, x + Cin, ldx, 1.0f, a.dB(s), r);                 // dB += dres^T (s u)
    if (a.trains_A) gemm<T, float>(c.gc, 'T', 'N', r, Cin, N, 1.0f, dres + OC, ldr, x, ldx, 1.0f, a.dA(s), Cin); // dA += du^T x
    return true;
}
