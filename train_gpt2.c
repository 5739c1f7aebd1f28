/*
train_gpt2.c — GPT-2 training on the CPU (C11, OpenMP, no BLAS) with LoRA, LoRI and PeriodicLoRA.

The reference trainer of this project, in the spirit of llm.c's train_gpt2.c: this file tells the
story of the model on the CPU top to bottom — the linear layer, the forward and backward passes
(layer math in kernels/layers.h, fast versions in kernels/fast.h), the adapter hooks (lora/), the
CPU backend of the training loop, and main. The library it stands on is in llmc/: the model's
memory layout and llm.c's files (model.h), AdamW and schedules (optim.h), the options (options.h),
the state file (state.h), inference and exact match (infer.h), the training loop over a Backend
(train.h), the embedded default (embedded.h), reports (report.h). The variants' differences are one
table, lora/variants.h.

What it is not: the fastest possible code (the matrix products, attention and the elementwise layers
have fast versions, kernels/gemm.h and kernels/fast.h, tested against kernels/layers.h's reference
ones, which --ref-kernels runs) or a GPU trainer (train_gpt2.cu).

Full fine-tuning is `--adapter none`. With an adapter the base model is frozen for real: no
gradient buffers for it, no weight gradients (dW = dy^T x), no embedding backward, no optimizer
state, and the backward pass stops below the lowest adapted layer.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef OMP
#include <omp.h>
#endif

#include "kernels/layers_float.h"
#include "kernels/gemm.h"
#include "kernels/fast.h"
#include "lora/adapter.h"
#include "llmc/utils.h"
#include "llmc/model.h"
#include "llmc/optim.h"
#include "llmc/options.h"
#include "llmc/train.h"
#include "llmc/embedded.h"

// ----------------------------------------------------------------------------
// the linear layer used by the model: the fast gemm (kernels/gemm.h), tested against
// matmul_forward_ref / matmul_backward_ref of kernels/layers.h

// Counts weight-gradient products of the base model: a frozen base must leave it at 0 (tested).
static long long g_base_weight_grad_calls = 0;
static int g_use_ref_kernels = 0; // --ref-kernels: the plain loops, for comparison

// the other layers: the fast versions (kernels/fast.h) unless --ref-kernels
#define FAST_OR_REF(name, ...) (g_use_ref_kernels ? name(__VA_ARGS__) : name##_fast(__VA_ARGS__))

// CPU_PROFILE=1 in the environment: the training steps after the first are timed by category
// (every kernel is its own OpenMP region, so a wall-clock bracket around a call is its cost) and
// the milliseconds per step are printed after training. Off: one predictable branch per call.
enum { PC_ZERO, PC_EMBED, PC_LN, PC_MATMUL, PC_WGRAD, PC_LMHEAD, PC_LORA, PC_ATT_FWD, PC_ATT_BWD, PC_GELU,
       PC_RESID, PC_CE, PC_OPT, PC_COMM, PC_NCAT };
static const char *prof_names[PC_NCAT] = {"zero gradients", "embedding", "layernorm", "matmul: forward + input grads",
                                          "matmul: weight + bias grads", "LM head (forward + input grad)", "adapter (LoRA path)",
                                          "attention forward", "attention backward", "GELU", "residual",
                                          "softmax + cross-entropy", "grad norm + AdamW",
                                          "gradient all-reduce (data parallel)"};
static int g_prof_on = 0;           // timing the current step
static double g_prof_s[PC_NCAT];    // seconds per category, summed over the profiled steps
#define PROF(cat, ...) do { double t0_ = g_prof_on ? now_s() : 0; __VA_ARGS__; if (g_prof_on) g_prof_s[cat] += now_s() - t0_; } while (0)

// out (N,OC) = inp (N,C) @ weight^T (OC,C) + bias (OC)
static void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    if (g_use_ref_kernels) { matmul_forward_ref(out, inp, weight, bias, N, C, OC); return; }
    gemm('N', 'T', N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for
        for (int n = 0; n < N; n++) for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
    }
}

// dinp (N,C) += dout @ weight; dweight (OC,C) += dout^T @ inp; dbias += colsum(dout); each may be NULL
static void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int N, int C, int OC) {
    if (dweight) g_base_weight_grad_calls++;
    if (g_use_ref_kernels) { matmul_backward_ref(dinp, dweight, dbias, dout, inp, weight, N, C, OC); return; }
    if (dinp) gemm('N', 'N', N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight) gemm('T', 'N', OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) { // column sums: blocks of 64 columns per thread, rows in order, vectorised across columns
#pragma omp parallel for
        for (int o0 = 0; o0 < OC; o0 += 64) {
            int o1 = o0 + 64 < OC ? o0 + 64 : OC;
            float acc[64] = {0};
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC;
#pragma omp simd
                for (int o = o0; o < o1; o++) acc[o - o0] += d[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
        }
    }
}

// dinp (N,C) = dout @ weight: the input gradient of a linear layer, written (not accumulated): in the
// model every such gradient has this one producer, so nothing needs zeroing or reading first
static void matmul_backward_input(float *dinp, const float *dout, const float *weight, int N, int C, int OC) {
    if (g_use_ref_kernels) {
        memset(dinp, 0, (size_t)N * C * sizeof(float));
        matmul_backward_ref(dinp, NULL, NULL, dout, NULL, weight, N, C, OC);
        return;
    }
    gemm('N', 'N', N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, dinp, C);
}

// ----------------------------------------------------------------------------

// Attaches an adapter (NULL: full fine-tuning) and allocates what training needs for (B,T).
// Gradient buffers of the base exist only when nothing is frozen.
// 0, or -1 when the adapter's buffers cannot be allocated.
static int gpt2_setup_training(GPT2 *m, Adapter *ad, int B, int T) {
    m->adapter = ad;
    if (!ad && !m->grads_memory) {
        m->grads_memory = xcalloc(m->num_parameters, sizeof(float), "gradients");
        point_parameters(&m->grads, m->grads_memory, m->param_sizes);
    }
    m->lowest_trainable = -1;
    if (ad) {
        m->lowest_trainable = 1 << 30;
        for (int s = 0; s < ad->nslots; s++) {
            int pos = 4 * ad->slot_layer[s] + ad->slot_target[s];
            if (pos < m->lowest_trainable) m->lowest_trainable = pos;
        }
        if (adapter_alloc_acts(ad, B * T) != 0) return -1;
    }
    if (m->acts_memory && m->batch_size == B && m->seq_len == T) return 0;
    free(m->acts_memory); free(m->grads_acts_memory); free(m->inputs); free(m->targets); free(m->dlosses);
    m->batch_size = B; m->seq_len = T;
    fill_in_activation_sizes(m->act_sizes, m->config, B, T);
    m->num_activations = 0;
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) m->num_activations += m->act_sizes[i];
    m->acts_memory = xcalloc(m->num_activations, sizeof(float), "activations");
    m->grads_acts_memory = xcalloc(m->num_activations, sizeof(float), "activation gradients");
    point_activations(&m->acts, m->acts_memory, m->act_sizes);
    point_activations(&m->grads_acts, m->grads_acts_memory, m->act_sizes);
    m->inputs = xcalloc((size_t)B * T, sizeof(int), "inputs");
    m->targets = xcalloc((size_t)B * T, sizeof(int), "targets");
    m->dlosses = xcalloc((size_t)B * T, sizeof(float), "dlosses");
    free(m->att_work);
#ifdef OMP
    int nthreads = omp_get_max_threads();
#else
    int nthreads = 1;
#endif
    m->att_work = attention_work_alloc(T, m->config.channels / m->config.num_heads, nthreads);
    return m->att_work ? 0 : -1;
}


// --ref-kernels: the adapter through kernels/layers.h's lowrank_forward / lowrank_backward (the plain
// loops the finite-difference tests check), never merged, with the same dropout draws as the fast path.
static long long g_ref_lowrank_calls = 0; // forwards and backwards run by the reference (for the tests)
static void adapter_forward_ref(Adapter *ad, int l, int t, float *out, const float *inp, int N) {
    int s = ad->slot_of[l][t];
    if (s < 0) return;
    int r = ad->cfg.rank;
    ad->merged[s] = 0;
    const float *dm = adapter_draw_dropout(ad, s, N);
    lowrank_forward(out, ad->u + (size_t)s * ad->N * r, inp, adapter_A(ad, s), adapter_B(ad, s), dm, ad->scale, N,
                    ad->slot_in[s], ad->slot_out[s], r);
    g_ref_lowrank_calls++;
}
static void adapter_backward_ref(Adapter *ad, int l, int t, float *dinp, const float *dout, const float *inp, int N) {
    int s = ad->slot_of[l][t];
    if (s < 0) return;
    int r = ad->cfg.rank;
    lowrank_backward(dinp, adapter_trains_A(ad) ? ad->grads + ad->a_off[s] : NULL, ad->grads + ad->nA + ad->b_off[s], ad->du,
                     dout, inp, ad->u + (size_t)s * ad->N * r, adapter_A(ad, s), adapter_B(ad, s), adapter_dropout_of(ad, s),
                     ad->scale, N, ad->slot_in[s], ad->slot_out[s], r);
    g_ref_lowrank_calls++;
}

// y = x W^T + b (+ the adapter's s·B A drop(x) when slot (l,t) is adapted)
static void linear_forward(GPT2 *m, int l, int t, float *out, const float *inp, const float *W, const float *b,
                           int N, int C, int OC) {
    if (m->adapter && g_use_ref_kernels) {
        matmul_forward(out, inp, W, b, N, C, OC);
        adapter_forward_ref(m->adapter, l, t, out, inp, N);
        return;
    }
    const float *Wf = W; // with an adapter, maybe W + s B A (see lora/adapter.h: merged execution)
    if (m->adapter) PROF(PC_LORA, Wf = adapter_forward_weight(m->adapter, l, t, W, N));
    PROF(PC_MATMUL, matmul_forward(out, inp, Wf, b, N, C, OC));
    if (m->adapter) PROF(PC_LORA, adapter_forward(m->adapter, l, t, out, inp, N));
}

// The backward of linear_forward. Base weight gradients only when the base trains; the input
// gradient (written, not accumulated) only when something below needs it (dinp NULL otherwise).
static void linear_backward(GPT2 *m, int l, int t, float *dinp, float *dW, float *db, const float *dout,
                            const float *inp, const float *W, int N, int C, int OC) {
    if (dinp) PROF(PC_MATMUL, matmul_backward_input(dinp, dout, m->adapter ? adapter_backward_weight(m->adapter, l, t, W) : W, N, C, OC));
    if (dW || db) PROF(PC_WGRAD, matmul_backward(NULL, dW, db, dout, inp, W, N, C, OC));
    if (m->adapter && g_use_ref_kernels) adapter_backward_ref(m->adapter, l, t, dinp, dout, inp, N);
    else if (m->adapter) PROF(PC_LORA, adapter_backward(m->adapter, l, t, dinp, dout, inp, N));
}

// Forward pass. inputs, targets are (B,T); targets may be NULL (no loss). mask (B,T) may be NULL:
// then every target counts; otherwise only positions with mask=1 (answer tokens) count.
// Sets m->mean_loss to the mean loss over counted targets (-1 when none or no targets).
// Returns NULL, or what is wrong with the batch (nothing is computed then).
static const char *gpt2_forward(GPT2 *m, const int *inputs, const int *targets, const uint8_t *mask, int B, int T) {
    static __thread char why[160];
    GPT2Config c = m->config;
    int V = c.vocab_size, Vp = c.padded_vocab_size, L = c.num_layers, NH = c.num_heads, C = c.channels;
#define FORWARD_FAIL(...) do { snprintf(why, sizeof(why), __VA_ARGS__); return why; } while (0)
    if (!m->acts_memory || B != m->batch_size || T != m->seq_len)
        FORWARD_FAIL("gpt2_forward with B=%d T=%d but activations for B=%d T=%d", B, T, m->batch_size, m->seq_len);
    if (T > c.max_seq_len) FORWARD_FAIL("sequence length %d exceeds the model's context %d", T, c.max_seq_len);
    for (int i = 0; i < B * T; i++) {
        if (inputs[i] < 0 || inputs[i] >= V) FORWARD_FAIL("input token id %d is outside the vocab (%d)", inputs[i], V);
        if (targets && (targets[i] < 0 || targets[i] >= V)) FORWARD_FAIL("target token id %d is outside the vocab (%d)", targets[i], V);
    }
#undef FORWARD_FAIL
    memcpy(m->inputs, inputs, sizeof(int) * B * T);
    if (targets) memcpy(m->targets, targets, sizeof(int) * B * T);
    ParameterTensors p = m->params;
    ActivationTensors a = m->acts;
    int N = B * T;
    PROF(PC_EMBED, encoder_forward(a.encoded, inputs, p.wte, p.wpe, B, T, C));
    for (int l = 0; l < L; l++) {
        float *residual = l == 0 ? a.encoded : a.residual3 + (size_t)(l - 1) * N * C;
        size_t o1 = (size_t)l * N * C, o3 = (size_t)l * N * 3 * C, o4 = (size_t)l * N * 4 * C, ob = (size_t)l * N;
        size_t oa = (size_t)l * B * NH * T * T;
        PROF(PC_LN, FAST_OR_REF(layernorm_forward, a.ln1 + o1, a.ln1_mean + ob, a.ln1_rstd + ob, residual, p.ln1w + l * C, p.ln1b + l * C, N, C));
        linear_forward(m, l, T_QKV, a.qkv + o3, a.ln1 + o1, p.qkvw + (size_t)l * 3 * C * C, p.qkvb + l * 3 * C, N, C, 3 * C);
        PROF(PC_ATT_FWD, g_use_ref_kernels ? attention_forward(a.atty + o1, a.preatt + oa, a.att + oa, a.qkv + o3, B, T, C, NH)
                                            : attention_forward_fast(a.atty + o1, a.preatt + oa, a.att + oa, a.qkv + o3, B, T, C, NH, m->att_work));
        linear_forward(m, l, T_ATTPROJ, a.attproj + o1, a.atty + o1, p.attprojw + (size_t)l * C * C, p.attprojb + l * C, N, C, C);
        PROF(PC_RESID, residual_forward(a.residual2 + o1, residual, a.attproj + o1, (size_t)N * C));
        PROF(PC_LN, FAST_OR_REF(layernorm_forward, a.ln2 + o1, a.ln2_mean + ob, a.ln2_rstd + ob, a.residual2 + o1, p.ln2w + l * C, p.ln2b + l * C, N, C));
        linear_forward(m, l, T_FC, a.fch + o4, a.ln2 + o1, p.fcw + (size_t)l * 4 * C * C, p.fcb + l * 4 * C, N, C, 4 * C);
        PROF(PC_GELU, FAST_OR_REF(gelu_forward, a.fch_gelu + o4, a.fch + o4, (size_t)N * 4 * C));
        linear_forward(m, l, T_FCPROJ, a.fcproj + o1, a.fch_gelu + o4, p.fcprojw + (size_t)l * 4 * C * C, p.fcprojb + l * C, N, 4 * C, C);
        PROF(PC_RESID, residual_forward(a.residual3 + o1, a.residual2 + o1, a.fcproj + o1, (size_t)N * C));
    }
    float *residual = a.residual3 + (size_t)(L - 1) * N * C;
    PROF(PC_LN, FAST_OR_REF(layernorm_forward, a.lnf, a.lnf_mean, a.lnf_rstd, residual, p.lnfw, p.lnfb, N, C));
    PROF(PC_LMHEAD, matmul_forward(a.logits, a.lnf, p.wte, NULL, N, C, Vp)); // LM head tied to wte
    m->mean_loss = -1.0f;
    if (!targets) return NULL;
    PROF(PC_CE, FAST_OR_REF(softmax_crossentropy_forward, a.losses, a.probs, a.logits, targets, N, V, Vp));
    double sum = 0;
    long count = 0;
    for (int i = 0; i < N; i++) if (!mask || mask[i]) { sum += a.losses[i]; count++; }
    if (count > 0) m->mean_loss = (float)(sum / count);
    return NULL;
}

// dst = src (src NULL: 0), in parallel: one thread's memset or memcpy does not fill the memory bus
static void copy_floats(float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += 16384) {
        size_t k = (n - i < 16384 ? n - i : 16384) * sizeof(float);
        if (src) memcpy(dst + i, src + i, k);
        else memset(dst + i, 0, k);
    }
}
static void zero_floats(float *p, size_t n) { copy_floats(p, NULL, n); }

// The parameter gradients, once per optimizer step (micro-batches accumulate into them).
static void gpt2_zero_grad(GPT2 *m) {
    if (m->grads_memory) zero_floats(m->grads_memory, m->num_parameters);
    if (m->adapter) memset(m->adapter->grads, 0, (m->adapter->nA + m->adapter->nB) * sizeof(float));
}

// The activation gradients that the backward accumulates into (+=), at the start of every backward:
// they belong to one micro-batch. The others are written before they are read: the linears' input
// gradients (matmul_backward_input), the residual stream's (copies, see gpt2_backward), the
// attention's scratch (preatt, att); mean, rstd, probs and losses have none.
static void gpt2_zero_act_grads(GPT2 *m) {
    size_t N = (size_t)m->batch_size * m->seq_len, C = m->config.channels, L = m->config.num_layers;
    ActivationTensors ga = m->grads_acts;
    zero_floats(ga.logits, N * m->config.padded_vocab_size); // softmax_crossentropy_backward
    zero_floats(ga.residual3 + (L - 1) * N * C, N * C);      // lnf's layernorm_backward
    zero_floats(ga.fch, L * N * 4 * C);                      // gelu_backward
    zero_floats(ga.qkv, L * N * 3 * C);                      // attention_backward
}

// Backward pass of the last forward. Each counted target's loss gets weight `scale` (1/count for a
// mean; 1/(count over all micro-batches) under gradient accumulation). Accumulates into the parameter
// gradients (zeroed by gpt2_zero_grad once per step); the activation gradients are its own, zeroed here.
static void gpt2_backward(GPT2 *m, const uint8_t *mask, float scale) {
    GPT2Config c = m->config;
    int B = m->batch_size, T = m->seq_len, N = B * T;
    int V = c.vocab_size, Vp = c.padded_vocab_size, L = c.num_layers, NH = c.num_heads, C = c.channels;
    ParameterTensors p = m->params, g = m->grads;
    int full = m->grads_memory != NULL;
    ActivationTensors a = m->acts, ga = m->grads_acts;
    int lo = m->lowest_trainable; // gradients are needed at and above this position only
    PROF(PC_ZERO, gpt2_zero_act_grads(m));
    for (int i = 0; i < N; i++) m->dlosses[i] = (!mask || mask[i]) ? scale : 0.0f;
    PROF(PC_CE, FAST_OR_REF(softmax_crossentropy_backward, ga.logits, m->dlosses, a.probs, m->targets, N, V, Vp));
    PROF(PC_LMHEAD, matmul_backward_input(ga.lnf, ga.logits, p.wte, N, C, Vp));
    if (full) PROF(PC_WGRAD, matmul_backward(NULL, g.wte, NULL, ga.logits, a.lnf, p.wte, N, C, Vp));
    float *residual = a.residual3 + (size_t)(L - 1) * N * C;
    float *dresidual = ga.residual3 + (size_t)(L - 1) * N * C;
    PROF(PC_LN, FAST_OR_REF(layernorm_backward, dresidual, full ? g.lnfw : NULL, full ? g.lnfb : NULL, ga.lnf, residual, p.lnfw, a.lnf_mean, a.lnf_rstd, N, C));
    for (int l = L - 1; l >= 0 && lo < 4 * l + 4; l--) {
        residual = l == 0 ? a.encoded : a.residual3 + (size_t)(l - 1) * N * C;
        dresidual = l == 0 ? ga.encoded : ga.residual3 + (size_t)(l - 1) * N * C;
        size_t o1 = (size_t)l * N * C, o3 = (size_t)l * N * 3 * C, o4 = (size_t)l * N * 4 * C, ob = (size_t)l * N;
        size_t oa = (size_t)l * B * NH * T * T;
        int p0 = 4 * l; // positions of qkv, attn_proj, fc, fc_proj: p0 .. p0+3
        // fc_proj and the residual around the MLP: residual3 = residual2 + fcproj passes its gradient
        // unchanged to both, so fc_proj's output gradient is residual3's (read in place) and residual2's
        // starts as a copy of it (ln2's backward adds the rest)
        PROF(PC_RESID, copy_floats(ga.residual2 + o1, ga.residual3 + o1, (size_t)N * C));
        linear_backward(m, l, T_FCPROJ, lo < p0 + 3 ? ga.fch_gelu + o4 : NULL, full ? g.fcprojw + (size_t)l * 4 * C * C : NULL,
                        full ? g.fcprojb + l * C : NULL, ga.residual3 + o1, a.fch_gelu + o4, p.fcprojw + (size_t)l * 4 * C * C, N, 4 * C, C);
        if (lo <= p0 + 2) {
            PROF(PC_GELU, FAST_OR_REF(gelu_backward, ga.fch + o4, a.fch + o4, ga.fch_gelu + o4, (size_t)N * 4 * C));
            linear_backward(m, l, T_FC, lo < p0 + 2 ? ga.ln2 + o1 : NULL, full ? g.fcw + (size_t)l * 4 * C * C : NULL,
                            full ? g.fcb + l * 4 * C : NULL, ga.fch + o4, a.ln2 + o1, p.fcw + (size_t)l * 4 * C * C, N, C, 4 * C);
        }
        if (lo < p0 + 2)
            PROF(PC_LN, FAST_OR_REF(layernorm_backward, ga.residual2 + o1, full ? g.ln2w + l * C : NULL, full ? g.ln2b + l * C : NULL,
                                    ga.ln2 + o1, a.residual2 + o1, p.ln2w + l * C, a.ln2_mean + ob, a.ln2_rstd + ob, N, C));
        if (lo > p0 + 1) break; // nothing trainable below the MLP of this layer
        // attn_proj and the residual around attention, likewise: residual2 = residual + attproj
        PROF(PC_RESID, copy_floats(dresidual, ga.residual2 + o1, (size_t)N * C));
        linear_backward(m, l, T_ATTPROJ, lo < p0 + 1 ? ga.atty + o1 : NULL, full ? g.attprojw + (size_t)l * C * C : NULL,
                        full ? g.attprojb + l * C : NULL, ga.residual2 + o1, a.atty + o1, p.attprojw + (size_t)l * C * C, N, C, C);
        if (lo <= p0) {
            PROF(PC_ATT_BWD, g_use_ref_kernels ? attention_backward(ga.qkv + o3, ga.preatt + oa, ga.att + oa, ga.atty + o1, a.qkv + o3, a.att + oa, B, T, C, NH)
                                                : attention_backward_fast(ga.qkv + o3, ga.preatt + oa, ga.att + oa, ga.atty + o1, a.qkv + o3, a.att + oa, B, T, C, NH, m->att_work));
            linear_backward(m, l, T_QKV, lo < p0 ? ga.ln1 + o1 : NULL, full ? g.qkvw + (size_t)l * 3 * C * C : NULL,
                            full ? g.qkvb + l * 3 * C : NULL, ga.qkv + o3, a.ln1 + o1, p.qkvw + (size_t)l * 3 * C * C, N, C, 3 * C);
        }
        if (lo < p0)
            PROF(PC_LN, FAST_OR_REF(layernorm_backward, dresidual, full ? g.ln1w + l * C : NULL, full ? g.ln1b + l * C : NULL,
                                    ga.ln1 + o1, residual, p.ln1w + l * C, a.ln1_mean + ob, a.ln1_rstd + ob, N, C));
    }
    if (full) { PROF(PC_EMBED, encoder_backward(g.wte, g.wpe, ga.encoded, m->inputs, B, T, C)); g_base_weight_grad_calls++; }
}


// --- the CPU backend: this file's model, computing on the host's copies

static int g_prof_wanted = 0; // CPU_PROFILE set

static int cpu_setup(Backend *be, Adapter *ad, const TrainConfig *cfg) {
    const char *prof_env = getenv("CPU_PROFILE");
    g_prof_wanted = prof_env && *prof_env && strcmp(prof_env, "0") != 0;
    memset(g_prof_s, 0, sizeof(g_prof_s));
    g_use_ref_kernels = cfg->ref_kernels;
    if (gpt2_setup_training(be->model, ad, cfg->B, cfg->T) != 0) {
        snprintf(be->err, sizeof(be->err), "out of memory allocating the adapter's activations or the attention scratch");
        return -1;
    }
    snprintf(be->desc, sizeof(be->desc), "threads %d | gemm %s", be->nthreads, g_use_ref_kernels ? "reference" : gemm_isa());
    be->zero = cfg->zero == 1 && dist_world() > 1;
    if (be->zero && !dist_shard_ok(be->model->num_parameters)) {
        snprintf(be->err, sizeof(be->err), "-z 1: %zu trainable values; ZeRO-1's MPI counts hold at most 2^31 - 1", be->model->num_parameters);
        return -1;
    }
    return 0;
}
// Do the optimizer's groups tile one buffer (the model's gradients, or the adapter's A then B)?
// Not with LoRI-S's kept entries of B.
static int cpu_grads_contiguous(const AdamW *o) {
    for (int k = 0; k < o->ngroups; k++)
        if (o->groups[k].idx || (k > 0 && o->groups[k].g != o->groups[k - 1].g + o->groups[k - 1].n)) return 0;
    return 1;
}
// ZeRO-1 (-z 1, full fine-tuning under mpirun): this rank keeps AdamW's moments for its shard of
// the parameters only (llmc/dist.h's dist_shard); grad_bucket receives its shard of the summed
// gradients. Full fine-tuning's groups tile the parameters and the gradients (checked).
static void cpu_opt_setup(Backend *be) {
    adamw_free(be->opt);
    adamw_setup(be->opt, be->model);
    AdamW *o = be->opt;
    size_t need = 0;
    if (be->zero) {
        if (be->model->adapter || !cpu_grads_contiguous(o)) die("internal: ZeRO-1 without full fine-tuning's contiguous groups");
        size_t lo, hi;
        dist_shard(o->total, dist_rank(), dist_world(), &lo, &hi);
        adamw_shard(o, lo, hi);
        need = hi - lo;
        printf("ZeRO-1: AdamW's moments sharded over %d ranks: rank 0 keeps entries [%zu, %zu) of %zu (%.1f MB instead of %.1f MB)\n",
               dist_world(), lo, hi, o->total, 8.0 * (hi - lo) / 1e6, 8.0 * o->total / 1e6);
    } else if (dist_active() && !cpu_grads_contiguous(o)) need = o->total; // data parallel, LoRI-S
    if (need > be->grad_bucket_n) {
        free(be->grad_bucket);
        be->grad_bucket = xcalloc(need, sizeof(float), "gradient bucket");
        be->grad_bucket_n = need;
    }
}
static void cpu_none(Backend *be) { (void)be; }
static void cpu_sync(Backend *be, int with_opt) { (void)be; (void)with_opt; }
static void cpu_set_training(Backend *be, int on) { if (be->model->adapter) be->model->adapter->training = on; }
static float cpu_forward(Backend *be, const int *inputs, const int *targets, const uint8_t *mask) {
    GPT2 *m = be->model;
    const char *bad = gpt2_forward(m, inputs, targets, mask, m->batch_size, m->seq_len);
    if (bad) { snprintf(be->err, sizeof(be->err), "%s", bad); return NAN; }
    return m->mean_loss;
}
static float cpu_forward_backward(Backend *be, const int *inputs, const int *targets, const uint8_t *mask, float scale) {
    float loss = cpu_forward(be, inputs, targets, mask);
    if (!be->err[0]) gpt2_backward(be->model, mask, scale);
    return loss;
}
static void cpu_get_logits(Backend *be, float *out) {
    GPT2 *m = be->model;
    memcpy(out, m->acts.logits, (size_t)m->seq_len * m->config.padded_vocab_size * sizeof(float));
}
static void cpu_begin_step(Backend *be, int timed) {
    g_prof_on = g_prof_wanted && timed;
    PROF(PC_ZERO, gpt2_zero_grad(be->model));
}
static float cpu_grad_norm(Backend *be) {
    float norm;
    if (adamw_sharded(be->opt)) { // ZeRO-1: each rank's shard of the summed gradients, then one sum
        double s;
        PROF(PC_OPT, s = adamw_grad_sumsq(be->opt, be->opt->lo, be->opt->hi));
        PROF(PC_COMM, dist_allreduce_f64(&s, 1));
        return (float)sqrt(s);
    }
    PROF(PC_OPT, norm = adamw_grad_norm(be->opt));
    return norm;
}
// Data parallel: the trainable gradients summed over the ranks in one bucket, the optimizer's
// groups: reduced in place when they tile one buffer; LoRI-S's kept entries of B are packed into
// grad_bucket first, so only they cross the wire.
static void cpu_allreduce_grads(Backend *be) {
    if (!dist_active()) return;
    AdamW *o = be->opt;
    PROF(PC_COMM, {
        if (adamw_sharded(o)) {        // ZeRO-1: only this rank's shard of the sum is needed
            dist_reduce_scatter_f32(o->groups[0].g, o->total, be->grad_bucket);
        } else if (cpu_grads_contiguous(o)) {
            if (o->ngroups) dist_allreduce_f32(o->groups[0].g, o->total);
        } else {
            size_t at = 0;
            for (int k = 0; k < o->ngroups; k++)
                for (size_t i = 0; i < o->groups[k].n; i++) be->grad_bucket[at++] = o->groups[k].g[o->groups[k].idx ? o->groups[k].idx[i] : i];
            dist_allreduce_f32(be->grad_bucket, o->total);
            at = 0;
            for (int k = 0; k < o->ngroups; k++)
                for (size_t i = 0; i < o->groups[k].n; i++) o->groups[k].g[o->groups[k].idx ? o->groups[k].idx[i] : i] = be->grad_bucket[at++];
        }
    });
}
static void cpu_adamw_step(Backend *be, float lr, float weight_decay, float gscale) {
    PROF(PC_OPT, adamw_step(be->opt, lr, weight_decay, gscale));
    if (adamw_sharded(be->opt)) PROF(PC_COMM, dist_allgather_f32(be->opt->groups[0].p, be->opt->total)); // ZeRO-1: every shard's update to every rank
}
static void cpu_plora_unload(Backend *be, float m) {
    // the history's room was reserved at set-up (llmc/train.h), so this cannot run out of memory
    if (plora_unload(be->model->adapter, gpt2_slot_weight, be->model, m) != 0) die("PLoRA: out of memory for the stage history");
    adamw_reset_moments(be->opt); // at every unload, m or not (lora/adapter.h says why)
}
static void cpu_end_step(Backend *be) { (void)be; g_prof_on = 0; }
static void cpu_free(Backend *be) { free(be->grad_bucket); be->grad_bucket = NULL; be->grad_bucket_n = 0; }
static void cpu_report_end(Backend *be, int timed_steps, double seconds) {
    if (!g_prof_wanted || !timed_steps) return;
    double sum = 0;
    for (int i = 0; i < PC_NCAT; i++) sum += g_prof_s[i];
    printf("CPU profile (CPU_PROFILE): ms per step over %d steps (%d threads)\n", timed_steps, be->nthreads);
    for (int i = 0; i < PC_NCAT; i++)
        printf("  %-34s %9.3f ms  %5.1f%%\n", prof_names[i], 1000 * g_prof_s[i] / timed_steps, 100 * g_prof_s[i] / seconds);
    printf("  %-34s %9.3f ms  %5.1f%%\n", "rest (data, checks, loss, sync)", 1000 * (seconds - sum) / timed_steps,
           100 * (seconds - sum) / seconds);
}

static const Backend cpu_backend = {
    .setup = cpu_setup, .opt_setup = cpu_opt_setup, .load = cpu_none, .sync = cpu_sync,
    .set_training = cpu_set_training, .forward = cpu_forward, .forward_backward = cpu_forward_backward,
    .get_logits = cpu_get_logits, .begin_step = cpu_begin_step, .allreduce_grads = cpu_allreduce_grads,
    .grad_norm = cpu_grad_norm, .adamw_step = cpu_adamw_step,
    .plora_unload = cpu_plora_unload, .end_step = cpu_end_step, .report_setup = cpu_none, .report_end = cpu_report_end,
    .free = cpu_free,
};

// Mean loss over the counted targets of the first nbatches batches of dl (dropout off).

// One training run on the CPU (llmc/train.h declares it; the GPU's is in cuda/host.c).
int run_training(TrainConfig *cfg, int argc, char **argv, TrainResult *res) {
    Backend be = cpu_backend;
    return run_training_on(&be, cfg, argc, argv, res);
}

// ----------------------------------------------------------------------------
#if !defined(TESTING) && !defined(NO_MAIN)
int main(int argc, char **argv) {
    char err[512];
    if (dist_init(err, sizeof(err)) != 0) die("%s", err); // data parallel under mpirun (llmc/dist.h); else one process
    if (argc == 1) {
        if (dist_world() > 1) die("the embedded default (no flags) runs as one process: start it without mpirun");
        return run_default(argv[0], run_training);
    }
    TrainConfig cfg;
    config_defaults(&cfg);
    int rc = parse_args(&cfg, argc, argv); // 1: -h printed
    if (rc == 0 && validate_args(&cfg) != 0) rc = -1;
    int status = rc < 0 ? 1 : rc == 0 ? run_training(&cfg, argc, argv, NULL) : 0;
    if (status != 0) dist_abort(status); // one rank's failure ends the job: the others would wait for it
    dist_finalize();
    return status;
}
#endif

