/*
train_gpt2.cu — GPT-2 training on one NVIDIA GPU with LoRA, LoRI and PeriodicLoRA: the CUDA twin of
train_gpt2.c, with the same command line, defaults, files and logs. This file tells the GPU story:
the model's parts, the forward pass, the backward pass, one training step as a CUDA graph, and
main. It is not the training loop, the option table, the data or the adapter files: those are the
CPU trainer's own, shared through cuda/host.c (a Backend of train_gpt2.c's run_training_on).

The parts, one concern each, in cuda/:
  params.cuh          the parameters (llm.c's 16 tensors), the adapter's A and B, AdamW over what trains
  activations.cuh     what the backward needs, carved out of one allocation; the row strides
  adapted_linear.cuh  y = x W^T + b + s (drop(x) A^T) B^T forward and backward, the adapter inside the
                      layer's own products where there is no dropout
  kernels.cuh         layernorm, GELU, cross-entropy, AdamW, embedding, casts, dropout
  attention.cuh       causal flash attention: a reference kernel and a tensor-core one
  cudnn_att.h         (USE_CUDNN=1 builds) cuDNN's fused flash attention instead, for bf16
  gemm.cuh            every matrix product, through cuBLASLt (heuristic choice; GPU_GEMM_AUTOTUNE=1 times candidates)
  profile.cuh         GPU_PROFILE=1: time per step by category
  gpt2_gpu.h          the C interface the host side calls; host.c the host side

Precision (--precision bf16, the default, or fp32): in bf16 the activations and the weights the
products read are bf16, every product accumulates in fp32, and whatever trains has an fp32 master
copy, fp32 gradients and fp32 AdamW moments. fp32 is exact fp32 throughout (no TF32): the mode the
tests compare against the CPU trainer.

What an adapter costs: with the base frozen there are no base gradients at all (no buffers, no
dW = dy^T x products, no bias or layernorm sums, no embedding backward), and the backward stops
below the lowest adapted layer. LoRI-S updates only the kept entries of B, so masked entries stay
exactly 0; PLoRA's unload is one product per slot on the device.

A step as a graph: every device buffer exists from gpu_create on and a step allocates nothing, so
the whole forward + backward of a batch is captured once as a CUDA graph and replayed: one launch
instead of hundreds, which is what a small model's step time is made of. Before capturing, one
warm-up pass on a dummy batch lets cuBLASLt pick every product's algorithm. Dropout (its masks'
stream advances with every step) and GPU_PROFILE run the same code eagerly instead.
*/
#include <math.h>
#include <string.h>
#include <algorithm>
#include <string>
#include <type_traits>
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/attention.cuh"
#include "cuda/gemm.cuh"
#include "cuda/profile.cuh"
#include "cuda/params.cuh"
#include "cuda/activations.cuh"
#include "cuda/adapted_linear.cuh"
#include "cuda/gpt2_gpu.h"
#include "cuda/host_api.h"
#ifdef USE_CUDNN
#include "cuda/cudnn_att.h"
#endif

// ----------------------------------------------------------------------------
// the model on the GPU

enum Pass { PASS_LOGITS, PASS_LOSS, PASS_TRAIN, NUM_PASSES }; // forward only; + the loss; + the backward

template <typename T> struct GPT2GPU {
    static constexpr bool is_bf16 = std::is_same<T, bf16>::value;
    GPUConfig c;
    int B, T_, N, L, C, NH, V, Vp;
    bool simple;   // the reference attention kernels
    int num_sms;
    std::string desc;
    cudaStream_t st = nullptr;
    DeviceMemory mem;
    GemmContext gc = {};
    Profiler prof;
    Params<T> params;
    GPUAdapter<T> ad;
    Activations<T> acts;
    Optimizer<T> opt;
    void *cudnn = nullptr; // CudnnAttention (USE_CUDNN builds, bf16)
    // host staging of a batch (pinned), and a device chunk for uploading a base without fp32 master
    int *inputs_h = nullptr, *targets_h = nullptr;
    float *weights_h = nullptr, *losses_h = nullptr;
    float *stage = nullptr;
    size_t stage_n = 1 << 24;
    // the step's graphs, one per pass (none: eager); stale after the optimizer's groups changed
    bool use_graphs = false, graphs_stale = false;
    cudaGraphExec_t graph[NUM_PASSES] = {};
    bool norm_fresh = false;    // opt.norm holds the norm of the gradients as they are (a training pass ran last)
    bool staging_busy = false;  // a logits-only pass may still be reading the host staging buffers
    char err[512] = "";
    LinearCtx<T> lin() { return LinearCtx<T>{&gc, &ad, &prof, st, N, num_sms}; }
};

template <typename T> void attention_fwd(GPT2GPU<T> &m, T *out, float *lse, const T *qkv, long ldo) {
#ifdef USE_CUDNN
    if (m.cudnn) return cudnn_attention_forward((CudnnAttention *)m.cudnn, (bf16 *)out, lse, (const bf16 *)qkv, m.st);
#endif
    attention_forward(out, lse, qkv, m.B, m.T_, m.C, m.NH, m.simple, m.st, ldo);
}
template <typename T>
void attention_bwd(GPT2GPU<T> &m, T *dqkv, const T *dout, const T *qkv, const T *out, const float *lse, long ldo) {
#ifdef USE_CUDNN
    if (m.cudnn)
        return cudnn_attention_backward((CudnnAttention *)m.cudnn, (bf16 *)dqkv, (const bf16 *)dout, (const bf16 *)qkv,
                                        (const bf16 *)out, lse, m.st);
#endif
    attention_backward(dqkv, m.acts.attD, dout, qkv, out, lse, m.B, m.T_, m.C, m.NH, m.simple, m.st, ldo);
}

// ----------------------------------------------------------------------------
// forward: train_gpt2.c's gpt2_forward on the batch in acts.inputs; with `loss` the cross-entropy
// against acts.targets too, and with `grad` its gradient in place of the logits (weights acts.weights)

template <typename T> void gpt2_forward(GPT2GPU<T> &m, bool loss, bool grad) {
    Activations<T> &a = m.acts;
    const Params<T> &p = m.params;
    LinearCtx<T> x = m.lin();
    int N = m.N, C = m.C;
    adapter_copy_ab(m.ad, m.st);
    prof_mark(m.prof, PC_EMBED);
    encoder_forward(a.encoded, a.inputs, p.x(P_WTE), p.x(P_WPE), m.B, m.T_, C, m.st);
    prof_mark(m.prof, PC_LN);
    layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, (T *)nullptr, a.encoded, (const T *)nullptr, p.x(P_LN1W), p.x(P_LN1B), N, C,
                      m.st, a.ld1);
    for (int l = 0; l < m.L; l++) {
        LayerActs<T> la = layer_acts(a, l, N, C, m.NH);
        linear_forward(x, l, 0, la.qkv, la.ln1, a.ld1, p.weight(l, 0), p.bias(l, 0), C, 3 * C);
        prof_mark(m.prof, PC_ATT_FWD);
        attention_fwd(m, la.atty, la.lse, la.qkv, a.ld1);
        linear_forward(x, l, 1, a.proj, la.atty, a.ld1, p.weight(l, 1), p.bias(l, 1), C, C);
        prof_mark(m.prof, PC_LN);
        layernorm_forward(la.ln2, la.ln2_mean, la.ln2_rstd, la.res2, la.residual, a.proj, p.x(P_LN2W) + l * C, p.x(P_LN2B) + l * C,
                          N, C, m.st, a.ld1);
        if (!linear_forward(x, l, 2, la.fch, la.ln2, a.ld1, p.weight(l, 2), p.bias(l, 2), C, 4 * C, la.fchg, a.ldg)) {
            prof_mark(m.prof, PC_GELU);
            gelu_forward(la.fchg, la.fch, (long)N, 4 * C, a.ldg, m.st);
        }
        linear_forward(x, l, 3, a.proj, la.fchg, a.ldg, p.weight(l, 3), p.bias(l, 3), 4 * C, C);
        prof_mark(m.prof, PC_LN);
        if (l + 1 < m.L)
            layernorm_forward(la.ln1 + N * a.ld1, la.ln1_mean + N, la.ln1_rstd + N, la.res3, la.res2, a.proj, p.x(P_LN1W) + (l + 1) * C,
                              p.x(P_LN1B) + (l + 1) * C, N, C, m.st, a.ld1);
        else
            layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, la.res3, la.res2, a.proj, p.x(P_LNFW), p.x(P_LNFB), N, C, m.st);
    }
    prof_mark(m.prof, PC_MATMUL);
    gemm<T, T>(&m.gc, 'N', 'T', N, m.Vp, C, 1.0f, a.lnf, C, p.x(P_WTE), C, 0.0f, a.logits, m.Vp); // LM head tied to wte
    if (!loss) return;
    prof_mark(m.prof, PC_CE);
    crossentropy(a.logits, a.losses, a.targets, grad ? a.weights : (const float *)nullptr, N, m.V, m.Vp, m.st);
}

// ----------------------------------------------------------------------------
// backward: train_gpt2.c's gpt2_backward, the dlogits already in acts.logits (fused cross-entropy).
// Positions of the trainable modules: 4l + t; nothing below `lo` (the lowest adapted one; -1: full
// fine-tuning) needs a gradient. In: dres = the gradient of layer l's output (the residual stream);
// out: dres = the gradient of its input. Returns false where the backward can stop.

template <typename T> bool layer_backward(GPT2GPU<T> &m, int l, int lo) {
    Activations<T> &a = m.acts;
    const Params<T> &p = m.params;
    LinearCtx<T> x = m.lin();
    int N = m.N, C = m.C, p0 = 4 * l;
    LayerActs<T> la = layer_acts(a, l, N, C, m.NH);
    float *g = m.params.g32; // full fine-tuning's gradients, else NULL
    auto gw = [&](int t) { return g ? g + p.woff(l, t) : (float *)nullptr; };
    auto gb = [&](int t) { return g ? g + p.off[target_bias[t]] + (size_t)l * target_out[t] * C : (float *)nullptr; };
    auto gln = [&](int i) { return g ? g + p.off[i] + (size_t)l * C : (float *)nullptr; };
    // fc_proj (its output gradient is the residual stream's), with the GELU backward in its product
    // in bf16 or in the GELU kernel (with the adapter's du A term) in fp32; then fc
    // (dbig has row stride ldg and dsmall ld1: with the adapter kept as [W | B] their spare columns
    // receive dout B)
    bool epi = lo <= p0 + 2 &&
               resid_backward(x, l, 3, a.dbig, a.ldg, gw(3), gb(3), a.dres, a.ldr, la.fchg, a.ldg, p.weight(l, 3), la.fch, 4 * C, C);
    LowRankTerm<T> du;
    if (!epi)
        du = linear_backward(x, l, 3, lo < p0 + 3 ? a.dbig : nullptr, a.ldg, gw(3), gb(3), a.dres, a.ldr, la.fchg, a.ldg,
                             p.weight(l, 3), 4 * C, C, true);
    if (lo <= p0 + 2) {
        prof_mark(m.prof, PC_GELU);
        if (!epi && du.du) // dbig = gelu'(fch) (dbig + du A): fc_proj's adapter term folded into the GELU backward
            gelu_backward_lowrank(a.dbig, la.fch, a.dbig, du.du, du.A, m.ad.rank, N, 4 * C, a.ldg, du.ld, du.scale, m.st);
        else if (!epi)
            gelu_backward(a.dbig, la.fch, a.dbig, (long)N, 4 * C, a.ldg, m.st);
        linear_backward(x, l, 2, lo < p0 + 2 ? a.dsmall : nullptr, a.ld1, gw(2), gb(2), a.dbig, a.ldg, la.ln2, a.ld1, p.weight(l, 2),
                        C, 4 * C);
    }
    prof_mark(m.prof, PC_LN);
    if (lo < p0 + 2)
        layernorm_backward(a.dres, gln(P_LN2W), gln(P_LN2B), a.dsmall, la.res2, p.x(P_LN2W) + l * C, la.ln2_mean, la.ln2_rstd, N, C,
                           1, m.num_sms, m.st, a.ld1, a.ldr);
    if (lo > p0 + 1) return false; // nothing trainable below the MLP of this layer
    // attn_proj (its output gradient is the residual stream's, now including the ln2 path)
    T *dattn = lo < p0 + 1 ? a.dsmall : nullptr;
    if (!resid_backward(x, l, 1, dattn, C, gw(1), gb(1), a.dres, a.ldr, la.atty, a.ld1, p.weight(l, 1), (const T *)nullptr, C, C))
        linear_backward(x, l, 1, dattn, C, gw(1), gb(1), a.dres, a.ldr, la.atty, a.ld1, p.weight(l, 1), C, C);
    if (lo <= p0) {
        prof_mark(m.prof, PC_ATT_BWD);
        attention_bwd(m, a.dqkv, a.dsmall, la.qkv, la.atty, la.lse, a.ld1);
        linear_backward(x, l, 0, lo < p0 ? a.dsmall : nullptr, a.ld1, gw(0), gb(0), a.dqkv, 3 * C, la.ln1, a.ld1, p.weight(l, 0), C,
                        3 * C);
    }
    prof_mark(m.prof, PC_LN);
    if (lo < p0)
        layernorm_backward(a.dres, gln(P_LN1W), gln(P_LN1B), a.dsmall, la.residual, p.x(P_LN1W) + l * C, la.ln1_mean, la.ln1_rstd, N,
                           C, 1, m.num_sms, m.st, a.ld1, a.ldr);
    return lo < p0;
}

template <typename T> void gpt2_backward(GPT2GPU<T> &m) {
    Activations<T> &a = m.acts;
    const Params<T> &p = m.params;
    float *g = p.g32;
    int N = m.N, C = m.C, lo = m.ad.on ? m.ad.lowest : -1;
    prof_mark(m.prof, PC_MATMUL);
    gemm<T, T>(&m.gc, 'N', 'N', N, C, m.Vp, 1.0f, a.logits, m.Vp, p.x(P_WTE), C, 0.0f, a.dsmall, C);
    prof_mark(m.prof, PC_WGRAD);
    if (g) {
        gemm<T, float>(&m.gc, 'T', 'N', m.Vp, C, N, 1.0f, a.logits, m.Vp, a.lnf, C, 1.0f, g + p.off[P_WTE], C);
        g_gpu_base_weight_grad_calls++;
    }
    prof_mark(m.prof, PC_LN);
    layernorm_backward(a.dres, g ? g + p.off[P_LNFW] : nullptr, g ? g + p.off[P_LNFB] : nullptr, a.dsmall,
                       a.res3 + (size_t)(m.L - 1) * N * C, p.x(P_LNFW), a.lnf_mean, a.lnf_rstd, N, C, 0, m.num_sms, m.st, C, a.ldr);
    for (int l = m.L - 1; l >= 0 && lo < 4 * l + 4; l--)
        if (!layer_backward(m, l, lo)) break;
    prof_mark(m.prof, PC_EMBED);
    if (g) encoder_backward(g + p.off[P_WTE], g + p.off[P_WPE], a.dres, a.inputs, m.B, m.T_, C, m.st); // (ldr == C: no adapter)
}

// ----------------------------------------------------------------------------
// a step's device work as a graph: captured once per pass, replayed on every batch

// the training pass ends with the gradient norm (what the step asks next), so no launch is left for it
template <typename T> void enqueue_pass(GPT2GPU<T> &m, Pass pass) {
    gpt2_forward(m, pass != PASS_LOGITS, pass == PASS_TRAIN);
    if (pass != PASS_TRAIN) return;
    gpt2_backward(m);
    prof_mark(m.prof, PC_OPT);
    opt_norm_enqueue(m.opt, m.st);
}

template <typename T> void capture_graphs(GPT2GPU<T> &m) {
    for (auto &g : m.graph)
        if (g) { CUDA_CHECK(cudaGraphExecDestroy(g)); g = nullptr; }
    m.graphs_stale = false;
    for (int p = 0; p < NUM_PASSES; p++) {
        cudaGraph_t g;
        CUDA_CHECK(cudaStreamBeginCapture(m.st, cudaStreamCaptureModeThreadLocal));
        long long before = g_gpu_base_weight_grad_calls;
        enqueue_pass(m, (Pass)p);
        CUDA_CHECK(cudaStreamEndCapture(m.st, &g));
        CUDA_CHECK(cudaGraphInstantiate(&m.graph[p], g, 0));
        CUDA_CHECK(cudaGraphDestroy(g));
        if (p != PASS_TRAIN) g_gpu_base_weight_grad_calls = before;
    }
}

template <typename T> void run_pass(GPT2GPU<T> &m, Pass pass) {
    adapter_copy_w(m.ad, m.params, m.st); // after a new base (load, PLoRA's unload): outside the graph
    if (m.use_graphs && m.graphs_stale) capture_graphs(m); // (new optimizer groups: LoRI-S's mask)
    if (m.use_graphs) CUDA_CHECK(cudaGraphLaunch(m.graph[pass], m.st));
    else enqueue_pass(m, pass);
    if (pass == PASS_TRAIN) m.norm_fresh = true;
}

// One (B,T) batch: upload, run, and the mean loss over the counted targets (mask NULL: all).
// targets NULL: logits only. Returns 0, or -1 with m.err set (a token outside the vocab).
template <typename T>
int gpt2_batch(GPT2GPU<T> &m, const int *inp, const int *tgt, const uint8_t *mask, float lscale, bool backward, float *loss,
               long *count) {
    double h0 = m.prof.on ? now_ms() : 0;
    int N = m.N;
    for (int i = 0; i < N; i++) {
        if (inp[i] < 0 || inp[i] >= m.V) { snprintf(m.err, sizeof(m.err), "input token id %d is outside the vocab (%d)", inp[i], m.V); return -1; }
        if (tgt && (tgt[i] < 0 || tgt[i] >= m.V)) { snprintf(m.err, sizeof(m.err), "target token id %d is outside the vocab (%d)", tgt[i], m.V); return -1; }
    }
    prof_mark(m.prof, PC_HOST);
    if (m.staging_busy) CUDA_CHECK(cudaStreamSynchronize(m.st)); // the last (logits-only) pass has read them
    m.staging_busy = false;
    memcpy(m.inputs_h, inp, N * sizeof(int));
    CUDA_CHECK(cudaMemcpyAsync(m.acts.inputs, m.inputs_h, N * sizeof(int), cudaMemcpyHostToDevice, m.st));
    if (tgt) {
        memcpy(m.targets_h, tgt, N * sizeof(int));
        for (int i = 0; i < N; i++) m.weights_h[i] = (!mask || mask[i]) ? lscale : 0.0f;
        CUDA_CHECK(cudaMemcpyAsync(m.acts.targets, m.targets_h, N * sizeof(int), cudaMemcpyHostToDevice, m.st));
        CUDA_CHECK(cudaMemcpyAsync(m.acts.weights, m.weights_h, N * sizeof(float), cudaMemcpyHostToDevice, m.st));
    }
    run_pass(m, !tgt ? PASS_LOGITS : backward ? PASS_TRAIN : PASS_LOSS);
    if (m.prof.on) m.prof.host_ms += now_ms() - h0;
    if (count) *count = 0;
    *loss = -1.0f;
    if (!tgt) { m.staging_busy = true; return 0; }
    prof_mark(m.prof, PC_HOST);
    CUDA_CHECK(cudaMemcpyAsync(m.losses_h, m.acts.losses, N * sizeof(float), cudaMemcpyDeviceToHost, m.st));
    CUDA_CHECK(cudaStreamSynchronize(m.st));
    double sum = 0;
    long n = 0;
    for (int i = 0; i < N; i++)
        if (!mask || mask[i]) { sum += m.losses_h[i]; n++; }
    if (count) *count = n;
    if (n > 0) *loss = (float)(sum / n);
    return 0;
}

// ----------------------------------------------------------------------------
// creation: check the shapes, allocate everything, warm up, capture

template <typename T> bool gpt2_check_config(GPT2GPU<T> &m) {
    if (m.C % 8 != 0 || m.Vp % 8 != 0) snprintf(m.err, sizeof(m.err), "the GPU trainer needs the channels and the padded vocab to be multiples of 8");
    else if (m.C % m.NH != 0 || m.C / m.NH > ATT_MAX_HS) snprintf(m.err, sizeof(m.err), "the GPU trainer supports head sizes up to %d", ATT_MAX_HS);
    else if (m.C > ln_max_channels<T>()) snprintf(m.err, sizeof(m.err), "the GPU trainer supports up to %d channels in this precision", ln_max_channels<T>());
    return !m.err[0];
}

template <typename T> bool gpt2_alloc(GPT2GPU<T> &m, const GPUAdapterDesc *ad) {
    bool need32 = !ad || ad->base_absorbs;
    if (ad) adapter_describe(m.ad, ad, m.L);
    if (!params_alloc(m.params, m.c, need32, !ad, m.mem)) return false;
    if (ad && !adapter_alloc(m.ad, m.N, m.C, m.mem)) return false;
    if (!activations_alloc(m.acts, m.N, m.L, m.C, m.NH, m.Vp, m.ad.kcat ? m.ad.rank : 0, m.mem)) return false;
    m.opt.norm = dev_alloc<double>(m.mem, 1);
    m.opt.num_sms = m.num_sms;
    if (!m.params.p32) m.stage = dev_alloc<float>(m.mem, m.stage_n);
    CUDA_CHECK(cudaMallocHost(&m.inputs_h, m.N * sizeof(int)));
    CUDA_CHECK(cudaMallocHost(&m.targets_h, m.N * sizeof(int)));
    CUDA_CHECK(cudaMallocHost(&m.weights_h, m.N * sizeof(float)));
    CUDA_CHECK(cudaMallocHost(&m.losses_h, m.N * sizeof(float)));
    return !m.mem.err[0] && opt_setup(m.opt, m.params, m.ad, m.mem);
}

// one training pass on a dummy batch (no gradient: zero loss weights) so that every product shape has
// its algorithm before anything is captured (and PLoRA's unload, W += 0, so that its products have
// theirs before training); the dropout stream is left as it was
template <typename T> void gpt2_warm_up(GPT2GPU<T> &m) {
    uint64_t drop = m.ad.drop_state;
    CUDA_CHECK(cudaMemsetAsync(m.acts.inputs, 0, m.N * sizeof(int), m.st));
    CUDA_CHECK(cudaMemsetAsync(m.acts.targets, 0, m.N * sizeof(int), m.st));
    CUDA_CHECK(cudaMemsetAsync(m.acts.weights, 0, m.N * sizeof(float), m.st));
    long long before = g_gpu_base_weight_grad_calls;
    adapter_copy_w(m.ad, m.params, m.st);
    enqueue_pass(m, PASS_TRAIN);
    g_gpu_base_weight_grad_calls = before;
    if (m.ad.on && m.params.p32) adapter_fold(m.ad, m.params, &m.gc, 0.0f, m.st);
    if (m.params.g32) CUDA_CHECK(cudaMemsetAsync(m.params.g32, 0, m.params.n * sizeof(float), m.st));
    if (m.ad.gab32) CUDA_CHECK(cudaMemsetAsync(m.ad.gab32, 0, (m.ad.nA + m.ad.nB) * sizeof(float), m.st));
    CUDA_CHECK(cudaStreamSynchronize(m.st));
    m.ad.drop_state = drop;
}

// GPU_PROFILE: the profiled model runs eagerly, so its report also gives what its training pass takes
// as a graph (the median of 20 replays on the warm-up's dummy batch, which adds zero gradients)
template <typename T> void time_training_graph(GPT2GPU<T> &m) {
    capture_graphs(m);
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    std::vector<float> ms;
    for (int i = 0; i < 21; i++) {
        CUDA_CHECK(cudaEventRecord(e0, m.st));
        CUDA_CHECK(cudaGraphLaunch(m.graph[PASS_TRAIN], m.st));
        CUDA_CHECK(cudaEventRecord(e1, m.st));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float t = 0;
        CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
        if (i > 0) ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    m.prof.graph_ms = ms[ms.size() / 2];
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    for (auto &g : m.graph)
        if (g) { CUDA_CHECK(cudaGraphExecDestroy(g)); g = nullptr; }
}

template <typename T> void gpt2_free(GPT2GPU<T> *m) {
    prof_report_and_free(m->prof);
    for (auto &g : m->graph)
        if (g) cudaGraphExecDestroy(g);
#ifdef USE_CUDNN
    if (m->cudnn) cudnn_attention_free((CudnnAttention *)m->cudnn);
#endif
    dev_free_all(m->mem);
    cudaFreeHost(m->inputs_h); cudaFreeHost(m->targets_h); cudaFreeHost(m->weights_h); cudaFreeHost(m->losses_h);
    if (m->gc.lt) gemm_context_free(&m->gc);
    if (m->st) cudaStreamDestroy(m->st);
    delete m;
}

template <typename T>
GPT2GPU<T> *gpt2_create(const GPUConfig *cfg, const float *params, const GPUAdapterDesc *ad, int B, int T_, bool simple, char *err,
                        size_t errlen) {
    GPT2GPU<T> *m = new GPT2GPU<T>();
    m->c = *cfg;
    m->B = B; m->T_ = T_; m->N = B * T_;
    m->L = cfg->num_layers; m->C = cfg->channels; m->NH = cfg->num_heads; m->V = cfg->vocab_size; m->Vp = cfg->padded_vocab_size;
    m->simple = simple;
    bool ok = gpt2_check_config(*m);
    if (ok) {
        int dev;
        cudaDeviceProp prop;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
        m->num_sms = prop.multiProcessorCount;
        CUDA_CHECK(cudaStreamCreate(&m->st)); // (a blocking stream: ordered after the default stream's copies)
        gemm_context_init(&m->gc, m->st, 32u << 20, &m->mem);
        prof_init(m->prof, m->st);
        ok = gpt2_alloc(*m, ad);
        const char *att = attention_fast_ok<T>(m->C / m->NH, simple) ? "flash (tensor cores)" : "reference kernel";
#ifdef USE_CUDNN
        if (ok && m->is_bf16 && !simple) {
            size_t ws = 0;
            m->cudnn = cudnn_attention_create(B, m->NH, T_, m->C / m->NH, m->acts.ld1, m->C, &ws, m->err, sizeof(m->err));
            ok = m->cudnn != nullptr;
            m->mem.count((long)ws);
            att = "cuDNN flash";
        }
#endif
        m->use_graphs = !m->prof.on && !(ad && ad->dropout > 0);
        m->desc = std::string(prop.name) + ", " + (m->is_bf16 ? "bf16" : "fp32") + ", attention " + att +
                  (m->use_graphs ? ", CUDA graphs" : "");
    }
    if (ok) {
        params_upload(m->params, params, m->stage, m->stage_n, m->st);
        gpt2_warm_up(*m);
        if (m->use_graphs) capture_graphs(*m);
        if (m->prof.on) time_training_graph(*m);
    }
    if (!ok) {
        snprintf(err, errlen, "%s", m->err[0] ? m->err : m->mem.err);
        gpt2_free(m);
        return nullptr;
    }
    return m;
}

// ----------------------------------------------------------------------------
// what the host asks of a model between steps: values in and out, the mask, the optimizer

template <typename T> void model_set_adapter(GPT2GPU<T> &m, const float *ab) {
    CUDA_CHECK(cudaMemcpy(m.ad.ab32, ab, (m.ad.nA + m.ad.nB) * sizeof(float), cudaMemcpyHostToDevice));
    if (m.is_bf16) cast(m.ad.abX, m.ad.ab32, (long)(m.ad.nA + m.ad.nB), m.st);
}
template <typename T> int model_set_mask(GPT2GPU<T> &m, const uint32_t *kept, size_t nkept, int use) {
    dev_free(m.mem, m.ad.kept);
    m.ad.masked = use != 0;
    m.ad.nkept = use ? nkept : 0;
    if (!m.ad.masked) return 0;
    m.ad.kept = dev_alloc<uint32_t>(m.mem, m.ad.nkept);
    if (!m.ad.kept) { snprintf(m.err, sizeof(m.err), "%s", m.mem.err); return -1; }
    if (nkept) CUDA_CHECK(cudaMemcpy(m.ad.kept, kept, nkept * sizeof(uint32_t), cudaMemcpyHostToDevice));
    return 0;
}
template <typename T> int model_opt_setup(GPT2GPU<T> &m) {
    auto before = m.opt.groups;
    m.norm_fresh = false;
    bool ok = opt_setup(m.opt, m.params, m.ad, m.mem);
    bool same = before.size() == m.opt.groups.size();
    for (size_t i = 0; same && i < before.size(); i++)
        same = before[i].g == m.opt.groups[i].g && before[i].idx == m.opt.groups[i].idx && before[i].n == m.opt.groups[i].n;
    if (!same) m.graphs_stale = true; // the training graph computes the norm over the groups (LoRI-S's new mask)
    if (ok) return 0;
    snprintf(m.err, sizeof(m.err), "%s", m.mem.err);
    return -1;
}
template <typename T> void model_opt_copy(GPT2GPU<T> &m, float *mom, float *var, cudaMemcpyKind dir) {
    size_t n = m.opt.shard_n() * sizeof(float); // ZeRO-1: this rank's shard of them
    bool in = dir == cudaMemcpyHostToDevice;
    CUDA_CHECK(cudaMemcpy(in ? (void *)m.opt.m : mom, in ? (void *)mom : m.opt.m, n, dir));
    CUDA_CHECK(cudaMemcpy(in ? (void *)m.opt.v : var, in ? (void *)var : m.opt.v, n, dir));
}
template <typename T> void model_zero_grad(GPT2GPU<T> &m) {
    prof_mark(m.prof, PC_OPT);
    m.norm_fresh = false;
    if (m.params.g32) CUDA_CHECK(cudaMemsetAsync(m.params.g32, 0, m.params.n * sizeof(float), m.st));
    if (m.ad.gab32) CUDA_CHECK(cudaMemsetAsync(m.ad.gab32, 0, (m.ad.nA + m.ad.nB) * sizeof(float), m.st));
}
// rows of the last forward's logits, converted to float on the host (no device scratch)
template <typename T> void model_get_logits(GPT2GPU<T> &m, int row0, int nrows, float *out) {
    size_t n = (size_t)nrows * m.Vp;
    const T *src = m.acts.logits + (size_t)row0 * m.Vp;
    std::vector<T> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), src, n * sizeof(T), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) out[i] = (float)h[i];
}

// ----------------------------------------------------------------------------
// the C interface (cuda/gpt2_gpu.h): a model of either precision

struct GPUModel {
    GPT2GPU<float> *f = nullptr;
    GPT2GPU<bf16> *b = nullptr;
};
// evaluates `expr` with M the model, whichever its precision
// the one buffer of what trains: every parameter's gradient, or the adapter's (A's and B's; B's alone
// when A is frozen), and the model's stream: what data parallelism all-reduces (cuda/nccl.h)
// the trainable gradients for the data-parallel sum; the caller changes them, so the norm the
// training graph computed (over this rank's gradients alone) is no longer theirs
template <typename T> void trainable_grads(GPT2GPU<T> &M, float **g, size_t *n, void **stream) {
    if (!M.ad.on) { *g = M.params.g32; *n = M.params.n; }
    else if (M.ad.trains_A) { *g = M.ad.gab32; *n = M.ad.nA + M.ad.nB; }
    else { *g = M.ad.gab32 + M.ad.nA; *n = M.ad.nB; }
    *stream = (void *)M.st;
    M.norm_fresh = false;
}

#define ON_MODEL(m, expr) ((m)->b ? [&](auto &M) { return (expr); }(*(m)->b) : [&](auto &M) { return (expr); }(*(m)->f))

extern "C" {
GPUModel *gpu_create(const GPUConfig *c, const float *params, const GPUAdapterDesc *ad, int B, int T, int use_bf16, int simple_kernels,
                     char *err, size_t errlen) {
    GPUModel *m = new GPUModel();
    if (use_bf16) m->b = gpt2_create<bf16>(c, params, ad, B, T, simple_kernels != 0, err, errlen);
    else m->f = gpt2_create<float>(c, params, ad, B, T, simple_kernels != 0, err, errlen);
    if (!m->b && !m->f) { delete m; return nullptr; }
    return m;
}
void gpu_free(GPUModel *m) {
    if (!m) return;
    if (m->b) gpt2_free(m->b);
    if (m->f) gpt2_free(m->f);
    delete m;
}
const char *gpu_describe(GPUModel *m) { return ON_MODEL(m, M.desc.c_str()); }
const char *gpu_error(GPUModel *m) { return ON_MODEL(m, (const char *)M.err); }
void gpu_set_params(GPUModel *m, const float *p) { ON_MODEL(m, (M.ad.w_dirty = true, params_upload(M.params, p, M.stage, M.stage_n, M.st))); }
void gpu_get_params(GPUModel *m, float *p) { ON_MODEL(m, params_download(M.params, p, M.stage, M.stage_n, M.st)); }
void gpu_set_adapter(GPUModel *m, const float *ab) { ON_MODEL(m, model_set_adapter(M, ab)); }
void gpu_get_adapter(GPUModel *m, float *ab) {
    ON_MODEL(m, CUDA_CHECK(cudaMemcpy(ab, M.ad.ab32, (M.ad.nA + M.ad.nB) * sizeof(float), cudaMemcpyDeviceToHost)));
}
int gpu_set_mask(GPUModel *m, const uint32_t *kept, size_t nkept, int use) { return ON_MODEL(m, model_set_mask(M, kept, nkept, use)); }
void gpu_set_dropout(GPUModel *m, uint64_t s, int training) { ON_MODEL(m, (M.ad.drop_state = s, M.ad.training = training != 0)); }
uint64_t gpu_get_dropout_rng(GPUModel *m) { return ON_MODEL(m, M.ad.drop_state); }
int gpu_opt_setup(GPUModel *m) { return ON_MODEL(m, model_opt_setup(M)); }
size_t gpu_opt_size(GPUModel *m) { return ON_MODEL(m, M.opt.total); }
void gpu_opt_reset(GPUModel *m) {
    ON_MODEL(m, (CUDA_CHECK(cudaMemset(M.opt.m, 0, M.opt.total * sizeof(float))), CUDA_CHECK(cudaMemset(M.opt.v, 0, M.opt.total * sizeof(float)))));
}
void gpu_opt_get(GPUModel *m, float *mom, float *var) { ON_MODEL(m, model_opt_copy(M, mom, var, cudaMemcpyDeviceToHost)); }
void gpu_opt_set(GPUModel *m, const float *mom, const float *var) {
    ON_MODEL(m, model_opt_copy(M, (float *)mom, (float *)var, cudaMemcpyHostToDevice));
}
void gpu_zero_grad(GPUModel *m) { ON_MODEL(m, model_zero_grad(M)); }
int gpu_forward(GPUModel *m, const int *inputs, const int *targets, const uint8_t *mask, float *loss, long *count) {
    return ON_MODEL(m, gpt2_batch(M, inputs, targets, mask, 1.0f, false, loss, count));
}
int gpu_forward_backward(GPUModel *m, const int *inputs, const int *targets, const uint8_t *mask, float scale, float *loss, long *count) {
    return ON_MODEL(m, gpt2_batch(M, inputs, targets, mask, scale, true, loss, count));
}
float gpu_grad_norm(GPUModel *m) { return ON_MODEL(m, (prof_mark(M.prof, PC_OPT), opt_grad_norm(M.opt, M.norm_fresh, M.st))); }
void gpu_adamw_step(GPUModel *m, float lr, float wd, float gscale, int t) {
    ON_MODEL(m, (prof_mark(M.prof, PC_OPT), opt_step(M.opt, lr, wd, gscale, t, M.st)));
}
void gpu_set_adamw(GPUModel *m, float beta1, float beta2, float eps) {
    ON_MODEL(m, (M.opt.b1 = beta1, M.opt.b2 = beta2, M.opt.eps = eps));
}
void gpu_plora_fold(GPUModel *m, float factor) {
    ON_MODEL(m, (M.ad.on && M.params.p32 ? adapter_fold(M.ad, M.params, &M.gc, factor, M.st) : (void)0));
}
void gpu_get_logits(GPUModel *m, int row0, int nrows, float *out) { ON_MODEL(m, model_get_logits(M, row0, nrows, out)); }
void gpu_get_grads(GPUModel *m, float *g) {
    ON_MODEL(m, M.params.g32 ? CUDA_CHECK(cudaMemcpy(g, M.params.g32, M.params.n * sizeof(float), cudaMemcpyDeviceToHost)) : (void)0);
}
void gpu_get_adapter_grads(GPUModel *m, float *g) {
    ON_MODEL(m, M.ad.gab32 ? CUDA_CHECK(cudaMemcpy(g, M.ad.gab32, (M.ad.nA + M.ad.nB) * sizeof(float), cudaMemcpyDeviceToHost)) : (void)0);
}
void gpu_trainable_grads(GPUModel *m, float **g, size_t *n, void **stream) { ON_MODEL(m, trainable_grads(M, g, n, stream)); }
void gpu_opt_shard(GPUModel *m, size_t lo, size_t hi) { ON_MODEL(m, (M.opt.lo = lo, M.opt.hi = hi)); }
double gpu_grad_sumsq(GPUModel *m) { return ON_MODEL(m, (prof_mark(M.prof, PC_OPT), opt_grad_sumsq(M.opt, M.st))); }
void gpu_full_params(GPUModel *m, float **p32, void **px, int *px_is_bf16, void **stream) {
    ON_MODEL(m, (*p32 = M.params.p32, *px = (void *)M.params.pX, *px_is_bf16 = M.is_bf16, *stream = (void *)M.st));
}
void gpu_synchronize(GPUModel *m) { ON_MODEL(m, (prof_flush(M.prof), CUDA_CHECK(cudaStreamSynchronize(M.st)))); }
void gpu_memory(GPUModel *m, size_t *now, size_t *peak) { ON_MODEL(m, (*now = M.mem.now, *peak = M.mem.peak)); }
}

// ----------------------------------------------------------------------------
// main: the option table and the training loop are the CPU trainer's (cuda/host.c runs them with this
// file's model as their Backend); with no flags at all, the embedded default (train_gpt2.c's tiny
// demo) on the GPU

static int gpu_main(int argc, char **argv) {
    if (argc == 1) return host_run_default_gpu(argv[0]);
    int rc = 0;
    HostRun *run = host_parse_args(argc, argv, &rc); // train_gpt2.c's options, plus --precision
    if (!run) return rc;
    rc = host_train_gpu(run, argc, argv);
    host_run_free(run);
    return rc;
}

#ifndef TESTING
int main(int argc, char **argv) { return gpu_main(argc, argv); }
#endif
