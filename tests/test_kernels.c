/* test_kernels.c - kernels/gemm.h against its plain reference, on every instruction set
 * this machine supports (forced with GEMM_ISA), all four transpose combinations, awkward
 * shapes, alpha/beta variants, padded leading dimensions.
 *   make test_kernels && ./test_kernels
 *
 * Tolerance. For s = sum_k a_k b_k summed in fp32 in any order, with or without fused
 * multiply-adds, |computed - s| <= gamma_K * sum_k |a_k||b_k|, gamma_K = K u / (1 - K u),
 * u = 2^-24 (Higham, Accuracy and Stability of Numerical Algorithms, sec. 3.1); scaling by
 * alpha and adding beta*c costs two more roundings. gemm and gemm_ref both obey it, so
 *   |gemm - gemm_ref| <= 2 gamma_{K+2} (|alpha| sum|a||b| + |beta||c|) ~ (K+2) FLT_EPSILON (...)
 * is a bound no correct kernel can exceed, whatever its blocking. It still catches bugs:
 * a dropped, doubled or misplaced term is of size ~ sum|a||b| / K, and K^2 FLT_EPSILON
 * stays below 0.01 for K <= 257 (and below 0.15 at the largest K used here). On top of that:
 * integer-valued data, where every partial sum is exact in fp32, must match bit for bit;
 * the padding between rows is NaN in A and B (reading it would show) and a sentinel in C
 * (writing it would show). gemm_serial (one thread, the caller's workspace) must give gemm's
 * bits on every case.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/gemm.h"

static const char *ISAS[] = {"avx512", "avx2", "generic"};
enum { NISA = 3 };
static const float C_SENTINEL = 12345.0f;

static unsigned rng_state = 12345u;
static unsigned rnd_bits(void) { return (rng_state = rng_state * 1664525u + 1013904223u) >> 8; }  // 24 bits
static float rnd(void) { return (float)rnd_bits() / (float)(1 << 23) - 1.0f; }  // uniform in [-1, 1)
static float rnd_int(void) { return (float)((int)(rnd_bits() % 9) - 4); }    // integer in [-4, 4]

// a rows x cols matrix with row stride ld = cols + pad; the padding is `padv`.
// integer != 0: values are integers in [-4, 4].
static float *make_matrix(int rows, int cols, int ld, int integer, float padv)
{
    float *m = malloc((size_t)rows * ld * sizeof(float));
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < ld; j++)
            m[(size_t)i * ld + j] = j >= cols ? padv : integer ? rnd_int() : rnd();
    return m;
}

typedef struct { int M, N, K; } dims;

// Runs one case: ref once, then gemm for each supported ISA. Returns number of failures.
static int check_case(char ta, char tb, int M, int N, int K, float alpha, float beta, int integer)
{
    int ar = ta == 'N' ? M : K, ac = ta == 'N' ? K : M;  // A as stored
    int br = tb == 'N' ? K : N, bc = tb == 'N' ? N : K;
    int lda = ac + 3, ldb = bc + 5, ldc = N + 2;
    float *A = make_matrix(ar, ac, lda, integer, NAN);
    float *B = make_matrix(br, bc, ldb, integer, NAN);
    float *C0 = make_matrix(M, N, ldc, integer, C_SENTINEL);
    float *R = malloc((size_t)M * ldc * sizeof(float)), *C = malloc((size_t)M * ldc * sizeof(float));
    float *tol = malloc((size_t)M * N * sizeof(float));
    memcpy(R, C0, (size_t)M * ldc * sizeof(float));
    gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float a = ta == 'N' ? A[(size_t)i * lda + k] : A[(size_t)k * lda + i];
                float b = tb == 'N' ? B[(size_t)k * ldb + j] : B[(size_t)j * ldb + k];
                s += fabs((double)a * b);
            }
            s = fabs(alpha) * s + fabs(beta) * fabs(C0[(size_t)i * ldc + j]);
            tol[(size_t)i * N + j] = integer ? 0.0f : (float)((K + 2) * FLT_EPSILON * s) + FLT_MIN;
        }
    int fails = 0;
    for (int t = 0; t < NISA; t++) {
        if (!gemm_isa_supported(ISAS[t])) continue;
        setenv("GEMM_ISA", ISAS[t], 1);
        memcpy(C, C0, (size_t)M * ldc * sizeof(float));
        gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        int bad = 0;
        for (int i = 0; i < M && bad < 3; i++)
            for (int j = 0; j < ldc && bad < 3; j++) {
                float c = C[(size_t)i * ldc + j], r = R[(size_t)i * ldc + j];
                int ok = j >= N ? c == C_SENTINEL : fabsf(c - r) <= tol[(size_t)i * N + j];
                if (!ok) {
                    fprintf(stderr, "FAIL isa %s %c%c M=%d N=%d K=%d alpha=%g beta=%g%s: C[%d][%d] = %.9g, ref %.9g, tol %.3g\n",
                            ISAS[t], ta, tb, M, N, K, alpha, beta, integer ? " (integer data)" : "", i, j, c, r,
                            j >= N ? 0.0 : tol[(size_t)i * N + j]);
                    bad++;
                }
            }
        fails += bad > 0;
        // gemm_serial (one thread, caller's workspace) gives gemm's bits, padding untouched
        float *S = malloc((size_t)M * ldc * sizeof(float));
        float *work = aligned_alloc(64, (gemm_serial_work(N, K) * sizeof(float) + 63) / 64 * 64);
        memcpy(S, C0, (size_t)M * ldc * sizeof(float));
        gemm_serial(gemm_select(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, S, ldc, work);
        if (memcmp(S, C, (size_t)M * ldc * sizeof(float)) != 0) {
            fprintf(stderr, "FAIL isa %s %c%c M=%d N=%d K=%d alpha=%g beta=%g: gemm_serial differs from gemm\n",
                    ISAS[t], ta, tb, M, N, K, alpha, beta);
            fails++;
        }
        free(S), free(work);
    }
    unsetenv("GEMM_ISA");
    free(A), free(B), free(C0), free(R), free(C), free(tol);
    return fails;
}

static const char TRANS[4][2] = {{'N', 'N'}, {'N', 'T'}, {'T', 'N'}, {'T', 'T'}};
static const float ALPHA_BETA[3][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.5f, 0.25f}};

// every combination of small sizes, including 1 and the LoRA rank 16
START_TEST(test_small_shapes)
{
    static const int S[] = {1, 2, 7, 16, 17, 31, 33};
    enum { NS = sizeof(S) / sizeof(S[0]) };
    int fails = 0, cases = 0;
    for (int t = 0; t < 4; t++)
        for (int m = 0; m < NS; m++)
            for (int n = 0; n < NS; n++)
                for (int k = 0; k < NS; k++)
                    for (int ab = 0; ab < 3; ab++, cases++)
                        fails += check_case(TRANS[t][0], TRANS[t][1], S[m], S[n], S[k], ALPHA_BETA[ab][0],
                                            ALPHA_BETA[ab][1], 0);
    ck_assert_msg(fails == 0, "%d of %d small cases failed (see stderr)", fails, cases);
}
END_TEST

// larger awkward shapes: tile edges, K across the GEMM_KC block, N across GEMM_NC per thread,
// thread grids split along M or along N, LoRA-like N=16 and K=16.
static const dims LARGE[] = {
    {255, 257, 129}, {257, 129, 255}, {129, 255, 257}, {65, 31, 257}, {16, 257, 255},
    {257, 16, 257}, {255, 257, 16}, {1, 257, 257}, {257, 1, 129}, {257, 257, 1},
    {33, 1100, 300}, {1100, 33, 300}, {65, 129, 600},
};
enum { NLARGE = sizeof(LARGE) / sizeof(LARGE[0]) };

START_TEST(test_large_shapes)
{
    int fails = 0, cases = 0;
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < NLARGE; s++)
            for (int ab = 0; ab < 2; ab++, cases++)
                fails += check_case(TRANS[t][0], TRANS[t][1], LARGE[s].M, LARGE[s].N, LARGE[s].K,
                                    ALPHA_BETA[ab][0], ALPHA_BETA[ab][1], 0);
    ck_assert_msg(fails == 0, "%d of %d large cases failed (see stderr)", fails, cases);
}
END_TEST

// integer data: every partial sum is exact, so any correct summation order gives the
// reference bit for bit.
START_TEST(test_exact_integer)
{
    int fails = 0, cases = 0;
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < NLARGE; s++)
            for (int ab = 0; ab < 2; ab++, cases++)
                fails += check_case(TRANS[t][0], TRANS[t][1], LARGE[s].M, LARGE[s].N, LARGE[s].K,
                                    ALPHA_BETA[ab][0], ALPHA_BETA[ab][1], 1);
    ck_assert_msg(fails == 0, "%d of %d integer cases failed (see stderr)", fails, cases);
}
END_TEST

// beta = 0 must not read C: NaN there must not reach the result.
START_TEST(test_beta0_ignores_nan)
{
    static const dims S[] = {{1, 1, 1}, {7, 17, 33}, {257, 255, 129}, {33, 1100, 300}};
    for (int t = 0; t < NISA; t++) {
        if (!gemm_isa_supported(ISAS[t])) continue;
        setenv("GEMM_ISA", ISAS[t], 1);
        for (int tr = 0; tr < 4; tr++)
            for (int s = 0; s < 4; s++) {
                int M = S[s].M, N = S[s].N, K = S[s].K;
                float *A = make_matrix(M * K, 1, 1, 0, 0), *B = make_matrix(K * N, 1, 1, 0, 0);
                float *C = make_matrix(M, N, N, 0, 0);
                for (int i = 0; i < M * N; i++) C[i] = NAN;
                gemm(TRANS[tr][0], TRANS[tr][1], M, N, K, 1.0f, A, TRANS[tr][0] == 'N' ? K : M, B,
                     TRANS[tr][1] == 'N' ? N : K, 0.0f, C, N);
                for (int i = 0; i < M * N; i++)
                    ck_assert_msg(!isnan(C[i]), "isa %s %c%c %dx%dx%d: NaN at %d", ISAS[t], TRANS[tr][0],
                                  TRANS[tr][1], M, N, K, i);
                free(A), free(B), free(C);
            }
    }
}
END_TEST

// alpha = 0 or K = 0: C = beta * C, without touching A and B (BLAS semantics).
START_TEST(test_degenerate)
{
    float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {NAN}, B[1] = {NAN};
    gemm('N', 'N', 2, 3, 0, 1.0f, A, 1, B, 3, 2.0f, C, 3);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(C[i], 2.0f * (i + 1));
    gemm('N', 'N', 2, 3, 1, 0.0f, A, 1, B, 3, 0.5f, C, 3);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(C[i], (float)(i + 1));
    for (int i = 0; i < 6; i++) C[i] = NAN;
    gemm('T', 'T', 2, 3, 1, 0.0f, A, 2, B, 1, 0.0f, C, 3);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(C[i], 0.0f);
}
END_TEST

// same inputs, same bits: repeated calls, and 1 thread against all of them.
START_TEST(test_deterministic)
{
    static const dims S[] = {{256, 2304, 768}, {2304, 768, 256}, {257, 1100, 300}, {256, 16, 768}};
    for (int t = 0; t < NISA; t++) {
        if (!gemm_isa_supported(ISAS[t])) continue;
        setenv("GEMM_ISA", ISAS[t], 1);
        for (int s = 0; s < 4; s++) {
            int M = S[s].M, N = S[s].N, K = S[s].K;
            float *A = make_matrix(M, K, K, 0, 0), *B = make_matrix(N, K, K, 0, 0);
            float *C1 = calloc((size_t)M * N, 4), *C2 = calloc((size_t)M * N, 4), *C3 = calloc((size_t)M * N, 4);
            gemm('N', 'T', M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
            gemm('N', 'T', M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N);
#ifdef _OPENMP
            int nth = omp_get_max_threads();
            omp_set_num_threads(1);
            gemm('N', 'T', M, N, K, 1.0f, A, K, B, K, 0.0f, C3, N);
            omp_set_num_threads(nth);
#else
            gemm('N', 'T', M, N, K, 1.0f, A, K, B, K, 0.0f, C3, N);
#endif
            ck_assert_msg(memcmp(C1, C2, (size_t)M * N * 4) == 0, "isa %s %dx%dx%d: repeat differs", ISAS[t], M, N, K);
            ck_assert_msg(memcmp(C1, C3, (size_t)M * N * 4) == 0, "isa %s %dx%dx%d: 1 thread differs", ISAS[t], M, N, K);
            free(A), free(B), free(C1), free(C2), free(C3);
        }
    }
}
END_TEST

// GEMM_ISA forces a path, and gemm_isa() reports it; the default is the best supported.
START_TEST(test_isa_selection)
{
    unsetenv("GEMM_ISA");
    const char *best = gemm_isa();
    for (int t = 0; t < NISA; t++)
        if (gemm_isa_supported(ISAS[t])) {
            ck_assert_str_eq(best, ISAS[t]);
            break;
        }
    ck_assert(gemm_isa_supported("generic"));
    for (int t = 0; t < NISA; t++) {
        if (!gemm_isa_supported(ISAS[t])) continue;
        setenv("GEMM_ISA", ISAS[t], 1);
        ck_assert_str_eq(gemm_isa(), ISAS[t]);
    }
    unsetenv("GEMM_ISA");
}
END_TEST

// an ISA this build or CPU lacks is refused: gemm exits non-zero instead of running another
START_TEST(test_isa_refused)
{
    setenv("GEMM_ISA", "sse9", 1);
    if (!freopen("/dev/null", "w", stderr)) return;  // the refusal message is expected here
    gemm_isa();
}
END_TEST

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_isa_selection);
    tcase_add_exit_test(tc, test_isa_refused, EXIT_FAILURE);
    tcase_add_test(tc, test_degenerate);
    tcase_add_test(tc, test_beta0_ignores_nan);
    tcase_add_test(tc, test_small_shapes);
    tcase_add_test(tc, test_large_shapes);
    tcase_add_test(tc, test_exact_integer);
    tcase_add_test(tc, test_deterministic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    printf("gemm dispatches to: %s\n", gemm_isa());
    SRunner *sr = srunner_create(kernels_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
