/*
cuda/params.cuh — what trains and what it is trained with, on the GPU: the base model's parameters
(llm.c's 16 tensors), the adapter's A and B, and AdamW over whichever of them trains.

Precision. In bf16 the products read bf16 copies (pX, abX); whatever trains also has an fp32 master
(p32, ab32) with fp32 gradients (g32, gab32) and fp32 AdamW moments. The frozen base of an adapter
run exists only in bf16, except where the base absorbs the adapter (PLoRA's unload): that one keeps
its fp32 master. In fp32 the copies are the masters (pX == p32).

The adapter as the GPU sees it: slots (one per adapted linear, layer l and target t: 0 qkv,
1 attn_proj, 2 fc, 3 fc_proj), A (r, in) and B (out, r) of every slot in one buffer, every A first
(lora/adapter.h's layout). LoRI-S trains only the kept entries of B (an index list): the optimizer
reads and writes nothing else, so masked entries stay exactly 0.
*/
#pragma once
#include <math.h>
#include <string.h>
#include <algorithm>
#include <vector>
#include "common.cuh"
#include "gemm.cuh"
#include "kernels.cuh"
#include "gpt2_gpu.h"

// ----------------------------------------------------------------------------
// the parameters, in llm.c's checkpoint order (train_gpt2.c's fill_in_parameter_sizes)

enum { P_WTE, P_WPE, P_LN1W, P_LN1B, P_QKVW, P_QKVB, P_ATTPROJW, P_ATTPROJB, P_LN2W, P_LN2B, P_FCW, P_FCB, P_FCPROJW,
       P_FCPROJB, P_LNFW, P_LNFB, NUM_PARAMS };
static const int param_is_matrix_gpu[NUM_PARAMS] = {1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0};
// the four linears of a block (the adapter's targets): weight and bias tensors, out / C and in / C
static const int target_weight[4] = {P_QKVW, P_ATTPROJW, P_FCW, P_FCPROJW};
static const int target_bias[4] = {P_QKVB, P_ATTPROJB, P_FCB, P_FCPROJB};
static const int target_out[4] = {3, 1, 4, 1}, target_in[4] = {1, 1, 1, 4};

static void gpu_param_sizes(size_t *s, const GPUConfig &c) {
    size_t Vp = c.padded_vocab_size, C = c.channels, maxT = c.max_seq_len, L = c.num_layers;
    size_t v[NUM_PARAMS] = {Vp * C, maxT * C, L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C,
                            L * C, L * C, L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C, C, C};
    memcpy(s, v, sizeof(v));
}

template <typename T> struct Params {
    size_t size[NUM_PARAMS], off[NUM_PARAMS], n = 0;
    float *p32 = nullptr; // fp32 master: full fine-tuning, a base that absorbs the adapter, or fp32 mode
    T *pX = nullptr;      // what the kernels read (== p32 in fp32 mode)
    float *g32 = nullptr; // gradients: full fine-tuning only
    int C = 0;
    const T *x(int i) const { return pX + off[i]; }
    // layer l's weight (out, in) and bias (out) of target t
    size_t woff(int l, int t) const { return off[target_weight[t]] + (size_t)l * target_out[t] * target_in[t] * C * C; }
    const T *weight(int l, int t) const { return pX + woff(l, t); }
    float *weight32(int l, int t) const { return p32 + woff(l, t); }
    const T *bias(int l, int t) const { return pX + off[target_bias[t]] + (size_t)l * target_out[t] * C; }
};

// ZeRO-1 pads the parameters and their gradients to W equal shards (NCCL's reduce-scatter and
// all-gather want equal counts): GPU_ZERO_PAD (gpt2_gpu.h) entries more, zeroed and never computed on
// need32: an fp32 master; grads: full fine-tuning's gradients
template <typename T> bool params_alloc(Params<T> &p, const GPUConfig &c, bool need32, bool grads, DeviceMemory &dm) {
    constexpr bool is_bf16 = std::is_same<T, bf16>::value;
    gpu_param_sizes(p.size, c);
    p.C = c.channels;
    p.n = 0;
    for (int i = 0; i < NUM_PARAMS; i++) { p.off[i] = p.n; p.n += p.size[i]; }
    if (need32 || !is_bf16) p.p32 = dev_alloc<float>(dm, p.n + GPU_ZERO_PAD);
    p.pX = is_bf16 ? dev_alloc<T>(dm, p.n + GPU_ZERO_PAD) : reinterpret_cast<T *>(p.p32);
    if (grads) p.g32 = dev_alloc<float>(dm, p.n + GPU_ZERO_PAD);
    return !dm.err[0];
}

// host float32 -> p32 and/or pX; without an fp32 master through `stage` (a chunk of floats)
template <typename T> void params_upload(Params<T> &p, const float *host, float *stage, size_t chunk, cudaStream_t st) {
    constexpr bool is_bf16 = std::is_same<T, bf16>::value;
    if (p.p32) {
        CUDA_CHECK(cudaMemcpy(p.p32, host, p.n * sizeof(float), cudaMemcpyHostToDevice));
        if (is_bf16) cast(p.pX, p.p32, (long)p.n, st);
        return;
    }
    for (size_t i = 0; i < p.n; i += chunk) {
        size_t k = std::min(chunk, p.n - i);
        CUDA_CHECK(cudaMemcpyAsync(stage, host + i, k * sizeof(float), cudaMemcpyHostToDevice, st));
        cast(p.pX + i, stage, (long)k, st);
    }
    CUDA_CHECK(cudaStreamSynchronize(st));
}
template <typename T> void params_download(const Params<T> &p, float *host, float *stage, size_t chunk, cudaStream_t st) {
    if (p.p32) {
        CUDA_CHECK(cudaMemcpy(host, p.p32, p.n * sizeof(float), cudaMemcpyDeviceToHost));
        return;
    }
    for (size_t i = 0; i < p.n; i += chunk) {
        size_t k = std::min(chunk, p.n - i);
        cast(stage, p.pX + i, (long)k, st);
        CUDA_CHECK(cudaMemcpyAsync(host + i, stage, k * sizeof(float), cudaMemcpyDeviceToHost, st));
        CUDA_CHECK(cudaStreamSynchronize(st));
    }
}

// ----------------------------------------------------------------------------
// the adapter

template <typename T> struct GPUAdapter {
    bool on = false;
    int rank = 0, rp = 0, trains_A = 0, nslots = 0, lowest = -1; // rp: rank rounded up to 8
    float scale = 0.0f, dropout = 0.0f;
    std::vector<int> slot_layer, slot_target, slot_in, slot_out, slot_of; // slot_of: (L, 4) -> slot or -1
    std::vector<size_t> a_off, b_off;
    size_t nA = 0, nB = 0;
    float *ab32 = nullptr, *gab32 = nullptr; // fp32 master and gradients (A's, then B's)
    T *abX = nullptr;                        // what the products read
    // LoRI-S: the kept entries of B (indices into B), the only ones the optimizer touches
    uint32_t *kept = nullptr;
    size_t nkept = 0;
    bool masked = false;
    // Without dropout (kcat) the low-rank factor rides inside the layer's products (adapted_linear.cuh):
    // per slot the weight kept once more as [W | B] (out, in + rp), and for attn_proj / fc_proj as [W ; A]
    // (out + r, in). The W parts are copied when the base changes (w_dirty), the B and A parts before
    // every forward (one launch over the jobs).
    bool kcat = false;
    std::vector<T *> slot_wb, slot_wa;
    std::vector<ColCopy<T>> jobs;
    ColCopy<T> *jobs_d = nullptr;
    bool w_dirty = true;
    // u = drop(x) A^T per slot (dropout), du = s dout B, and with dropout the dropped input and a scratch
    T *u = nullptr, *du = nullptr, *xd = nullptr, *tmp = nullptr;
    uint64_t drop_state = 0; // the CPU trainer's dropout stream (splitmix64 state)
    bool training = true;
    std::vector<uint64_t> slot_rng; // the stream state each slot's mask was drawn from (for its backward)
    std::vector<char> slot_dropped;
    int slot(int l, int t) const { return on ? slot_of[l * 4 + t] : -1; }
    const T *A(int s) const { return abX + a_off[s]; }
    const T *B(int s) const { return abX + nA + b_off[s]; }
    float *dA(int s) const { return gab32 + a_off[s]; }
    float *dB(int s) const { return gab32 + nA + b_off[s]; }
};

// the shapes from the host's description; N = B*T rows
template <typename T> void adapter_describe(GPUAdapter<T> &a, const GPUAdapterDesc *d, int L) {
    a.on = true;
    a.rank = d->rank; a.scale = d->scale; a.dropout = d->dropout; a.trains_A = d->trains_A;
    a.nslots = d->nslots; a.nA = d->nA; a.nB = d->nB;
    a.slot_layer.assign(d->slot_layer, d->slot_layer + a.nslots);
    a.slot_target.assign(d->slot_target, d->slot_target + a.nslots);
    a.slot_in.assign(d->slot_in, d->slot_in + a.nslots);
    a.slot_out.assign(d->slot_out, d->slot_out + a.nslots);
    a.a_off.assign(d->a_off, d->a_off + a.nslots);
    a.b_off.assign(d->b_off, d->b_off + a.nslots);
    a.slot_of.assign((size_t)L * 4, -1);
    a.lowest = 1 << 30;
    for (int s = 0; s < a.nslots; s++) {
        a.slot_of[a.slot_layer[s] * 4 + a.slot_target[s]] = s;
        a.lowest = std::min(a.lowest, 4 * a.slot_layer[s] + a.slot_target[s]);
    }
    a.slot_rng.assign(a.nslots, 0);
    a.slot_dropped.assign(a.nslots, 0);
    a.kcat = a.dropout == 0.0f;
    a.rp = (a.rank + 7) / 8 * 8;
}

template <typename T> bool adapter_alloc(GPUAdapter<T> &a, int N, int C, DeviceMemory &dm) {
    constexpr bool is_bf16 = std::is_same<T, bf16>::value;
    a.ab32 = dev_alloc<float>(dm, a.nA + a.nB);
    a.gab32 = dev_alloc<float>(dm, a.nA + a.nB);
    a.abX = is_bf16 ? dev_alloc<T>(dm, a.nA + a.nB) : reinterpret_cast<T *>(a.ab32);
    a.slot_wb.assign(a.nslots, nullptr);
    a.slot_wa.assign(a.nslots, nullptr);
    a.u = dev_alloc<T>(dm, (size_t)a.nslots * N * a.rank);
    a.du = dev_alloc<T>(dm, (size_t)N * a.rank);
    if (!a.kcat) {
        a.xd = dev_alloc<T>(dm, (size_t)N * 4 * C);
        a.tmp = dev_alloc<T>(dm, (size_t)N * 4 * C);
        return !dm.err[0];
    }
    for (int s = 0; s < a.nslots; s++) {
        int in = a.slot_in[s], o = a.slot_out[s], t = a.slot_target[s];
        a.slot_wb[s] = dev_alloc<T>(dm, (size_t)o * (in + a.rp));
        if (!a.slot_wb[s]) return false;
        a.jobs.push_back(ColCopy<T>{a.slot_wb[s] + in, a.B(s), (long)(in + a.rp), o, a.rank});
        // [W ; A] where the input gradient takes the adapter term inside its product: attn_proj always,
        // fc_proj where its GELU backward runs in the product's epilogue (bf16)
        if (t == 1 || (t == 3 && is_bf16)) {
            a.slot_wa[s] = dev_alloc<T>(dm, (size_t)(o + a.rank) * in);
            if (!a.slot_wa[s]) return false;
            a.jobs.push_back(ColCopy<T>{a.slot_wa[s] + (size_t)o * in, a.A(s), (long)in, a.rank, in});
        }
    }
    if (!a.jobs.empty()) {
        a.jobs_d = dev_alloc<ColCopy<T>>(dm, a.jobs.size());
        if (!a.jobs_d) return false;
        CUDA_CHECK(cudaMemcpy(a.jobs_d, a.jobs.data(), a.jobs.size() * sizeof(ColCopy<T>), cudaMemcpyHostToDevice));
    }
    return !dm.err[0];
}

// the W parts of the [W | B] and [W ; A] copies, after the base changed (outside any graph)
template <typename T> void adapter_copy_w(GPUAdapter<T> &a, const Params<T> &p, cudaStream_t st) {
    if (!a.kcat || !a.w_dirty) return;
    for (int s = 0; s < a.nslots; s++) {
        int in = a.slot_in[s], o = a.slot_out[s];
        const T *W = p.weight(a.slot_layer[s], a.slot_target[s]);
        CUDA_CHECK(cudaMemcpy2DAsync(a.slot_wb[s], (in + a.rp) * sizeof(T), W, in * sizeof(T), in * sizeof(T), o,
                                     cudaMemcpyDeviceToDevice, st));
        if (a.slot_wa[s]) CUDA_CHECK(cudaMemcpyAsync(a.slot_wa[s], W, (size_t)o * in * sizeof(T), cudaMemcpyDeviceToDevice, st));
    }
    a.w_dirty = false;
}
// the B and A parts (they change every step): one launch
template <typename T> void adapter_copy_ab(const GPUAdapter<T> &a, cudaStream_t st) {
    if (!a.kcat || a.jobs.empty()) return;
    dim3 grid(64, (unsigned)a.jobs.size());
    copy_cols_kernel<<<grid, 256, 0, st>>>(a.jobs_d);
    CUDA_LAUNCH_CHECK();
}

// PLoRA's unload: W (out,in) += factor s B A for every slot (fp32 master), then the bf16 copy
template <typename T> void adapter_fold(GPUAdapter<T> &a, Params<T> &p, GemmContext *gc, float factor, cudaStream_t st) {
    constexpr bool is_bf16 = std::is_same<T, bf16>::value;
    for (int s = 0; s < a.nslots; s++) {
        int in = a.slot_in[s], o = a.slot_out[s];
        gemm<float, float>(gc, 'N', 'N', o, in, a.rank, factor * a.scale, a.ab32 + a.nA + a.b_off[s], a.rank, a.ab32 + a.a_off[s],
                           in, 1.0f, p.weight32(a.slot_layer[s], a.slot_target[s]), in);
    }
    if (is_bf16) cast(p.pX, p.p32, (long)p.n, st);
    a.w_dirty = true;
}

// ----------------------------------------------------------------------------
// AdamW (train_gpt2.c's adamw_setup, adamw_grad_norm, adamw_step): groups in the CPU's order, so the
// moments are its m and v

template <typename T> struct Optimizer {
    struct Group {
        float *p, *g;
        T *px;
        size_t n;
        const uint32_t *idx;
        int decay;
    };
    std::vector<Group> groups;
    float *m = nullptr, *v = nullptr; // the moments of entries [lo, hi) (all of them unless ZeRO-1)
    size_t total = 0;
    size_t lo = 0, hi = (size_t)-1;   // ZeRO-1's shard (gpu_opt_shard; clipped to total), else everything
    size_t shard_lo() const { return lo < total ? lo : total; }
    size_t shard_hi() const { return hi < total ? hi : total; }
    size_t shard_n() const { return shard_hi() - shard_lo(); }
    double *norm = nullptr; // the squared gradient norm (device)
    int num_sms = 0;
    float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f; // --beta1, --beta2, --eps (gpu_set_adamw; llm.c's CPU values)
};

// the groups from what trains now, moments zeroed (at a start and at LoRI-S's new mask, never in a step)
template <typename T> bool opt_setup(Optimizer<T> &o, Params<T> &p, GPUAdapter<T> &a, DeviceMemory &dm) {
    constexpr bool is_bf16 = std::is_same<T, bf16>::value;
    o.groups.clear();
    o.total = 0;
    auto add = [&](float *pp, float *g, T *px, size_t n, const uint32_t *idx, int decay) {
        o.groups.push_back({pp, g, is_bf16 ? px : nullptr, n, idx, decay});
        o.total += n;
    };
    if (!a.on) {
        for (int i = 0; i < NUM_PARAMS; i++) add(p.p32 + p.off[i], p.g32 + p.off[i], p.pX + p.off[i], p.size[i], nullptr, param_is_matrix_gpu[i]);
    } else {
        if (a.trains_A) add(a.ab32, a.gab32, a.abX, a.nA, nullptr, 1);
        if (a.masked) add(a.ab32 + a.nA, a.gab32 + a.nA, a.abX + a.nA, a.nkept, a.kept, 1); // LoRI-S: the kept entries
        else add(a.ab32 + a.nA, a.gab32 + a.nA, a.abX + a.nA, a.nB, nullptr, 1);
    }
    dev_free(dm, o.m);
    dev_free(dm, o.v);
    o.m = dev_alloc<float>(dm, o.shard_n());
    o.v = dev_alloc<float>(dm, o.shard_n());
    return o.m && o.v;
}
// group g (numbered from base) within the shard: entries [*a, *b); false when none. A shard only
// cuts groups without an index list (full fine-tuning's tensors).
template <typename T> bool opt_group_range(const Optimizer<T> &o, const typename Optimizer<T>::Group &g, size_t base, size_t *a, size_t *b) {
    size_t lo = o.shard_lo(), hi = o.shard_hi();
    if (g.n == 0 || hi <= base || lo >= base + g.n) return false;
    *a = lo > base ? lo - base : 0;
    *b = hi < base + g.n ? hi - base : g.n;
    return true;
}

// the squared gradient norm into o.norm (enqueued: the training pass's graph ends with it)
template <typename T> void opt_norm_enqueue(Optimizer<T> &o, cudaStream_t st) {
    CUDA_CHECK(cudaMemsetAsync(o.norm, 0, sizeof(double), st));
    size_t base = 0;
    for (const auto &g : o.groups) {
        size_t a, b;
        if (opt_group_range(o, g, base, &a, &b)) {
            long n = (long)(b - a);
            int blocks = std::min(ceil_div(n, 256), 4 * o.num_sms);
            if (g.idx) sumsq_kernel<<<blocks, 256, 0, st>>>(o.norm, g.g, g.idx + a, n);
            else sumsq_kernel<<<blocks, 256, 0, st>>>(o.norm, g.g + a, nullptr, n);
            CUDA_LAUNCH_CHECK();
        }
        base += g.n;
    }
}
// the squared norm of the shard's gradients, computed now
template <typename T> double opt_grad_sumsq(Optimizer<T> &o, cudaStream_t st) {
    opt_norm_enqueue(o, st);
    double s = 0;
    CUDA_CHECK(cudaMemcpyAsync(&s, o.norm, sizeof(double), cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    return s;
}
// the gradient norm; fresh: o.norm already holds the current gradients' (else computed now)
template <typename T> float opt_grad_norm(Optimizer<T> &o, bool fresh, cudaStream_t st) {
    if (!fresh) opt_norm_enqueue(o, st);
    double s = 0;
    CUDA_CHECK(cudaMemcpyAsync(&s, o.norm, sizeof(double), cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    return (float)sqrt(s);
}

// one AdamW step at time t (bias corrections) on gradients scaled by gscale (clipping)
template <typename T> void opt_step(Optimizer<T> &o, float lr, float wd, float gscale, int t, cudaStream_t st) {
    const float b1 = o.b1, b2 = o.b2, eps = o.eps;
    float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    size_t base = 0;
    for (const auto &g : o.groups) {
        size_t a, b;
        if (opt_group_range(o, g, base, &a, &b)) {
            long n = (long)(b - a);
            int blocks = std::min(ceil_div(n, 256), 8 * o.num_sms);
            float *mm = o.m + (base + a - o.shard_lo()), *vv = o.v + (base + a - o.shard_lo());
            if (g.idx) // (unsharded: a = 0, b = n)
                adamw_kernel<T><<<blocks, 256, 0, st>>>(g.p, g.g, mm, vv, g.px, g.idx + a, n, lr, b1, b2, eps, bc1, bc2, g.decay ? wd : 0.0f, gscale);
            else
                adamw_kernel<T><<<blocks, 256, 0, st>>>(g.p + a, g.g + a, mm, vv, g.px ? g.px + a : nullptr, nullptr, n, lr, b1, b2, eps, bc1,
                                                        bc2, g.decay ? wd : 0.0f, gscale);
            CUDA_LAUNCH_CHECK();
        }
        base += g.n;
    }
}
