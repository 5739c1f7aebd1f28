/*
cuda/gemm.cuh — every matrix product of the GPU trainer, through cuBLASLt, with the interface of
kernels/gemm.h (row-major, BLAS-style transposes) so the adapter code reads as on the CPU:

    gemm(ctx, 'N', 'T', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias)
        C (M,N) = alpha op(A) (M,K) op(B) (K,N) + beta C (+ bias[n] when bias != NULL, beta must be 0)
    gemm(..., bias, aux, ldaux)
        the same with GELU fused into cuBLASLt's epilogue: aux (M,N; row stride ldaux) = the product
        (+ bias), C = gelu(aux) (GPT-2's tanh form; bf16 only in the trainer, beta must be 0)
    gemm(..., NULL, aux, ldaux, true)
        the GELU backward in the epilogue: C = gelu'(aux) * the product (aux: the GELU's input)

A and B are float or bf16 (the same type); C is float or bf16; the arithmetic is fp32 (no TF32:
--precision fp32 is the exact mode). bf16 inputs with a float C is how weight and adapter
gradients accumulate in fp32 (beta = 1). A row-major matrix is a column-major one transposed, so
C^T = op(B)^T op(A)^T is handed to cuBLASLt with the operands swapped. The algorithm chosen for a
shape (descriptors and algorithm) is made once and cached: a small product costs the GPU less
than the CPU time of setting one up.

The algorithm is cuBLASLt's first heuristic choice for the shape, as in llm.c: the same on every run
on the same GPU and library, so two runs (or a run with and without NCCL at world size 1) agree bit
for bit. GPU_GEMM_AUTOTUNE=1 instead times the first GEMM_TUNE_CANDIDATES algorithms of each new
shape and keeps the fastest (0.1-0.7% at GPT-2 124M: dev/bench/gemm_choice.sh); timing is noisy,
so two autotuned runs can pick different algorithms and differ in the last bits.
*/
#pragma once
#include <cublasLt.h>
#include <map>
#include <tuple>
#include <string.h>
#include "common.cuh"

#define CUBLAS_CHECK(call)                                                                             \
    do {                                                                                               \
        cublasStatus_t s_ = (call);                                                                    \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                             \
            fprintf(stderr, "error: cuBLAS status %d (%s:%d: %s)\n", (int)s_, __FILE__, __LINE__, #call); \
            exit(1);                                                                                   \
        }                                                                                              \
    } while (0)

template <typename T> inline cudaDataType_t cuda_type();
template <> inline cudaDataType_t cuda_type<float>() { return CUDA_R_32F; }
template <> inline cudaDataType_t cuda_type<bf16>() { return CUDA_R_16BF; }

struct GemmPlan { // descriptors and algorithm of one shape, made once
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
};
struct GemmContext {
    cublasLtHandle_t lt;
    cudaStream_t stream;
    void *workspace;
    size_t workspace_size;
    // autotune (GPU_GEMM_AUTOTUNE=1): cuBLASLt's first GEMM_TUNE_CANDIDATES algorithms for each new
    // shape are timed (on the real operands; into a scratch output where the product accumulates) and
    // the fastest is kept, instead of its first guess. So two runs can pick different algorithms and
    // differ in the last bits. Off: the first guess, reproducible.
    // A new shape must first be seen outside a CUDA graph capture (the trainer runs one warm-up step).
    int autotune;
    DeviceMemory *mem; // the owner's device-memory count, for the workspace and the scratch outputs
    // (transA, transB, M, N, K, lda, ldb, ldc, types, bias, alignments, GELU aux ld) -> plan
    std::map<std::tuple<int, int, int, int, int, long, long, long, int, int, int, long>, GemmPlan> plans;
};

#define GEMM_TUNE_CANDIDATES 16
inline void gemm_context_init(GemmContext *g, cudaStream_t stream, size_t workspace_size, DeviceMemory *mem) {
    CUBLAS_CHECK(cublasLtCreate(&g->lt));
    g->stream = stream;
    g->workspace_size = workspace_size;
    g->mem = mem;
    const char *at = getenv("GPU_GEMM_AUTOTUNE");
    g->autotune = at && strcmp(at, "0") != 0 && at[0] != '\0';
    CUDA_CHECK(cudaMalloc(&g->workspace, workspace_size));
    mem->count((long)workspace_size);
}
inline void gemm_context_free(GemmContext *g) {
    for (auto &kv : g->plans) {
        cublasLtMatrixLayoutDestroy(kv.second.la);
        cublasLtMatrixLayoutDestroy(kv.second.lb);
        cublasLtMatrixLayoutDestroy(kv.second.lc);
        cublasLtMatmulDescDestroy(kv.second.desc);
    }
    g->plans.clear();
    cublasLtDestroy(g->lt);
    cudaFree(g->workspace);
}

inline int ptr_alignment(const void *p) { // largest power of two (<= 256) dividing the address
    uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 1 && (a % al) != 0) al >>= 1;
    return al;
}

template <typename TA, typename TC>
void gemm(GemmContext *g, char transA, char transB, int M, int N, int K, float alpha, const TA *A, long lda, const TA *B,
          long ldb, float beta, TC *C, long ldc, const TC *bias = nullptr, TC *aux = nullptr, long ldaux = 0,
          bool dgelu = false) {
    if (M <= 0 || N <= 0) return;
    bool ta = transA == 'T', tb = transB == 'T';
    int alA = ptr_alignment(A), alB = ptr_alignment(B), alC = ptr_alignment(C);
    auto key = std::make_tuple((int)ta, (int)tb, M, N, K, lda, ldb, ldc,
                               (int)cuda_type<TA>() * 64 + (int)cuda_type<TC>(), bias ? ptr_alignment(bias) : 0,
                               alA * 1000000 + alB * 1000 + alC, aux ? (ldaux * 1024 + ptr_alignment(aux)) * 2 + dgelu : 0);
    auto it = g->plans.find(key);
    if (it == g->plans.end()) {
        cudaStreamCaptureStatus cs;
        CUDA_CHECK(cudaStreamIsCapturing(g->stream, &cs));
        if (cs != cudaStreamCaptureStatusNone) {
            fprintf(stderr, "error: internal: a new product shape (M=%d N=%d K=%d) inside a CUDA graph capture\n", M, N, K);
            exit(1);
        }
        GemmPlan pl;
        // column-major view: D^T (N x M) = op(B)^T (N x K) * op(A)^T (K x M); "A" of cuBLASLt is our B
        cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
        CUBLAS_CHECK(cublasLtMatmulDescCreate(&pl.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
        if (bias || aux) {
            cublasLtEpilogue_t ep = !aux ? CUBLASLT_EPILOGUE_BIAS
                                    : dgelu ? CUBLASLT_EPILOGUE_DGELU
                                    : bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)));
            if (bias) CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
            if (aux) {
                int64_t ld = ldaux;
                CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)));
                CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof(ld)));
            }
        }
        // stored shapes (column-major rows x cols): our B is (K x N) row-major unless transposed
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl.la, cuda_type<TA>(), tb ? K : N, tb ? N : K, ldb));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl.lb, cuda_type<TA>(), ta ? M : K, ta ? K : M, lda));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl.lc, cuda_type<TC>(), N, M, ldc));
        cublasLtMatmulPreference_t pref;
        CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &g->workspace_size, sizeof(g->workspace_size)));
        uint32_t a1 = alB, a2 = alA, a3 = alC; // cuBLASLt's A is our B
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a1, sizeof(a1)));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a2, sizeof(a2)));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a3, sizeof(a3)));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a3, sizeof(a3)));
        cublasLtMatmulHeuristicResult_t res[GEMM_TUNE_CANDIDATES];
        int nres = 0;
        cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(g->lt, pl.desc, pl.la, pl.lb, pl.lc, pl.lc, pref,
                                                          g->autotune ? GEMM_TUNE_CANDIDATES : 1, res, &nres);
        cublasLtMatmulPreferenceDestroy(pref);
        if (s != CUBLAS_STATUS_SUCCESS || nres == 0) {
            fprintf(stderr, "error: cuBLASLt has no algorithm for the product M=%d N=%d K=%d trans=%c%c lda=%ld ldb=%ld ldc=%ld (status %d)\n",
                    M, N, K, transA, transB, lda, ldb, ldc, (int)s);
            exit(1);
        }
        pl.algo = res[0].algo;
        if (nres > 1) { // time each candidate: 1 warm-up and 3 timed runs; beta != 0 runs into a scratch output
            TC *out = C;
            size_t bytes = (size_t)(M - 1) * ldc * sizeof(TC) + (size_t)N * sizeof(TC);
            if (beta != 0.0f) {
                CUDA_CHECK(cudaMalloc(&out, bytes));
                g->mem->count((long)bytes);
            }
            if (bias) CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
            if (aux) CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)));
            cudaEvent_t e0, e1;
            CUDA_CHECK(cudaEventCreate(&e0));
            CUDA_CHECK(cudaEventCreate(&e1));
            float best = 1e30f;
            for (int i = 0; i < nres; i++) {
                if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
                bool ok = cublasLtMatmul(g->lt, pl.desc, &alpha, B, pl.la, A, pl.lb, &beta, out, pl.lc, out, pl.lc, &res[i].algo,
                                         g->workspace, g->workspace_size, g->stream) == CUBLAS_STATUS_SUCCESS;
                CUDA_CHECK(cudaEventRecord(e0, g->stream));
                for (int rep = 0; ok && rep < 3; rep++)
                    ok = cublasLtMatmul(g->lt, pl.desc, &alpha, B, pl.la, A, pl.lb, &beta, out, pl.lc, out, pl.lc, &res[i].algo,
                                        g->workspace, g->workspace_size, g->stream) == CUBLAS_STATUS_SUCCESS;
                CUDA_CHECK(cudaEventRecord(e1, g->stream));
                CUDA_CHECK(cudaEventSynchronize(e1));
                float ms = 0;
                CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
                if (ok && ms < best) { best = ms; pl.algo = res[i].algo; }
            }
            cudaEventDestroy(e0);
            cudaEventDestroy(e1);
            if (out != C) {
                CUDA_CHECK(cudaFree(out));
                g->mem->count(-(long)bytes);
            }
        }
        it = g->plans.emplace(key, pl).first;
    }
    GemmPlan &pl = it->second;
    if (bias) CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    if (aux) CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)));
    CUBLAS_CHECK(cublasLtMatmul(g->lt, pl.desc, &alpha, B, pl.la, A, pl.lb, &beta, C, pl.lc, C, pl.lc, &pl.algo, g->workspace,
                                g->workspace_size, g->stream));
}
