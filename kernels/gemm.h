/* kernels/gemm.h - single-precision matrix product (sgemm) for the CPU trainer.
 *
 * Interface (row-major, BLAS-like):
 *
 *   C (M,N) = alpha * op(A) op(B) + beta * C       op(A) is (M,K), op(B) is (K,N)
 *
 *   static void gemm(char transA, char transB, int M, int N, int K, float alpha,
 *                    const float *A, int lda, const float *B, int ldb,
 *                    float beta, float *C, int ldc);
 *   static void gemm_ref(...same arguments...);   plain triple loop: the reference
 *   static const char *gemm_isa(void);            "avx512", "avx2" or "generic":
 *                                                 what gemm() runs on this machine now
 *   static int gemm_isa_supported(const char *isa);  1 if this build and CPU can run it
 *   static void gemm_serial(const gemm_impl *im, ...same arguments..., float *work);
 *                                                 one thread, no allocation: for callers that run
 *                                                 many small products in their own parallel loop
 *                                                 (attention, per head); im = gemm_select(), work
 *                                                 holds gemm_serial_work(N, K) floats, 64-byte aligned
 *
 *   transA == 'N': A is stored (M,K) with row stride lda; 'T': A is stored (K,M).
 *   Likewise transB: 'N' B is stored (K,N); 'T' B is stored (N,K). ldc is C's row stride.
 *   beta == 0 ignores C's old contents (NaN in C does not propagate), as does BLAS;
 *   alpha == 0 or K == 0 only scales C by beta.
 *
 * Usage. Include it in the one translation unit of a program; everything is static.
 *   The trainer's linear layer, weight (OC,C), inp and out (B*T rows):
 *     forward   out  (BT,OC) = inp (BT,C) . weightᵀ:   gemm('N','T', BT, OC, C,  1, inp,  C,  weight, C,  0, out,  OC);
 *     backward  dinp (BT,C) += dout (BT,OC) . weight:   gemm('N','N', BT, C,  OC, 1, dout, OC, weight, C,  1, dinp, C);
 *               dW   (OC,C) += doutᵀ . inp:            gemm('T','N', OC, C,  BT, 1, dout, OC, inp,    C,  1, dW,   C);
 *   The instruction set is picked at run time (AVX-512, AVX2+FMA, else portable C); the
 *   environment variable GEMM_ISA=generic|avx2|avx512 forces one (gemm() exits with a
 *   message if this CPU lacks it), so the tests can run every path the machine supports.
 *   Threads: OpenMP (omp_get_max_threads()) when compiled with -fopenmp, else one.
 *   Results are deterministic and do not even depend on the thread count: every element
 *   of C is summed by one thread, k in increasing order, in blocks of GEMM_KC.
 *
 * Method (Goto / BLIS). The microkernel keeps an MR x NR tile of C in registers
 * (AVX-512 12 x 32, or 12 x 16 when N <= 16 as in LoRA; AVX2 6 x 16; portable 4 x 8) and
 * adds kc rank-1 products to it: per k, one broadcast of op(A) per row, NR/width vector
 * loads of op(B), fused multiply-adds. Around it, blocks of GEMM_NC columns and GEMM_KC
 * steps of k (the B block stays in L2, the MR x kc sliver of A in L1). A is read in
 * place, either way round (a broadcast needs no particular layout), and so is a row-major
 * op(B) (transB 'N'). Bᵀ is copied ("packed") into kc x NR panels by 8 x 8 in-register
 * transposes, and the ragged last tile of either operand into a zero-padded buffer. That
 * transpose is the only copy in the forward pass (out = inp . weightᵀ); the backward
 * products ('N','N') and ('T','N') copy nothing. Edge tiles of C go through a full-size
 * scratch tile, so every element of C sees the same arithmetic. C is cut into parts of
 * whole tiles, a few per thread (see gemm()).
 */
#ifndef GEMM_H
#define GEMM_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define GEMM_X86 1
#include <immintrin.h>
#endif

// Cache blocking. KC: rank of each block update (an A sliver of MR x KC is 12 KiB, in L1).
// NC: columns of op(B) per block (KC x NC floats = 512 KiB, in L2).
enum { GEMM_KC = 256, GEMM_NC = 512, GEMM_MR_MAX = 16, GEMM_NR_MAX = 32, GEMM_PARTS_PER_THREAD = 4 };

static void gemm_ref(char transA, char transB, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    int ta = (transA == 'T' || transA == 't'), tb = (transB == 'T' || transB == 't');
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float sum = 0.0f;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                sum += a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (beta == 0.0f) ? alpha * sum : alpha * sum + beta * *c;
        }
    }
}

// ----------------------------------------------------------------------------
// microkernels
//
//   c (MR, nr) [ldc] = alpha * sum_{k < kc} a[i*si + k*sk] * b[k*sb + j] + beta * c
//
// A is read in place (A: si = lda, sk = 1; Aᵀ: si = 1, sk = lda) or, for the ragged last
// rows, from a zero-padded copy (si = 1, sk = MR); B from a packed panel (sb = nr) or in
// place (sb = ldb).
// beta == 0 does not read c.

typedef void (*gemm_kernel_fn)(int kc, const float *a, ptrdiff_t si, ptrdiff_t sk,
                               const float *b, ptrdiff_t sb, float *c, int ldc,
                               float alpha, float beta);

// portable: 4 x 8, written so that the compiler keeps the tile in vector registers
// (two SSE registers per row on baseline x86-64, one with 256-bit targets): the j loops
// are the vectors (SLP), the i and k loops are unrolled/sequential. GCC's loop vectoriser
// would otherwise vectorise the k loop as 32 reductions and gather across it.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-vectorize")))
#endif
static void gemm_kernel_generic(int kc, const float *restrict a, ptrdiff_t si, ptrdiff_t sk,
                                const float *restrict b, ptrdiff_t sb, float *restrict c, int ldc,
                                float alpha, float beta)
{
    enum { MR = 4, NR = 8 };
    float acc[MR][NR] = {{0}};
    for (int k = 0; k < kc; k++, a += sk, b += sb) {
        float bk[NR];
#pragma GCC unroll 8
        for (int j = 0; j < NR; j++) bk[j] = b[j];
#pragma GCC unroll 4
        for (int i = 0; i < MR; i++) {
            float ai = a[i * si];
#pragma GCC unroll 8
            for (int j = 0; j < NR; j++) acc[i][j] += ai * bk[j];
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            float *p = &c[(size_t)i * ldc + j];
            *p = (beta == 0.0f) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *p;
        }
}

#ifdef GEMM_X86
// AVX2 + FMA: 6 x 16, 12 ymm accumulators + 2 for B + 1 broadcast of 16 registers.
// Rows of A are addressed as p[q][off[r]] (row 3q + r), so that the six row addresses
// need two base pointers and two strides, not six pointers.
__attribute__((target("avx2,fma")))
static void gemm_kernel_avx2(int kc, const float *restrict a, ptrdiff_t si, ptrdiff_t sk,
                             const float *restrict b, ptrdiff_t sb, float *restrict c, int ldc,
                             float alpha, float beta)
{
    enum { MR = 6 };
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    const float *p[2] = {a, a + 3 * si};
    const ptrdiff_t off[3] = {0, si, 2 * si};
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
    for (int k = 0; k < kc; k++, b += sb) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(p[i / 3] + off[i % 3]);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
        p[0] += sk, p[1] += sk;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++, c += ldc) {
        if (beta == 0.0f) {
            _mm256_storeu_ps(c, _mm256_mul_ps(va, c0[i]));
            _mm256_storeu_ps(c + 8, _mm256_mul_ps(va, c1[i]));
        } else {
            _mm256_storeu_ps(c, _mm256_fmadd_ps(va, c0[i], _mm256_mul_ps(vb, _mm256_loadu_ps(c))));
            _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(va, c1[i], _mm256_mul_ps(vb, _mm256_loadu_ps(c + 8))));
        }
    }
}

// AVX-512: 12 x (16 nv): 24 zmm accumulators + 2 for B (nv = 2), or 12 + 1 (nv = 1, for
// products with N <= 16 such as LoRA's rank 16). Rows of A as in the AVX2 kernel.
__attribute__((target("avx512f,fma"), always_inline))
static inline void gemm_tile_avx512(int nv, int kc, const float *restrict a, ptrdiff_t si, ptrdiff_t sk,
                                    const float *restrict b, ptrdiff_t sb, float *restrict c, int ldc,
                                    float alpha, float beta)
{
    enum { MR = 12 };
    __m512 acc[MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float *p[4] = {a, a + 3 * si, a + 6 * si, a + 9 * si};
    const ptrdiff_t off[3] = {0, si, 2 * si};
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)  // C's tile is needed at the end; start fetching it now
        for (int v = 0; v < nv; v++) _mm_prefetch((const char *)(c + (size_t)i * ldc + 16 * v), _MM_HINT_T0);
    for (int k = 0; k < kc; k++, b += sb) {
        __m512 bv[2];
        bv[0] = _mm512_loadu_ps(b);
        if (nv > 1) bv[1] = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(p[i / 3][off[i % 3]]);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        p[0] += sk, p[1] += sk, p[2] += sk, p[3] += sk;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++, c += ldc)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            if (beta == 0.0f)
                _mm512_storeu_ps(c + 16 * v, _mm512_mul_ps(va, acc[i][v]));
            else
                _mm512_storeu_ps(c + 16 * v, _mm512_fmadd_ps(va, acc[i][v], _mm512_mul_ps(vb, _mm512_loadu_ps(c + 16 * v))));
        }
}

__attribute__((target("avx512f,fma")))
static void gemm_kernel_avx512(int kc, const float *restrict a, ptrdiff_t si, ptrdiff_t sk,
                               const float *restrict b, ptrdiff_t sb, float *restrict c, int ldc,
                               float alpha, float beta)
{
    gemm_tile_avx512(2, kc, a, si, sk, b, sb, c, ldc, alpha, beta);
}

__attribute__((target("avx512f,fma")))
static void gemm_kernel_avx512_n16(int kc, const float *restrict a, ptrdiff_t si, ptrdiff_t sk,
                                   const float *restrict b, ptrdiff_t sb, float *restrict c, int ldc,
                                   float alpha, float beta)
{
    gemm_tile_avx512(1, kc, a, si, sk, b, sb, c, ldc, alpha, beta);
}
#endif

// ----------------------------------------------------------------------------
// packing

// op(A)[i0:i0+m, k0:k0+kc] -> dst[k*mr + i], rows m..mr-1 zero.
static void gemm_pack_a(int ta, const float *A, int lda, int i0, int m, int k0, int kc,
                        int mr, float *restrict dst)
{
    if (!ta) {
        for (int i = 0; i < m; i++) {
            const float *src = A + (size_t)(i0 + i) * lda + k0;
            for (int k = 0; k < kc; k++) dst[k * mr + i] = src[k];
        }
    } else {
        for (int k = 0; k < kc; k++) {
            const float *src = A + (size_t)(k0 + k) * lda + i0;
            for (int i = 0; i < m; i++) dst[k * mr + i] = src[i];
        }
    }
    for (int k = 0; k < kc && m < mr; k++)
        for (int i = m; i < mr; i++) dst[k * mr + i] = 0.0f;
}

// One panel of op(B): dst[k*nr + j] = op(B)[k0+k, j0+j] for j < n, columns n..nr-1 zero.
static void gemm_pack_b(int tb, const float *B, int ldb, int k0, int kc, int j0, int n, int nr,
                        float *restrict dst)
{
    if (!tb) {
        for (int k = 0; k < kc; k++) {
            const float *src = B + (size_t)(k0 + k) * ldb + j0;
            for (int j = 0; j < n; j++) dst[k * nr + j] = src[j];
        }
    } else {
        for (int j = 0; j < n; j++) {
            const float *src = B + (size_t)(j0 + j) * ldb + k0;
            for (int k = 0; k < kc; k++) dst[k * nr + j] = src[k];
        }
    }
    for (int k = 0; k < kc && n < nr; k++)
        for (int j = n; j < nr; j++) dst[k * nr + j] = 0.0f;
}

typedef void (*gemm_pack_bt_fn)(const float *B, int ldb, int k0, int kc, int j0, int nr, float *dst);

// A full panel of op(B) = Bᵀ (B stored (N,K)): a transpose, the one copy of the forward
// pass (out = inp . weightᵀ) that is not a plain copy.
static void gemm_pack_bt_generic(const float *B, int ldb, int k0, int kc, int j0, int nr, float *dst)
{
    gemm_pack_b(1, B, ldb, k0, kc, j0, nr, nr, dst);
}

#ifdef GEMM_X86
// The same with 8 x 8 in-register transposes: 16 half-row loads, 16 in-lane shuffles and
// 8 stores per 64 floats.
__attribute__((target("avx2")))
static void gemm_pack_bt_avx2(const float *B, int ldb, int k0, int kc, int j0, int nr, float *dst)
{
    int k8 = kc / 8 * 8;
    for (int j = 0; j < nr; j += 8) {
        const float *s[8];
        for (int r = 0; r < 8; r++) s[r] = B + (size_t)(j0 + j + r) * ldb + k0;
        for (int k = 0; k < k8; k += 8) {
            __m256 r[8], t[8];
            for (int q = 0; q < 4; q++) {  // r[q] = rows q, q+4 at k..k+3; r[q+4]: at k+4..k+7
                r[q] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(s[q] + k)), _mm_loadu_ps(s[q + 4] + k), 1);
                r[q + 4] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(s[q] + k + 4)), _mm_loadu_ps(s[q + 4] + k + 4), 1);
            }
            for (int h = 0; h < 8; h += 4) {
                t[h + 0] = _mm256_unpacklo_ps(r[h + 0], r[h + 1]);
                t[h + 1] = _mm256_unpackhi_ps(r[h + 0], r[h + 1]);
                t[h + 2] = _mm256_unpacklo_ps(r[h + 2], r[h + 3]);
                t[h + 3] = _mm256_unpackhi_ps(r[h + 2], r[h + 3]);
                float *d = dst + (size_t)(k + h) * nr + j;
                _mm256_storeu_ps(d + 0 * nr, _mm256_shuffle_ps(t[h + 0], t[h + 2], 0x44));
                _mm256_storeu_ps(d + 1 * nr, _mm256_shuffle_ps(t[h + 0], t[h + 2], 0xEE));
                _mm256_storeu_ps(d + 2 * nr, _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44));
                _mm256_storeu_ps(d + 3 * nr, _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE));
            }
        }
        for (int k = k8; k < kc; k++)
            for (int r = 0; r < 8; r++) dst[(size_t)k * nr + j + r] = s[r][k];
    }
}
#endif

// ----------------------------------------------------------------------------
// instruction-set dispatch

typedef struct {
    const char *name;
    int mr, nr;                 // tile of `kernel`
    gemm_kernel_fn kernel;
    int nr16;                   // narrower tile for N <= nr16 (= nr if none)
    gemm_kernel_fn kernel16;
    gemm_pack_bt_fn pack_bt;
} gemm_impl;

static const gemm_impl gemm_impls[] = {
#ifdef GEMM_X86
    {"avx512", 12, 32, gemm_kernel_avx512, 16, gemm_kernel_avx512_n16, gemm_pack_bt_avx2},
    {"avx2", 6, 16, gemm_kernel_avx2, 16, gemm_kernel_avx2, gemm_pack_bt_avx2},
#endif
    {"generic", 4, 8, gemm_kernel_generic, 8, gemm_kernel_generic, gemm_pack_bt_generic},
};
enum { GEMM_NIMPLS = sizeof(gemm_impls) / sizeof(gemm_impls[0]) };

static int gemm_isa_supported(const char *isa)
{
    if (strcmp(isa, "generic") == 0) return 1;
#ifdef GEMM_X86
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (strcmp(isa, "avx2") == 0) return avx2;
    if (strcmp(isa, "avx512") == 0) return avx2 && __builtin_cpu_supports("avx512f");
#endif
    return 0;
}

// The best implementation this CPU supports, or the one GEMM_ISA names (fatal if this
// CPU or build lacks it: a forced path that silently ran another would fool a test).
static const gemm_impl *gemm_select(void)
{
    const char *want = getenv("GEMM_ISA");
    if (want && *want) {
        for (int i = 0; i < GEMM_NIMPLS; i++)
            if (strcmp(want, gemm_impls[i].name) == 0 && gemm_isa_supported(want)) return &gemm_impls[i];
        fprintf(stderr, "gemm: GEMM_ISA=%s is not available on this CPU/build (have:", want);
        for (int i = 0; i < GEMM_NIMPLS; i++)
            if (gemm_isa_supported(gemm_impls[i].name)) fprintf(stderr, " %s", gemm_impls[i].name);
        fprintf(stderr, ")\n");
        exit(EXIT_FAILURE);
    }
    for (int i = 0; i < GEMM_NIMPLS; i++)
        if (gemm_isa_supported(gemm_impls[i].name)) return &gemm_impls[i];
    return &gemm_impls[GEMM_NIMPLS - 1];
}

static const char *gemm_isa(void) { return gemm_select()->name; }

// ----------------------------------------------------------------------------
// driver

// One thread's part: C[0:M, 0:N] (pointers already offset), all of K, tile mr x nr.
// bufa holds mr x KC floats, bufb KC x min(N, NC) rounded up to nr.
static void gemm_part(gemm_kernel_fn kernel, gemm_pack_bt_fn pack_bt, int mr, int nr, int ta, int tb,
                      int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc, float *bufa, float *bufb)
{
    _Alignas(64) float tile[GEMM_MR_MAX * GEMM_NR_MAX];
    for (int jc = 0; jc < N; jc += GEMM_NC) {
        int nc = N - jc < GEMM_NC ? N - jc : GEMM_NC;
        for (int pc = 0; pc < K; pc += GEMM_KC) {
            int kc = K - pc < GEMM_KC ? K - pc : GEMM_KC;
            float bet = pc == 0 ? beta : 1.0f;  // later blocks accumulate onto the first
            // B: a row-major op(B) is read in place; Bᵀ and the ragged last panel are packed
            for (int jr = 0; jr < nc; jr += nr) {
                int n = nc - jr < nr ? nc - jr : nr;
                if (n < nr) gemm_pack_b(tb, B, ldb, pc, kc, jc + jr, n, nr, bufb + (size_t)jr * kc);
                else if (tb) pack_bt(B, ldb, pc, kc, jc + jr, nr, bufb + (size_t)jr * kc);
            }
            for (int ic = 0; ic < M; ic += mr) {
                int m = M - ic < mr ? M - ic : mr;
                // A is read in place, by rows (A) or by columns (Aᵀ); the ragged last tile is packed
                const float *a = ta ? A + (size_t)pc * lda + ic : A + (size_t)ic * lda + pc;
                ptrdiff_t si = ta ? 1 : lda, sk = ta ? lda : 1;
                if (m < mr) {
                    gemm_pack_a(ta, A, lda, ic, m, pc, kc, mr, bufa);
                    a = bufa, si = 1, sk = mr;
                }
                for (int jr = 0; jr < nc; jr += nr) {
                    int n = nc - jr < nr ? nc - jr : nr;
                    float *c = C + (size_t)ic * ldc + jc + jr;
                    const float *b = bufb + (size_t)jr * kc;
                    ptrdiff_t sb = nr;
                    if (!tb && n == nr) b = B + (size_t)pc * ldb + jc + jr, sb = ldb;
                    if (m == mr && n == nr) {
                        kernel(kc, a, si, sk, b, sb, c, ldc, alpha, bet);
                    } else {  // edge: same kernel on a scratch tile
                        if (bet != 0.0f)
                            for (int i = 0; i < m; i++) memcpy(tile + i * nr, c + (size_t)i * ldc, n * sizeof(float));
                        kernel(kc, a, si, sk, b, sb, tile, nr, alpha, bet);
                        for (int i = 0; i < m; i++) memcpy(c + (size_t)i * ldc, tile + i * nr, n * sizeof(float));
                    }
                }
            }
        }
    }
}

// The checks and degenerate cases shared by gemm() and gemm_serial(): returns 1 when nothing is
// left to compute (C already scaled by beta), else 0 with the transposes decoded.
static int gemm_trivial(char transA, char transB, int M, int N, int K, float alpha, float beta, float *C, int ldc,
                        int *ta, int *tb)
{
    *ta = (transA == 'T' || transA == 't'), *tb = (transB == 'T' || transB == 't');
    if ((!*ta && transA != 'N' && transA != 'n') || (!*tb && transB != 'N' && transB != 'n')) {
        fprintf(stderr, "gemm: transA/transB must be 'N' or 'T', got '%c' '%c'\n", transA, transB);
        exit(EXIT_FAILURE);
    }
    if (M <= 0 || N <= 0) return 1;
    if (K <= 0 || alpha == 0.0f) {  // C = beta * C
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = &C[(size_t)i * ldc + j];
                *c = beta == 0.0f ? 0.0f : beta * *c;
            }
        return 1;
    }
    return 0;
}

// Floats of workspace gemm_serial needs for an (M,N,K) product, whatever the instruction set.
static size_t gemm_serial_work(int N, int K)
{
    size_t kc = K < GEMM_KC ? (size_t)(K > 0 ? K : 1) : GEMM_KC, nc = N < GEMM_NC ? (size_t)(N > 0 ? N : 1) : GEMM_NC;
    nc = (nc + GEMM_NR_MAX - 1) / GEMM_NR_MAX * GEMM_NR_MAX;
    return ((size_t)GEMM_MR_MAX * kc + 15) / 16 * 16 + kc * nc;
}

// gemm() on the calling thread only, with the caller's workspace (see the interface above). The
// arithmetic is gemm()'s: the same kernels, the same k order, so the same bits.
static void gemm_serial(const gemm_impl *im, char transA, char transB, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc, float *work)
{
    int ta, tb;
    if (gemm_trivial(transA, transB, M, N, K, alpha, beta, C, ldc, &ta, &tb)) return;
    const int narrow = N <= im->nr16;
    const int mr = im->mr, nr = narrow ? im->nr16 : im->nr;
    int kcmax = K < GEMM_KC ? K : GEMM_KC;
    size_t pera = ((size_t)mr * kcmax + 15) / 16 * 16;
    gemm_part(narrow ? im->kernel16 : im->kernel, im->pack_bt, mr, nr, ta, tb, M, N, K, alpha, A, lda, B, ldb,
              beta, C, ldc, work, work + pera);
}

static void gemm(char transA, char transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    int ta, tb;
    if (gemm_trivial(transA, transB, M, N, K, alpha, beta, C, ldc, &ta, &tb)) return;
    const gemm_impl *im = gemm_select();
    const int narrow = N <= im->nr16;
    const int mr = im->mr, nr = narrow ? im->nr16 : im->nr;
    const int mt = (M + mr - 1) / mr, nt = (N + nr - 1) / nr;  // tiles

    // Parallelism: C is cut into a grid of tm x tn parts, each a whole number of tiles and
    // at least ~2^18 multiply-adds, about GEMM_PARTS_PER_THREAD per thread, handed out
    // dynamically (a thread that loses its core to another process does not hold up the
    // rest; results do not depend on who computes which part). The grid minimises the
    // rows of op(A) plus the columns of op(B) that each part reads (and, for Bᵀ, packs).
    int nth = 1, nparts = 1;
#ifdef _OPENMP
    if (!omp_in_parallel()) nth = omp_get_max_threads();
#endif
    if (nth > 1) {
        double work = (double)M * N * K / (1 << 18);
        nparts = nth * GEMM_PARTS_PER_THREAD;
        if (work < nparts) nparts = work < 1 ? 1 : (int)work;
    }
    int tm = 1, tn = 1;
    for (; nparts > 1; nparts--) {
        double best = 1e300;
        for (int a = 1; a <= nparts; a++) {
            int b = nparts / a;
            if (nparts % a || a > mt || b > nt) continue;
            double cost = (double)M / a + (double)N / b;
            if (cost < best) best = cost, tm = a, tn = b;
        }
        if (best < 1e300) break;
    }
    if (nth > nparts) nth = nparts;

    int ncmax = N < GEMM_NC ? N : GEMM_NC;
    ncmax = (ncmax + nr - 1) / nr * nr;
    if (ncmax > (nt + tn - 1) / tn * nr) ncmax = (nt + tn - 1) / tn * nr;
    int kcmax = K < GEMM_KC ? K : GEMM_KC;
    size_t pera = ((size_t)mr * kcmax + 15) / 16 * 16;  // floats, multiples of 64 bytes
    size_t per = pera + ((size_t)kcmax * ncmax + 15) / 16 * 16;
    // the packing buffers: kept per calling thread and grown only when a product needs more, so a
    // training loop's repeated shapes allocate in their first step and never again
    // (thread-local: the parallel region's workers must use `buf`, the caller's, not their own)
    static _Thread_local float *cache = NULL;
    static _Thread_local size_t cache_floats = 0;
    if (per * nth > cache_floats) {
        free(cache);
        cache = aligned_alloc(64, per * nth * sizeof(float));
        if (!cache) {
            fprintf(stderr, "gemm: out of memory (%zu bytes)\n", per * nth * sizeof(float));
            exit(EXIT_FAILURE);
        }
        cache_floats = per * nth;
    }
    float *buf = cache;

#ifdef _OPENMP
#pragma omp parallel num_threads(nth) if (nth > 1)
#endif
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
#endif
        for (int p = 0; p < nparts; p++) {
            int pm = p / tn, pn = p % tn;
            int i0 = (int)((long)mt * pm / tm) * mr, i1 = (int)((long)mt * (pm + 1) / tm) * mr;
            int j0 = (int)((long)nt * pn / tn) * nr, j1 = (int)((long)nt * (pn + 1) / tn) * nr;
            if (i1 > M) i1 = M;
            if (j1 > N) j1 = N;
            if (i0 >= i1 || j0 >= j1) continue;
            const float *a = ta ? A + i0 : A + (size_t)i0 * lda;
            const float *b = tb ? B + (size_t)j0 * ldb : B + j0;
            float *bufa = buf + per * t, *bufb = bufa + pera;
            gemm_part(narrow ? im->kernel16 : im->kernel, im->pack_bt, mr, nr, ta, tb, i1 - i0, j1 - j0, K,
                      alpha, a, lda, b, ldb, beta, C + (size_t)i0 * ldc + j0, ldc, bufa, bufb);
        }
    }
}

#endif  // GEMM_H
