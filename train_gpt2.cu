/*
train_gpt2.cu — GPT-2 training on one NVIDIA GPU with LoRA, LoRI and PeriodicLoRA: the CUDA twin of
train_gpt2.c, with the same command line, defaults, files and logs.

How it is put together:
  - this file: the GPU model — parameters, activations, the forward and backward passes, the
    adapted linear layer, the optimizer — behind the C interface of cuda/gpt2_gpu.h;
  - cuda/host.c: everything on the host, compiled as C from train_gpt2.c itself (its option table,
    checkpoint reader/writer, data loader, adapter creation and files, LoRI masks, resume state,
    sampling), plus the training loop of train_gpt2.c with the model calls pointed here;
  - cuda/kernels.cuh (layernorm, GELU, cross-entropy, AdamW, ...), cuda/attention.cuh (causal
    flash attention: a reference kernel and a tensor-core one), cuda/gemm.cuh (cuBLASLt).

Precision (--precision bf16, the default, or fp32): in bf16 the activations and the weights the
products read are bf16, every product accumulates in fp32, and whatever trains has an fp32 master
copy, fp32 gradients and fp32 AdamW moments. The frozen base of an adapter run exists only in
bf16 (PLoRA, whose base absorbs the adapter at every stage boundary, keeps an fp32 master of it).
fp32 is exact fp32 throughout (no TF32): the mode the tests compare against the CPU trainer.

What an adapter costs: with the base frozen there are no base gradients at all (no buffers, no
dW = dy^T x products, no bias or layernorm sums, no embedding backward), and the backward stops
below the lowest adapted layer. The adapted linear is y = x W^T + b + s (drop(x) A^T) B^T. With
dropout that is two skinny products forward and four backward (dB, du = s dy B, dA, dx += du A),
all cuBLASLt. Without dropout the low-rank factor rides inside the layer's own products: the input
keeps spare columns holding s x A^T and the weight is kept once more as [W | B], so the forward is
one product over K = in + r; backward, qkv's and fc's input-gradient product over [W | B] also
yields dy B, and attn_proj's and fc_proj's run over [W ; A] with du in spare columns of the
residual gradient (fc_proj's with the GELU backward in cuBLASLt's epilogue). LoRI-S updates only
the kept entries of B (an index list; nothing dense over B, let alone W), so masked entries stay
exactly 0; PLoRA's unload is one product per slot on the device.
*/
#include <math.h>
#include <string.h>
#include <time.h>
#include <algorithm>
#include <string>
#include <utility>
#include <type_traits>
#include <vector>
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/attention.cuh"
#include "cuda/gemm.cuh"
#include "cuda/gpt2_gpu.h"

// Counts weight-gradient products of the base model: a frozen base must leave it at 0 (tested).
static long long g_gpu_base_weight_grad_calls = 0;

static double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void gpu_die(const char *msg) {
    fprintf(stderr, "error: %s\n", msg);
    exit(1);
}

// ----------------------------------------------------------------------------
// the parameters, in llm.c's checkpoint order (train_gpt2.c's fill_in_parameter_sizes)

enum { P_WTE, P_WPE, P_LN1W, P_LN1B, P_QKVW, P_QKVB, P_ATTPROJW, P_ATTPROJB, P_LN2W, P_LN2B, P_FCW, P_FCB, P_FCPROJW,
       P_FCPROJB, P_LNFW, P_LNFB, NUM_PARAMS };
static const int param_is_matrix_gpu[NUM_PARAMS] = {1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0};

static void gpu_param_sizes(size_t *s, const GPUConfig &c) {
    size_t Vp = c.padded_vocab_size, C = c.channels, maxT = c.max_seq_len, L = c.num_layers;
    size_t v[NUM_PARAMS] = {Vp * C, maxT * C, L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C,
                            L * C, L * C, L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C, C, C};
    memcpy(s, v, sizeof(v));
}

// GPU_PROFILE=1 in the environment: every operation is bracketed by CUDA events and the time per step
// of each category is printed when the model is freed (steps after the first; waits included)
enum { PC_HOST, PC_EMBED, PC_MATMUL, PC_WGRAD, PC_LORA, PC_ATT_FWD, PC_ATT_BWD, PC_LN, PC_GELU, PC_CE, PC_OPT, PC_NCAT };
static const char *prof_names[PC_NCAT] = {"batch upload, loss download, host waits", "embedding", "matmul: forward, input grads, LM head",
                                          "matmul: weight and bias grads", "adapter products", "attention forward",
                                          "attention backward", "layernorm (+residual)", "gelu", "cross-entropy",
                                          "optimizer, grad norm, zeroing"};

// the interface the C side sees (cuda/gpt2_gpu.h); one implementation per activation type
struct GPUModel {
    virtual ~GPUModel() {}
    virtual const char *describe() = 0;
    virtual void set_params(const float *p) = 0;
    virtual void get_params(float *p) = 0;
    virtual void set_adapter(const float *ab) = 0;
    virtual void get_adapter(float *ab) = 0;
    virtual void set_mask(const uint32_t *kept, size_t nkept, int use) = 0;
    virtual void set_dropout(uint64_t state, int training) = 0;
    virtual uint64_t get_dropout_rng() = 0;
    virtual void opt_setup() = 0;
    virtual size_t opt_size() = 0;
    virtual void opt_reset() = 0;
    virtual void opt_get(float *m, float *v) = 0;
    virtual void opt_set(const float *m, const float *v) = 0;
    virtual void zero_grad() = 0;
    virtual float forward(const int *inp, const int *tgt, const uint8_t *mask, float scale, bool backward, long *count) = 0;
    virtual float grad_norm() = 0;
    virtual void adamw_step(float lr, float wd, float gscale, int t) = 0;
    virtual void plora_fold(float factor) = 0;
    virtual void get_logits(int row0, int nrows, float *out) = 0;
    virtual void get_grads(float *g) = 0;
    virtual void get_adapter_grads(float *g) = 0;
    virtual void prof_flush() = 0;
    size_t mem_now = 0, mem_peak = 0;
};

template <typename T> struct ModelT : GPUModel {
    static constexpr bool is_bf16 = std::is_same<T, bf16>::value;
    GPUConfig c;
    int B, T_, N, L, C, NH, V, Vp;
    bool simple;
    int num_sms;
    std::string desc;
    GemmContext gc;
    cudaStream_t st = 0;

    size_t psz[NUM_PARAMS], poff[NUM_PARAMS], nparams = 0;
    float *params32 = nullptr; // fp32 master: full fine-tuning, PLoRA, or fp32 mode
    T *paramsX = nullptr;      // what the kernels read (== params32 in fp32 mode)
    float *grads32 = nullptr;  // full fine-tuning only

    // the adapter
    bool has_ad = false;
    int kind = 0, rank = 0, trains_A = 0, nslots = 0, lowest = -1;
    float scale = 0.0f, dropout = 0.0f;
    std::vector<int> slot_layer, slot_target, slot_in, slot_out;
    std::vector<size_t> a_off, b_off;
    std::vector<int> slot_of; // (L, 4) -> slot or -1
    size_t nA = 0, nB = 0, nkept = 0;
    float *ab32 = nullptr, *gab32 = nullptr;
    T *abX = nullptr;
    uint32_t *kept_d = nullptr;
    bool masked = false;
    T *u = nullptr, *du = nullptr, *xd = nullptr, *tmp = nullptr;
    uint64_t drop_state = 0;
    bool training = true;
    std::vector<uint64_t> slot_rng;
    std::vector<char> slot_dropped;
    // The adapter concatenated along K (no dropout; all four products): the layer's input buffer has
    // spare columns per row (rank rounded up to 64; row stride ld1 or ldg) that hold s u = s x A^T, and
    // the weight is stored once more as [W | B] (out, in + rp; rp = rank rounded up to 8), so
    // y = [x | s u] [W | B]^T + b is one product and s u itself is read back by the backward
    // (dB = dout^T (s u)). ld1: row stride of ln1, ln2 and atty (the attention kernels write it with
    // that stride, so attn_proj is concatenated too), ldg: of fchg.
    bool kcat = false;
    bool fuse_gelu = true; // fc_proj's dinp += du A inside the GELU backward (GPU_NO_FUSED_GELU=1: off)
    // bf16: the GELU forward in the fc product's cuBLASLt epilogue (GPU_NO_GELU_EPILOGUE=1: the kernel)
    bool gelu_epilogue = is_bf16 && getenv("GPU_NO_GELU_EPILOGUE") == nullptr;
    // the input-gradient product of a [W | B] layer also gives dout B (GPU_NO_WIDE_DINP=1: a product of its own)
    bool wide_dinp = getenv("GPU_NO_WIDE_DINP") == nullptr;
    int rp = 0;
    long ld1 = 0, ldg = 0;
    std::vector<T *> slot_wb;  // per slot: its [W | B], or NULL
    // attn_proj's and fc_proj's backward with the adapter's input-gradient term inside the product (and
    // fc_proj's GELU backward in its epilogue, bf16): dinp = [dout | du] [W ; A], K concatenated the
    // other way: du = s dout B sits in the spare columns of the residual gradient (row stride ldr), the
    // weight is kept once more as [W ; A] (out + r, in). See resid_backward.
    std::vector<T *> slot_wa;  // per attn_proj / fc_proj slot: its [W ; A], or NULL
    bool dgelu_epilogue = is_bf16 && getenv("GPU_NO_DGELU_EPILOGUE") == nullptr;
    long ldr = 0;
    std::vector<ColCopy<T>> wb_jobs;
    ColCopy<T> *wb_jobs_d = nullptr;
    bool wb_w_dirty = true;    // the W parts need copying (new parameters, PLoRA fold)

    // activations (per layer where the backward needs them) and scratch
    T *encoded, *ln1, *qkv, *atty, *res2, *ln2, *fch, *fchg, *res3, *lnf, *logits, *proj;
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd, *lnf_mean, *lnf_rstd, *lse, *losses;
    T *dres, *dbig, *dqkv, *dsmall;
    float *attD;
    int *inputs_d, *targets_d;
    float *weights_d;
    std::vector<int> inputs_h;
    std::vector<float> losses_h, weights_h;
    bool have_targets = false;

    // the optimizer
    struct Group {
        float *p, *g;
        T *px;
        size_t n;
        const uint32_t *idx;
        int decay;
    };
    std::vector<Group> groups;
    float *opt_m = nullptr, *opt_v = nullptr;
    size_t opt_total = 0;
    double *norm_d = nullptr;

    // the profile (GPU_PROFILE)
    bool prof = getenv("GPU_PROFILE") != nullptr;
    std::vector<cudaEvent_t> ev_pool;
    std::vector<int> ev_cat;
    size_t nev = 0;
    double prof_ms[PC_NCAT] = {}, prof_host_ms = 0;
    int prof_steps = 0;
    void mark(int cat) {
        if (!prof) return;
        if (nev == ev_pool.size()) {
            cudaEvent_t e;
            CUDA_CHECK(cudaEventCreate(&e));
            ev_pool.push_back(e);
            ev_cat.push_back(0);
        }
        CUDA_CHECK(cudaEventRecord(ev_pool[nev], st));
        ev_cat[nev++] = cat;
    }
    void prof_flush() override { // once per step: the intervals between consecutive marks, by category
        if (!prof || nev == 0) return;
        mark(-1);
        CUDA_CHECK(cudaEventSynchronize(ev_pool[nev - 1]));
        if (prof_steps++ > 0)
            for (size_t i = 0; i + 1 < nev; i++) {
                float ms = 0;
                CUDA_CHECK(cudaEventElapsedTime(&ms, ev_pool[i], ev_pool[i + 1]));
                if (ev_cat[i] >= 0) prof_ms[ev_cat[i]] += ms;
            }
        nev = 0;
    }
    void prof_report() {
        if (!prof || prof_steps < 2) return;
        double tot = 0;
        for (int i = 0; i < PC_NCAT; i++) tot += prof_ms[i];
        int n = prof_steps - 1;
        printf("GPU profile (GPU_PROFILE): %.2f ms per step over %d steps; host enqueue of forward+backward %.2f ms\n", tot / n, n,
               prof_host_ms / n);
        for (int i = 0; i < PC_NCAT; i++)
            printf("  %-42s %8.3f ms  %5.1f%%\n", prof_names[i], prof_ms[i] / n, 100.0 * prof_ms[i] / tot);
    }

    std::vector<std::pair<void *, size_t>> allocations; // every device buffer and its size
    template <typename X> X *dalloc(size_t n) {
        X *p = nullptr;
        size_t bytes = (n ? n : 1) * sizeof(X);
        cudaError_t e = cudaMalloc(&p, bytes);
        if (e != cudaSuccess) {
            fprintf(stderr, "error: out of GPU memory allocating %zu bytes (%s); %zu bytes already held\n", bytes,
                    cudaGetErrorString(e), mem_now);
            exit(1);
        }
        CUDA_CHECK(cudaMemset(p, 0, bytes));
        allocations.push_back({(void *)p, bytes});
        mem_now += bytes;
        if (mem_now > mem_peak) mem_peak = mem_now;
        return p;
    }
    template <typename X> void dfree(X *&p) {
        if (!p) return;
        for (size_t i = 0; i < allocations.size(); i++)
            if (allocations[i].first == (void *)p) {
                mem_now -= allocations[i].second;
                allocations.erase(allocations.begin() + i);
                break;
            }
        CUDA_CHECK(cudaFree(p));
        p = nullptr;
    }

    ModelT(const GPUConfig *cfg, const float *params, const GPUAdapterDesc *ad, int B_, int Tt, bool simple_) {
        c = *cfg;
        B = B_; T_ = Tt; N = B * T_;
        L = c.num_layers; C = c.channels; NH = c.num_heads; V = c.vocab_size; Vp = c.padded_vocab_size;
        simple = simple_;
        if (C % 8 != 0 || Vp % 8 != 0) gpu_die("the GPU trainer needs the channels and the padded vocab to be multiples of 8");
        if (C / NH > ATT_MAX_HS) gpu_die("the GPU trainer supports head sizes up to 256");
        int dev;
        CUDA_CHECK(cudaGetDevice(&dev));
        cudaDeviceProp prop;
        CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
        num_sms = prop.multiProcessorCount;
        gemm_context_init(&gc, st, 32u << 20, &mem_now, &mem_peak);
        mem_now += gc.workspace_size;
        mem_peak = mem_now;
        bool fast = attention_fast_ok<T>(C / NH, simple);
        desc = std::string(prop.name) + ", " + (is_bf16 ? "bf16" : "fp32") + ", attention " +
               (fast ? "flash (tensor cores)" : "reference kernel");

        // adapter shapes
        if (ad) {
            has_ad = true;
            kind = ad->kind; rank = ad->rank; scale = ad->scale; dropout = ad->dropout; trains_A = ad->trains_A;
            nslots = ad->nslots; nA = ad->nA; nB = ad->nB;
            slot_layer.assign(ad->slot_layer, ad->slot_layer + nslots);
            slot_target.assign(ad->slot_target, ad->slot_target + nslots);
            slot_in.assign(ad->slot_in, ad->slot_in + nslots);
            slot_out.assign(ad->slot_out, ad->slot_out + nslots);
            a_off.assign(ad->a_off, ad->a_off + nslots);
            b_off.assign(ad->b_off, ad->b_off + nslots);
            slot_of.assign((size_t)L * 4, -1);
            lowest = 1 << 30;
            for (int s = 0; s < nslots; s++) {
                slot_of[slot_layer[s] * 4 + slot_target[s]] = s;
                lowest = std::min(lowest, 4 * slot_layer[s] + slot_target[s]);
            }
            slot_rng.assign(nslots, 0);
            slot_dropped.assign(nslots, 0);
            kcat = dropout == 0.0f && getenv("GPU_NO_KCAT") == nullptr;
            fuse_gelu = getenv("GPU_NO_FUSED_GELU") == nullptr;
            rp = (rank + 7) / 8 * 8;
        }
        // activation rows with spare columns are padded to whole 128-byte lines (64 bf16): every row starts
        // on a line, as the contiguous ones do
        int rpad = (rank + 63) / 64 * 64;
        ld1 = kcat ? C + rpad : C;
        ldg = kcat ? 4 * C + rpad : 4 * C;
        ldr = kcat ? C + rpad : C;

        // parameters
        gpu_param_sizes(psz, c);
        for (int i = 0; i < NUM_PARAMS; i++) { poff[i] = nparams; nparams += psz[i]; }
        bool need32 = !is_bf16 || !has_ad || kind == 3;
        if (need32) params32 = dalloc<float>(nparams);
        if (is_bf16) paramsX = dalloc<T>(nparams);
        else paramsX = reinterpret_cast<T *>(params32);
        if (!has_ad) grads32 = dalloc<float>(nparams);
        set_params(params);
        if (has_ad) {
            ab32 = dalloc<float>(nA + nB);
            gab32 = dalloc<float>(nA + nB);
            abX = is_bf16 ? dalloc<T>(nA + nB) : reinterpret_cast<T *>(ab32);
            u = dalloc<T>((size_t)nslots * N * rank);
            du = dalloc<T>((size_t)N * rank);
            if (dropout > 0) {
                xd = dalloc<T>((size_t)N * 4 * C);
                tmp = dalloc<T>((size_t)N * 4 * C);
            }
            slot_wb.assign(nslots, nullptr);
            slot_wa.assign(nslots, nullptr);
            if (kcat) {
                for (int s = 0; s < nslots; s++) {
                    slot_wb[s] = dalloc<T>((size_t)slot_out[s] * (slot_in[s] + rp));
                    wb_jobs.push_back(ColCopy<T>{slot_wb[s] + slot_in[s], slot_B(s), (long)(slot_in[s] + rp), slot_out[s], rank});
                    if (slot_target[s] == 1 || (slot_target[s] == 3 && dgelu_epilogue)) {
                        slot_wa[s] = dalloc<T>((size_t)(slot_out[s] + rank) * slot_in[s]);
                        wb_jobs.push_back(ColCopy<T>{slot_wa[s] + (size_t)slot_out[s] * slot_in[s], slot_A(s), (long)slot_in[s],
                                                     rank, slot_in[s]});
                    }
                }
                if (!wb_jobs.empty()) {
                    wb_jobs_d = dalloc<ColCopy<T>>(wb_jobs.size());
                    CUDA_CHECK(cudaMemcpy(wb_jobs_d, wb_jobs.data(), wb_jobs.size() * sizeof(ColCopy<T>), cudaMemcpyHostToDevice));
                }
            }
        }

        // activations
        size_t NC = (size_t)N * C;
        encoded = dalloc<T>(NC);
        ln1 = dalloc<T>((size_t)L * N * ld1);
        qkv = dalloc<T>(L * 3 * NC);
        atty = dalloc<T>((size_t)L * N * ld1);
        res2 = dalloc<T>(L * NC);
        ln2 = dalloc<T>((size_t)L * N * ld1);
        fch = dalloc<T>(L * 4 * NC);
        fchg = dalloc<T>((size_t)L * N * ldg);
        res3 = dalloc<T>(L * NC);
        lnf = dalloc<T>(NC);
        logits = dalloc<T>((size_t)N * Vp);
        proj = dalloc<T>(NC);
        ln1_mean = dalloc<float>((size_t)L * N); ln1_rstd = dalloc<float>((size_t)L * N);
        ln2_mean = dalloc<float>((size_t)L * N); ln2_rstd = dalloc<float>((size_t)L * N);
        lnf_mean = dalloc<float>(N); lnf_rstd = dalloc<float>(N);
        lse = dalloc<float>((size_t)L * N * NH);
        losses = dalloc<float>(N);
        dres = dalloc<T>((size_t)N * ldr);
        dbig = dalloc<T>((size_t)N * ldg);
        dqkv = dalloc<T>(3 * NC);
        dsmall = dalloc<T>((size_t)N * ld1);
        attD = dalloc<float>((size_t)N * NH);
        inputs_d = dalloc<int>(N);
        targets_d = dalloc<int>(N);
        weights_d = dalloc<float>(N);
        norm_d = dalloc<double>(1);
        inputs_h.resize(N);
        losses_h.resize(N);
        weights_h.resize(N);
        opt_setup();
    }

    ~ModelT() {
        prof_report();
        for (cudaEvent_t e : ev_pool) cudaEventDestroy(e);
        for (auto &a : allocations) cudaFree(a.first);
        gemm_context_free(&gc);
    }

    const char *describe() override { return desc.c_str(); }

    // host float32 -> params32 and/or paramsX, in chunks (no full-size temporary on the device)
    void set_params(const float *p) override {
        wb_w_dirty = true;
        if (params32) {
            CUDA_CHECK(cudaMemcpy(params32, p, nparams * sizeof(float), cudaMemcpyHostToDevice));
            if (is_bf16) cast(paramsX, params32, (long)nparams, st);
            return;
        }
        const size_t chunk = 1 << 24;
        float *buf = dalloc<float>(chunk);
        for (size_t i = 0; i < nparams; i += chunk) {
            size_t n = std::min(chunk, nparams - i);
            CUDA_CHECK(cudaMemcpy(buf, p + i, n * sizeof(float), cudaMemcpyHostToDevice));
            cast(paramsX + i, buf, (long)n, st);
        }
        CUDA_CHECK(cudaDeviceSynchronize());
        dfree(buf);
    }
    void get_params(float *p) override {
        if (params32) { CUDA_CHECK(cudaMemcpy(p, params32, nparams * sizeof(float), cudaMemcpyDeviceToHost)); return; }
        const size_t chunk = 1 << 24;
        float *buf = dalloc<float>(chunk);
        for (size_t i = 0; i < nparams; i += chunk) {
            size_t n = std::min(chunk, nparams - i);
            cast(buf, paramsX + i, (long)n, st);
            CUDA_CHECK(cudaMemcpy(p + i, buf, n * sizeof(float), cudaMemcpyDeviceToHost));
        }
        dfree(buf);
    }
    void set_adapter(const float *ab) override {
        CUDA_CHECK(cudaMemcpy(ab32, ab, (nA + nB) * sizeof(float), cudaMemcpyHostToDevice));
        if (is_bf16) cast(abX, ab32, (long)(nA + nB), st);
    }
    void get_adapter(float *ab) override {
        CUDA_CHECK(cudaMemcpy(ab, ab32, (nA + nB) * sizeof(float), cudaMemcpyDeviceToHost));
    }
    void set_mask(const uint32_t *kept, size_t n, int use) override {
        dfree(kept_d);
        nkept = use ? n : 0;
        masked = use != 0;
        if (masked) {
            kept_d = dalloc<uint32_t>(nkept);
            if (nkept) CUDA_CHECK(cudaMemcpy(kept_d, kept, nkept * sizeof(uint32_t), cudaMemcpyHostToDevice));
        }
    }
    void set_dropout(uint64_t state, int train) override { drop_state = state; training = train != 0; }
    uint64_t get_dropout_rng() override { return drop_state; }

    // ------------------------------------------------------------------------
    // the optimizer (train_gpt2.c's adamw_setup, adamw_grad_norm, adamw_step)

    void opt_setup() override {
        groups.clear();
        opt_total = 0;
        auto add = [&](float *p, float *g, T *px, size_t n, const uint32_t *idx, int decay) {
            groups.push_back(Group{p, g, is_bf16 ? px : nullptr, n, idx, decay});
            opt_total += n;
        };
        if (!has_ad) {
            for (int i = 0; i < NUM_PARAMS; i++)
                add(params32 + poff[i], grads32 + poff[i], paramsX + poff[i], psz[i], nullptr, param_is_matrix_gpu[i]);
        } else {
            if (trains_A) add(ab32, gab32, abX, nA, nullptr, 1);
            if (masked) add(ab32 + nA, gab32 + nA, abX + nA, nkept, kept_d, 1); // LoRI-S: the kept entries only
            else add(ab32 + nA, gab32 + nA, abX + nA, nB, nullptr, 1);
        }
        dfree(opt_m);
        dfree(opt_v);
        opt_m = dalloc<float>(opt_total);
        opt_v = dalloc<float>(opt_total);
    }
    size_t opt_size() override { return opt_total; }
    void opt_reset() override {
        CUDA_CHECK(cudaMemset(opt_m, 0, opt_total * sizeof(float)));
        CUDA_CHECK(cudaMemset(opt_v, 0, opt_total * sizeof(float)));
    }
    void opt_get(float *m, float *v) override {
        CUDA_CHECK(cudaMemcpy(m, opt_m, opt_total * sizeof(float), cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(v, opt_v, opt_total * sizeof(float), cudaMemcpyDeviceToHost));
    }
    void opt_set(const float *m, const float *v) override {
        CUDA_CHECK(cudaMemcpy(opt_m, m, opt_total * sizeof(float), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(opt_v, v, opt_total * sizeof(float), cudaMemcpyHostToDevice));
    }
    void zero_grad() override {
        mark(PC_OPT);
        if (grads32) CUDA_CHECK(cudaMemsetAsync(grads32, 0, nparams * sizeof(float), st));
        if (gab32) CUDA_CHECK(cudaMemsetAsync(gab32, 0, (nA + nB) * sizeof(float), st));
    }
    float grad_norm() override {
        mark(PC_OPT);
        CUDA_CHECK(cudaMemsetAsync(norm_d, 0, sizeof(double), st));
        for (const Group &g : groups) {
            if (g.n == 0) continue;
            int blocks = std::min(ceil_div((long)g.n, 256), 4 * num_sms);
            sumsq_kernel<<<blocks, 256, 0, st>>>(norm_d, g.g, g.idx, (long)g.n);
            CUDA_LAUNCH_CHECK();
        }
        double s = 0;
        CUDA_CHECK(cudaMemcpy(&s, norm_d, sizeof(double), cudaMemcpyDeviceToHost));
        return (float)sqrt(s);
    }
    void adamw_step(float lr, float wd, float gscale, int t) override {
        mark(PC_OPT);
        const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
        float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
        size_t base = 0;
        for (const Group &g : groups) {
            if (g.n) {
                int blocks = std::min(ceil_div((long)g.n, 256), 8 * num_sms);
                adamw_kernel<T><<<blocks, 256, 0, st>>>(g.p, g.g, opt_m + base, opt_v + base, g.px, g.idx, (long)g.n, lr, b1,
                                                        b2, eps, bc1, bc2, g.decay ? wd : 0.0f, gscale);
                CUDA_LAUNCH_CHECK();
            }
            base += g.n;
        }
    }

    // ------------------------------------------------------------------------
    // the adapted linear layer: y = x W^T + b (+ s (drop(x) A^T) B^T when slot (l,t) is adapted)

    const T *pX(int i) const { return paramsX + poff[i]; }
    const T *slot_A(int s) const { return abX + a_off[s]; }
    const T *slot_B(int s) const { return abX + nA + b_off[s]; }

    // the [W | B] copies up to date: W parts when the base changed, B parts (one launch) always
    void refresh_wb() {
        if (!kcat || wb_jobs.empty()) return;
        if (wb_w_dirty) {
            static const int wt[4] = {P_QKVW, P_ATTPROJW, P_FCW, P_FCPROJW};
            static const size_t per[4] = {3, 1, 4, 4};
            for (int s = 0; s < nslots; s++) {
                int l = slot_layer[s], t = slot_target[s], in = slot_in[s], o = slot_out[s];
                const T *W = pX(wt[t]) + (size_t)l * per[t] * C * C;
                if (slot_wb[s])
                    CUDA_CHECK(cudaMemcpy2DAsync(slot_wb[s], (in + rp) * sizeof(T), W, in * sizeof(T), in * sizeof(T), o,
                                                 cudaMemcpyDeviceToDevice, st));
                if (slot_wa[s]) CUDA_CHECK(cudaMemcpyAsync(slot_wa[s], W, (size_t)o * in * sizeof(T), cudaMemcpyDeviceToDevice, st));
            }
            wb_w_dirty = false;
        }
        dim3 grid(64, (unsigned)wb_jobs.size());
        copy_cols_kernel<<<grid, 256, 0, st>>>(wb_jobs_d);
        CUDA_LAUNCH_CHECK();
    }

    // out (N,OC) = inp (N,Cin; row stride ldin) W^T (W (OC,Cin)) + bias, plus the adapter's low-rank term.
    // gout != NULL asks for gout (row stride ldgo) = gelu(out) too, in the product's epilogue where the
    // whole layer is one product (bf16; returns true), else the caller runs the GELU kernel.
    bool linear_forward(int l, int t, T *out, const T *inp, long ldin, const T *W, const T *bias, int Cin, int OC,
                        T *gout = nullptr, long ldgo = 0) {
        int s = has_ad ? slot_of[l * 4 + t] : -1;
        bool epi = gout && gelu_epilogue;
        T *D = epi ? gout : out, *aux = epi ? out : nullptr;
        long ldD = epi ? ldgo : OC;
        if (s >= 0 && slot_wb[s]) { // concatenated along K: s u into inp's spare columns, then one product
            mark(PC_LORA);
            T *su = const_cast<T *>(inp) + Cin;
            gemm<T, T>(&gc, 'N', 'T', N, rank, Cin, scale, inp, ldin, slot_A(s), Cin, 0.0f, su, ldin);
            mark(PC_MATMUL);
            gemm<T, T>(&gc, 'N', 'T', N, OC, Cin + rank, 1.0f, inp, ldin, slot_wb[s], Cin + rp, 0.0f, D, ldD, bias, aux, OC);
            slot_dropped[s] = 0;
            return epi;
        }
        mark(PC_MATMUL);
        if (s < 0) {
            gemm<T, T>(&gc, 'N', 'T', N, OC, Cin, 1.0f, inp, ldin, W, Cin, 0.0f, D, ldD, bias, aux, OC);
            return epi;
        }
        gemm<T, T>(&gc, 'N', 'T', N, OC, Cin, 1.0f, inp, ldin, W, Cin, 0.0f, out, OC, bias);
        mark(PC_LORA);
        int in = slot_in[s], o = slot_out[s], r = rank;
        T *us = u + (size_t)s * N * r;
        const T *x = inp;
        slot_dropped[s] = dropout > 0 && training;
        if (slot_dropped[s]) { // inverted dropout on the adapter's input, the CPU trainer's draws
            slot_rng[s] = drop_state;
            float keep = 1.0f - dropout;
            long n = (long)N * in;
            dropout_apply_kernel<<<std::min(ceil_div(n, 256), 16 * num_sms), 256, 0, st>>>(xd, inp, n, drop_state, 0, keep, 1.0f / keep);
            CUDA_LAUNCH_CHECK();
            drop_state += (uint64_t)n * 0x9E3779B97F4A7C15ull;
            x = xd;
        }
        gemm<T, T>(&gc, 'N', 'T', N, r, in, 1.0f, x, slot_dropped[s] ? in : ldin, slot_A(s), in, 0.0f, us, r); // u = drop(x) A^T
        gemm<T, T>(&gc, 'N', 'T', N, o, r, scale, us, r, slot_B(s), r, 1.0f, out, o);           // out += s u B^T
        return false;
    }

    // dinp (N,Cin; row stride ldi) = dout W (NULL: not needed); dW (OC,Cin) += dout^T inp; dbias += colsum(dout)
    // (fp32, NULL when frozen); then the adapter: dB += s dout^T u, du = s dout B, dA += du^T drop(x),
    // dinp += (du A) * drop. dout's row stride is ldd, inp's ldin. Where the layer keeps [W | B] and dinp
    // has room for rank more columns (ldi >= Cin + rank), one product gives [dinp | dout B]: du is read
    // back from dinp's spare columns (then unscaled: the scale goes into the products that use it).
    // defer: leave dinp += du A to the caller (du in def_du, row stride def_ldu, times def_us), returning
    // true, when there is no dropout (the GELU backward takes it).
    // full fine-tuning's weight and bias gradients of a linear: dW (OC,Cin) += dout^T inp, dbias += colsum(dout)
    void base_grads(float *dW, float *db, const T *dout, long ldd, const T *inp, long ldin, int Cin, int OC) {
        mark(PC_WGRAD);
        if (dW) {
            gemm<T, float>(&gc, 'T', 'N', OC, Cin, N, 1.0f, dout, ldd, inp, ldin, 1.0f, dW, Cin);
            g_gpu_base_weight_grad_calls++;
        }
        if (db) {
            if (ldd != OC) gpu_die("internal: bias gradient of a strided output gradient");
            bias_backward(db, dout, N, OC, st);
        }
    }
    const T *def_du = nullptr;
    long def_ldu = 0;
    float def_us = 1.0f;
    bool linear_backward(int l, int t, T *dinp, long ldi, float *dW, float *db, const T *dout, long ldd, const T *inp,
                         long ldin, const T *W, int Cin, int OC, bool defer = false) {
        int s = has_ad ? slot_of[l * 4 + t] : -1;
        // (only where the output is much wider than the input: on an H200 the extra columns cost the product
        // of qkv and fc about 0.003 ms against 0.03 for du's own product, and fc_proj's as much as they save)
        bool wide = dinp && s >= 0 && slot_wb[s] && wide_dinp && ldi >= Cin + rank && OC >= 2 * Cin;
        mark(PC_MATMUL);
        if (wide) gemm<T, T>(&gc, 'N', 'N', N, Cin + rank, OC, 1.0f, dout, ldd, slot_wb[s], Cin + rp, 0.0f, dinp, ldi);
        else if (dinp) gemm<T, T>(&gc, 'N', 'N', N, Cin, OC, 1.0f, dout, ldd, W, Cin, 0.0f, dinp, ldi);
        base_grads(dW, db, dout, ldd, inp, ldin, Cin, OC);
        if (s < 0) return false;
        mark(PC_LORA);
        int in = slot_in[s], o = slot_out[s], r = rank;
        bool kc = slot_wb[s] != nullptr; // s u sits in inp's spare columns
        const T *us = kc ? inp + in : u + (size_t)s * N * r;
        long ldu = kc ? ldin : r;
        float keep = 1.0f - dropout;
        long n = (long)N * in;
        int blocks = std::min(ceil_div(n, 256), 16 * num_sms);
        float *dA = gab32 + a_off[s], *dB = gab32 + nA + b_off[s];
        gemm<T, float>(&gc, 'T', 'N', o, r, N, kc ? 1.0f : scale, dout, ldd, us, ldu, 1.0f, dB, r);
        const T *dus = du; // du = dus * dsc
        long lddu = r;
        float dsc = 1.0f;
        if (wide) { dus = dinp + Cin; lddu = ldi; dsc = scale; }
        else gemm<T, T>(&gc, 'N', 'N', N, r, o, scale, dout, ldd, slot_B(s), r, 0.0f, du, r);
        if (trains_A) {
            const T *x = inp;
            if (slot_dropped[s]) {
                dropout_apply_kernel<<<blocks, 256, 0, st>>>(xd, inp, n, slot_rng[s], 0, keep, 1.0f / keep);
                CUDA_LAUNCH_CHECK();
                x = xd;
            }
            gemm<T, float>(&gc, 'T', 'N', r, in, N, dsc, dus, lddu, x, slot_dropped[s] ? in : ldin, 1.0f, dA, in);
        }
        if (dinp && defer && !slot_dropped[s] && fuse_gelu && (uintptr_t)(ab32 + a_off[s]) % 16 == 0) {
            def_du = dus; def_ldu = lddu; def_us = dsc;
            return true;
        }
        if (dinp) {
            if (slot_dropped[s]) { // (no dropout with [W | B]: ldi == in, dsc == 1 here)
                gemm<T, T>(&gc, 'N', 'N', N, in, r, 1.0f, du, r, slot_A(s), in, 0.0f, tmp, in);
                dropout_add_kernel<<<blocks, 256, 0, st>>>(dinp, tmp, n, slot_rng[s], 0, keep, 1.0f / keep);
                CUDA_LAUNCH_CHECK();
            } else {
                gemm<T, T>(&gc, 'N', 'N', N, in, r, dsc, dus, lddu, slot_A(s), in, 1.0f, dinp, ldi);
            }
        }
        return false;
    }

    // ------------------------------------------------------------------------
    // forward (and, fused through the cross-entropy, backward)

    float forward(const int *inp, const int *tgt, const uint8_t *mask, float lscale, bool backward, long *count) override {
        double h0 = prof ? now_ms() : 0;
        mark(PC_HOST);
        for (int i = 0; i < N; i++) {
            if (inp[i] < 0 || inp[i] >= V) { fprintf(stderr, "error: input token id %d is outside the vocab (%d)\n", inp[i], V); exit(1); }
            if (tgt && (tgt[i] < 0 || tgt[i] >= V)) { fprintf(stderr, "error: target token id %d is outside the vocab (%d)\n", tgt[i], V); exit(1); }
        }
        CUDA_CHECK(cudaMemcpy(inputs_d, inp, N * sizeof(int), cudaMemcpyHostToDevice));
        memcpy(inputs_h.data(), inp, N * sizeof(int));
        have_targets = tgt != nullptr;
        if (tgt) {
            CUDA_CHECK(cudaMemcpy(targets_d, tgt, N * sizeof(int), cudaMemcpyHostToDevice));
            for (int i = 0; i < N; i++) weights_h[i] = (!mask || mask[i]) ? lscale : 0.0f;
            CUDA_CHECK(cudaMemcpy(weights_d, weights_h.data(), N * sizeof(float), cudaMemcpyHostToDevice));
        }
        size_t NC = (size_t)N * C;
        refresh_wb();
        mark(PC_EMBED);
        encoder_forward(encoded, inputs_d, pX(P_WTE), pX(P_WPE), B, T_, C, st);
        mark(PC_LN);
        layernorm_forward(ln1, ln1_mean, ln1_rstd, (T *)nullptr, encoded, (const T *)nullptr, pX(P_LN1W), pX(P_LN1B), N, C, st, ld1);
        for (int l = 0; l < L; l++) {
            const T *residual = l == 0 ? encoded : res3 + (l - 1) * NC;
            T *l_ln1 = ln1 + l * N * ld1, *l_qkv = qkv + l * 3 * NC, *l_atty = atty + l * N * ld1, *l_res2 = res2 + l * NC;
            T *l_ln2 = ln2 + l * N * ld1, *l_fch = fch + l * 4 * NC, *l_fchg = fchg + l * N * ldg, *l_res3 = res3 + l * NC;
            linear_forward(l, 0, l_qkv, l_ln1, ld1, pX(P_QKVW) + (size_t)l * 3 * C * C, pX(P_QKVB) + l * 3 * C, C, 3 * C);
            mark(PC_ATT_FWD);
            attention_forward(l_atty, lse + (size_t)l * N * NH, l_qkv, B, T_, C, NH, simple, st, ld1);
            linear_forward(l, 1, proj, l_atty, ld1, pX(P_ATTPROJW) + (size_t)l * C * C, pX(P_ATTPROJB) + l * C, C, C);
            mark(PC_LN);
            layernorm_forward(l_ln2, ln2_mean + l * N, ln2_rstd + l * N, l_res2, residual, proj, pX(P_LN2W) + l * C,
                              pX(P_LN2B) + l * C, N, C, st, ld1);
            if (!linear_forward(l, 2, l_fch, l_ln2, ld1, pX(P_FCW) + (size_t)l * 4 * C * C, pX(P_FCB) + l * 4 * C, C, 4 * C,
                                l_fchg, ldg)) {
                mark(PC_GELU);
                gelu_forward(l_fchg, l_fch, (long)N, 4 * C, ldg, st);
            }
            linear_forward(l, 3, proj, l_fchg, ldg, pX(P_FCPROJW) + (size_t)l * 4 * C * C, pX(P_FCPROJB) + l * C, 4 * C, C);
            mark(PC_LN);
            if (l + 1 < L)
                layernorm_forward(ln1 + (l + 1) * N * ld1, ln1_mean + (l + 1) * N, ln1_rstd + (l + 1) * N, l_res3, l_res2, proj,
                                  pX(P_LN1W) + (l + 1) * C, pX(P_LN1B) + (l + 1) * C, N, C, st, ld1);
            else
                layernorm_forward(lnf, lnf_mean, lnf_rstd, l_res3, l_res2, proj, pX(P_LNFW), pX(P_LNFB), N, C, st);
        }
        mark(PC_MATMUL);
        gemm<T, T>(&gc, 'N', 'T', N, Vp, C, 1.0f, lnf, C, pX(P_WTE), C, 0.0f, logits, Vp); // LM head tied to wte
        if (count) *count = 0;
        if (!tgt) return -1.0f;
        mark(PC_CE);
        crossentropy(logits, losses, targets_d, backward ? weights_d : (const float *)nullptr, N, V, Vp, st);
        if (backward) this->backward();
        if (prof) prof_host_ms += now_ms() - h0;
        mark(PC_HOST);
        CUDA_CHECK(cudaMemcpy(losses_h.data(), losses, N * sizeof(float), cudaMemcpyDeviceToHost));
        double sum = 0;
        long n = 0;
        for (int i = 0; i < N; i++) if (!mask || mask[i]) { sum += losses_h[i]; n++; }
        if (count) *count = n;
        return n > 0 ? (float)(sum / n) : -1.0f;
    }

    // The backward of the two products whose output gradient is the residual stream's (t = 1 attn_proj,
    // t = 3 fc_proj) with the adapter's input-gradient term inside the product: du = s dres B goes into
    // dres's spare columns (row stride ldr) and the weight is kept once more as [W ; A] (out + r, in), so
    // dinp = [dres | du] [W ; A] is one product over K = C + rank. fc_proj's also takes the GELU backward
    // into cuBLASLt's epilogue (bf16): dbig = gelu'(fch) * (dres W + du A). Then the weight, bias and
    // adapter gradients as linear_backward's. Returns false (nothing done) where this does not apply:
    // attn_proj without an adapter, an adapter with dropout, fc_proj in fp32 or GPU_NO_DGELU_EPILOGUE=1.
    bool resid_backward(int l, int t, T *dinp, long ldi, float *dW, float *db) {
        int s = has_ad ? slot_of[l * 4 + t] : -1;
        bool gelu = t == 3;
        if ((gelu && !dgelu_epilogue) || (!gelu && s < 0) || (s >= 0 && !slot_wa[s])) return false;
        int in = gelu ? 4 * C : C, o = C, r = rank;
        const T *W = gelu ? pX(P_FCPROJW) + (size_t)l * 4 * C * C : pX(P_ATTPROJW) + (size_t)l * C * C;
        const T *x = gelu ? fchg + l * N * ldg : atty + (size_t)l * N * ld1;
        long ldx = gelu ? ldg : ld1;
        T *pre = gelu ? fch + (size_t)l * 4 * N * C : nullptr;
        if (s >= 0) { // du = s dres B into dres's spare columns
            mark(PC_LORA);
            gemm<T, T>(&gc, 'N', 'N', N, r, o, scale, dres, ldr, slot_B(s), r, 0.0f, dres + o, ldr);
        }
        mark(PC_MATMUL);
        if (dinp) {
            if (s >= 0) gemm<T, T>(&gc, 'N', 'N', N, in, o + r, 1.0f, dres, ldr, slot_wa[s], in, 0.0f, dinp, ldi, nullptr, pre, in, gelu);
            else gemm<T, T>(&gc, 'N', 'N', N, in, o, 1.0f, dres, ldr, W, in, 0.0f, dinp, ldi, nullptr, pre, in, gelu);
        }
        base_grads(dW, db, dres, ldr, x, ldx, in, o);
        if (s < 0) return true;
        mark(PC_LORA);
        float *dA = gab32 + a_off[s], *dB = gab32 + nA + b_off[s];
        if (slot_wb[s]) gemm<T, float>(&gc, 'T', 'N', o, r, N, 1.0f, dres, ldr, x + in, ldx, 1.0f, dB, r); // dB += dout^T (s u)
        else gemm<T, float>(&gc, 'T', 'N', o, r, N, scale, dres, ldr, u + (size_t)s * N * r, r, 1.0f, dB, r);
        if (trains_A) gemm<T, float>(&gc, 'T', 'N', r, in, N, 1.0f, dres + o, ldr, x, ldx, 1.0f, dA, in); // dA += du^T x
        return true;
    }

    // train_gpt2.c's gpt2_backward, with the dlogits already in `logits` (fused cross-entropy).
    // Positions of the trainable modules: 4l + t; nothing below `lowest` needs a gradient.
    void backward() {
        size_t NC = (size_t)N * C;
        bool full = grads32 != nullptr;
        int lo = has_ad ? lowest : -1;
        auto gp = [&](int i) { return full ? grads32 + poff[i] : (float *)nullptr; };
        mark(PC_MATMUL);
        gemm<T, T>(&gc, 'N', 'N', N, C, Vp, 1.0f, logits, Vp, pX(P_WTE), C, 0.0f, dsmall, C);
        mark(PC_WGRAD);
        if (full) {
            gemm<T, float>(&gc, 'T', 'N', Vp, C, N, 1.0f, logits, Vp, lnf, C, 1.0f, gp(P_WTE), C);
            g_gpu_base_weight_grad_calls++;
        }
        mark(PC_LN);
        layernorm_backward(dres, gp(P_LNFW), gp(P_LNFB), dsmall, res3 + (L - 1) * NC, pX(P_LNFW), lnf_mean, lnf_rstd, N, C,
                           0, num_sms, st, C, ldr);
        for (int l = L - 1; l >= 0 && lo < 4 * l + 4; l--) {
            const T *residual = l == 0 ? encoded : res3 + (l - 1) * NC;
            int p0 = 4 * l;
            auto gl = [&](int i, size_t per) { return full ? grads32 + poff[i] + (size_t)l * per : (float *)nullptr; };
            // fc_proj (its output gradient is the residual stream's)
            // (dbig has row stride ldg and dsmall ld1 after the products of fc_proj, fc and qkv: with the
            // adapter kept as [W | B] their spare columns receive dout B)
            bool epi = lo <= p0 + 2 && resid_backward(l, 3, dbig, ldg, gl(P_FCPROJW, (size_t)4 * C * C), gl(P_FCPROJB, C));
            bool fused = !epi && linear_backward(l, 3, lo < p0 + 3 ? dbig : nullptr, ldg, gl(P_FCPROJW, (size_t)4 * C * C),
                                                 gl(P_FCPROJB, C), dres, ldr, fchg + l * N * ldg, ldg,
                                                 pX(P_FCPROJW) + (size_t)l * 4 * C * C, 4 * C, C, true);
            if (lo <= p0 + 2) {
                mark(PC_GELU);
                if (epi) {
                } else if (fused) { // dbig = gelu'(fch) (dbig + du A): fc_proj's adapter term folded into the GELU backward
                    gelu_backward_lowrank(dbig, fch + l * 4 * NC, dbig, def_du, ab32 + a_off[slot_of[l * 4 + 3]], rank, N, 4 * C,
                                          ldg, def_ldu, def_us, st);
                } else {
                    gelu_backward(dbig, fch + l * 4 * NC, dbig, (long)N, 4 * C, ldg, st);
                }
                linear_backward(l, 2, lo < p0 + 2 ? dsmall : nullptr, ld1, gl(P_FCW, (size_t)4 * C * C), gl(P_FCB, 4 * C), dbig,
                                ldg, ln2 + l * N * ld1, ld1, pX(P_FCW) + (size_t)l * 4 * C * C, C, 4 * C);
            }
            mark(PC_LN);
            if (lo < p0 + 2)
                layernorm_backward(dres, gl(P_LN2W, C), gl(P_LN2B, C), dsmall, res2 + l * NC, pX(P_LN2W) + l * C,
                                   ln2_mean + l * N, ln2_rstd + l * N, N, C, 1, num_sms, st, ld1, ldr);
            if (lo > p0 + 1) break; // nothing trainable below the MLP of this layer
            // attn_proj (its output gradient is the residual stream's, now including the ln2 path)
            if (!resid_backward(l, 1, lo < p0 + 1 ? dsmall : nullptr, C, gl(P_ATTPROJW, (size_t)C * C), gl(P_ATTPROJB, C)))
                linear_backward(l, 1, lo < p0 + 1 ? dsmall : nullptr, C, gl(P_ATTPROJW, (size_t)C * C), gl(P_ATTPROJB, C), dres,
                                ldr, atty + l * N * ld1, ld1, pX(P_ATTPROJW) + (size_t)l * C * C, C, C);
            if (lo <= p0) {
                mark(PC_ATT_BWD);
                attention_backward(dqkv, attD, dsmall, qkv + l * 3 * NC, atty + l * N * ld1, lse + (size_t)l * N * NH, B, T_, C,
                                   NH, simple, st, ld1);
                linear_backward(l, 0, lo < p0 ? dsmall : nullptr, ld1, gl(P_QKVW, (size_t)3 * C * C), gl(P_QKVB, 3 * C), dqkv,
                                3 * C, ln1 + l * N * ld1, ld1, pX(P_QKVW) + (size_t)l * 3 * C * C, C, 3 * C);
            }
            mark(PC_LN);
            if (lo < p0)
                layernorm_backward(dres, gl(P_LN1W, C), gl(P_LN1B, C), dsmall, residual, pX(P_LN1W) + l * C,
                                   ln1_mean + l * N, ln1_rstd + l * N, N, C, 1, num_sms, st, ld1, ldr);
        }
        mark(PC_EMBED);
        if (full) encoder_backward(gp(P_WTE), gp(P_WPE), dres, inputs_d, B, T_, C, st); // (ldr == C: no adapter)
    }

    // ------------------------------------------------------------------------
    // PLoRA's unload, W (out,in) += factor s B A per slot (fp32 master), then the bf16 copy

    void plora_fold(float factor) override {
        if (!has_ad || !params32) return;
        static const int wt[4] = {P_QKVW, P_ATTPROJW, P_FCW, P_FCPROJW};
        static const size_t per[4] = {3, 1, 4, 4}; // (out*in) / C^2 of each target
        for (int s = 0; s < nslots; s++) {
            int l = slot_layer[s], t = slot_target[s], in = slot_in[s], o = slot_out[s];
            float *W = params32 + poff[wt[t]] + (size_t)l * per[t] * C * C;
            gemm<float, float>(&gc, 'N', 'N', o, in, rank, factor * scale, ab32 + nA + b_off[s], rank, ab32 + a_off[s], in,
                               1.0f, W, in);
        }
        if (is_bf16) cast(paramsX, params32, (long)nparams, st);
        wb_w_dirty = true;
    }

    void get_logits(int row0, int nrows, float *out) override {
        float *buf = dalloc<float>((size_t)nrows * Vp);
        cast(buf, logits + (size_t)row0 * Vp, (long)nrows * Vp, st);
        CUDA_CHECK(cudaMemcpy(out, buf, (size_t)nrows * Vp * sizeof(float), cudaMemcpyDeviceToHost));
        dfree(buf);
    }
    void get_grads(float *g) override {
        if (grads32) CUDA_CHECK(cudaMemcpy(g, grads32, nparams * sizeof(float), cudaMemcpyDeviceToHost));
    }
    void get_adapter_grads(float *g) override {
        if (gab32) CUDA_CHECK(cudaMemcpy(g, gab32, (nA + nB) * sizeof(float), cudaMemcpyDeviceToHost));
    }
};

// ----------------------------------------------------------------------------
// the C interface (cuda/gpt2_gpu.h)

extern "C" {
GPUModel *gpu_create(const GPUConfig *c, const float *params, const GPUAdapterDesc *ad, int B, int T, int use_bf16,
                     int simple_kernels) {
    if (use_bf16) return new ModelT<bf16>(c, params, ad, B, T, simple_kernels != 0);
    return new ModelT<float>(c, params, ad, B, T, simple_kernels != 0);
}
void gpu_free(GPUModel *m) { delete m; }
const char *gpu_describe(GPUModel *m) { return m->describe(); }
void gpu_set_params(GPUModel *m, const float *p) { m->set_params(p); }
void gpu_get_params(GPUModel *m, float *p) { m->get_params(p); }
void gpu_set_adapter(GPUModel *m, const float *ab) { m->set_adapter(ab); }
void gpu_get_adapter(GPUModel *m, float *ab) { m->get_adapter(ab); }
void gpu_set_mask(GPUModel *m, const uint32_t *kept, size_t nkept, int use) { m->set_mask(kept, nkept, use); }
void gpu_set_dropout(GPUModel *m, uint64_t s, int training) { m->set_dropout(s, training); }
uint64_t gpu_get_dropout_rng(GPUModel *m) { return m->get_dropout_rng(); }
void gpu_opt_setup(GPUModel *m) { m->opt_setup(); }
size_t gpu_opt_size(GPUModel *m) { return m->opt_size(); }
void gpu_opt_reset(GPUModel *m) { m->opt_reset(); }
void gpu_opt_get(GPUModel *m, float *mom, float *var) { m->opt_get(mom, var); }
void gpu_opt_set(GPUModel *m, const float *mom, const float *var) { m->opt_set(mom, var); }
void gpu_zero_grad(GPUModel *m) { m->zero_grad(); }
float gpu_forward(GPUModel *m, const int *inputs, const int *targets, const uint8_t *mask, long *count) {
    return m->forward(inputs, targets, mask, 1.0f, false, count);
}
float gpu_forward_backward(GPUModel *m, const int *inputs, const int *targets, const uint8_t *mask, float scale, long *count) {
    return m->forward(inputs, targets, mask, scale, true, count);
}
float gpu_grad_norm(GPUModel *m) { return m->grad_norm(); }
void gpu_adamw_step(GPUModel *m, float lr, float wd, float gscale, int t) { m->adamw_step(lr, wd, gscale, t); }
void gpu_plora_fold(GPUModel *m, float factor) { m->plora_fold(factor); }
void gpu_get_logits(GPUModel *m, int row0, int nrows, float *out) { m->get_logits(row0, nrows, out); }
void gpu_get_grads(GPUModel *m, float *g) { m->get_grads(g); }
void gpu_get_adapter_grads(GPUModel *m, float *g) { m->get_adapter_grads(g); }
void gpu_synchronize(GPUModel *m) {
    m->prof_flush();
    CUDA_CHECK(cudaDeviceSynchronize());
}
void gpu_memory(GPUModel *m, size_t *now, size_t *peak) { *now = m->mem_now; *peak = m->mem_peak; }
}

#ifndef TESTING
extern "C" int gpu_trainer_main(int argc, char **argv); // cuda/host.c
int main(int argc, char **argv) { return gpu_trainer_main(argc, argv); }
#endif
