/*
cuda/activations.cuh — the activations the backward needs (per layer) and the step's scratch, carved
out of one allocation from a table of sizes, as llm.c does. N = B*T rows, C channels.

Row strides. Where the adapter rides inside the products (adapted_linear.cuh, no dropout), the
inputs of the four linears keep spare columns after their C (or 4C) values that hold s u = s x A^T:
ln1, atty and ln2 rows have stride ld1 = C + pad, fchg rows ldg = 4C + pad, and the residual
gradient dres has ldr = C + pad (spare columns for du = s dres B). pad = rank rounded up to 64, so
every row starts on a 128-byte line. Without an adapter all strides are the plain widths.
*/
#pragma once
#include "common.cuh"

template <typename T> struct Activations {
    long ld1 = 0, ldg = 0, ldr = 0;
    // per layer (L of each): ln1, atty, ln2 (N, ld1); qkv (N, 3C); res2, res3 (N, C); fch (N, 4C) the fc
    // output before the GELU, fchg (N, ldg) after it; the layernorms' mean and rstd (N); the attention's
    // log-sum-exp (NH, N)
    T *ln1, *qkv, *atty, *res2, *ln2, *fch, *fchg, *res3;
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd, *lse;
    // once: the embedding (N, C), the final layernorm (N, C) and its statistics, the logits (N, Vp)
    // (overwritten with their gradient by the fused cross-entropy), the projections' output (N, C)
    T *encoded, *lnf, *logits, *proj;
    float *lnf_mean, *lnf_rstd, *losses;
    // the backward's scratch: dres (N, ldr) the residual stream's gradient, dbig (N, ldg), dqkv (N, 3C),
    // dsmall (N, ld1), the attention's D (NH, N)
    T *dres, *dbig, *dqkv, *dsmall;
    float *attD;
    // the batch: token ids, targets, and per row the loss weight (1/count, 0 where the mask is 0)
    int *inputs, *targets;
    float *weights;
    void *block = nullptr;
};

// rank: the adapter's rank where it rides inside the products (kcat), else 0
template <typename T> bool activations_alloc(Activations<T> &a, int N, int L, int C, int NH, int Vp, int kcat_rank, DeviceMemory &dm) {
    long pad = kcat_rank > 0 ? (kcat_rank + 63) / 64 * 64 : 0;
    a.ld1 = C + pad;
    a.ldg = 4 * C + pad;
    a.ldr = C + pad;
    size_t NC = (size_t)N * C, NL = (size_t)N * L;
    struct Entry {
        void **p;
        size_t bytes;
    } table[] = {
        {(void **)&a.encoded, NC * sizeof(T)},          {(void **)&a.ln1, NL * a.ld1 * sizeof(T)},
        {(void **)&a.qkv, 3 * NC * L * sizeof(T)},      {(void **)&a.atty, NL * a.ld1 * sizeof(T)},
        {(void **)&a.res2, NC * L * sizeof(T)},         {(void **)&a.ln2, NL * a.ld1 * sizeof(T)},
        {(void **)&a.fch, 4 * NC * L * sizeof(T)},      {(void **)&a.fchg, NL * a.ldg * sizeof(T)},
        {(void **)&a.res3, NC * L * sizeof(T)},         {(void **)&a.lnf, NC * sizeof(T)},
        {(void **)&a.logits, (size_t)N * Vp * sizeof(T)}, {(void **)&a.proj, NC * sizeof(T)},
        {(void **)&a.ln1_mean, NL * 4},                 {(void **)&a.ln1_rstd, NL * 4},
        {(void **)&a.ln2_mean, NL * 4},                 {(void **)&a.ln2_rstd, NL * 4},
        {(void **)&a.lnf_mean, (size_t)N * 4},          {(void **)&a.lnf_rstd, (size_t)N * 4},
        {(void **)&a.lse, NL * NH * 4},                 {(void **)&a.losses, (size_t)N * 4},
        {(void **)&a.dres, (size_t)N * a.ldr * sizeof(T)}, {(void **)&a.dbig, (size_t)N * a.ldg * sizeof(T)},
        {(void **)&a.dqkv, 3 * NC * sizeof(T)},         {(void **)&a.dsmall, (size_t)N * a.ld1 * sizeof(T)},
        {(void **)&a.attD, (size_t)N * NH * 4},         {(void **)&a.inputs, (size_t)N * 4},
        {(void **)&a.targets, (size_t)N * 4},           {(void **)&a.weights, (size_t)N * 4},
    };
    const size_t align = 256; // as cudaMalloc's: the products see the alignments they saw as separate buffers
    size_t total = 0;
    for (auto &e : table) total += (e.bytes + align - 1) / align * align;
    char *base = dev_alloc<char>(dm, total);
    if (!base) return false;
    a.block = base;
    for (auto &e : table) {
        *e.p = base;
        base += (e.bytes + align - 1) / align * align;
    }
    return true;
}

// layer l's slices
template <typename T> struct LayerActs {
    T *ln1, *qkv, *atty, *res2, *ln2, *fch, *fchg, *res3;
    const T *residual; // the layer's input: the embedding or the previous layer's res3
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd, *lse;
};
template <typename T> LayerActs<T> layer_acts(const Activations<T> &a, int l, int N, int C, int NH) {
    size_t NC = (size_t)N * C;
    LayerActs<T> x;
    x.ln1 = a.ln1 + l * N * a.ld1;
    x.qkv = a.qkv + l * 3 * NC;
    x.atty = a.atty + l * N * a.ld1;
    x.res2 = a.res2 + l * NC;
    x.ln2 = a.ln2 + l * N * a.ld1;
    x.fch = a.fch + l * 4 * NC;
    x.fchg = a.fchg + l * N * a.ldg;
    x.res3 = a.res3 + l * NC;
    x.residual = l == 0 ? a.encoded : a.res3 + (l - 1) * NC;
    x.ln1_mean = a.ln1_mean + (size_t)l * N;
    x.ln1_rstd = a.ln1_rstd + (size_t)l * N;
    x.ln2_mean = a.ln2_mean + (size_t)l * N;
    x.ln2_rstd = a.ln2_rstd + (size_t)l * N;
    x.lse = a.lse + (size_t)l * N * NH;
    return x;
}
