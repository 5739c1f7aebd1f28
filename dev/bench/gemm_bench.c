/* dev/bench/gemm_bench.c - our gemm (kernels/gemm.h) against OpenBLAS cblas_sgemm on the
 * products of GPT-2 124M's linear layers, same process, same threads.
 * Build and run with dev/bench/gemm.sh. Usage: gemm_bench [B T [filter]]  (default B=4, T=64;
 * filter: only the products whose name contains it)
 * For each linear, weight (OC,C), rows M = B*T:
 *   fwd  NT  out  (M,OC) = inp (M,C) . weightᵀ
 *   bwd  NN  dinp (M,C)  = dout (M,OC) . weight
 *   bwd  TN  dW   (OC,C) += doutᵀ . inp            (beta = 1, as the trainer accumulates)
 * then the rank-16 LoRA products of the largest linear. Each entry is the fastest call
 * (GFLOP/s = 2MNK / time) over ROUNDS rounds of 0.1 s per library, the two libraries
 * alternating, so that a machine shared with other jobs slows both alike and the best
 * call still shows what each does on an idle core.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../../kernels/gemm.h"

char *openblas_get_corename(void);
int openblas_get_num_threads(void);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

enum { ROUNDS = 5 };

typedef struct { const char *name; char ta, tb; int M, N, K; float beta; } shape;

// one product with either library; lda/ldb/ldc are the tight row strides
static void run(int blas, const shape *s, const float *A, const float *B, float *C)
{
    int lda = s->ta == 'N' ? s->K : s->M, ldb = s->tb == 'N' ? s->N : s->K;
    if (blas)
        cblas_sgemm(CblasRowMajor, s->ta == 'N' ? CblasNoTrans : CblasTrans,
                    s->tb == 'N' ? CblasNoTrans : CblasTrans, s->M, s->N, s->K, 1.0f, A, lda, B, ldb,
                    s->beta, C, s->N);
    else
        gemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, s->beta, C, s->N);
}

// Fastest call in `sec` seconds of repeated calls, after a pause that lets the other
// library's spinning threads go to sleep.
static double best_time(int blas, const shape *s, const float *A, const float *B, float *C, double sec)
{
    usleep(200000);
    run(blas, s, A, B, C);
    double best = 1e30, start = now();
    for (int n = 0; n < 3 || now() - start < sec; n++) {
        double t0 = now();
        run(blas, s, A, B, C);
        double t = now() - t0;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    int Bsz = argc > 2 ? atoi(argv[1]) : 4, T = argc > 2 ? atoi(argv[2]) : 64, M = Bsz * T;
    struct { const char *name; int OC, C; } lin[] = {
        {"qkv", 2304, 768}, {"attproj", 768, 768}, {"fc", 3072, 768}, {"fcproj", 768, 3072}};
    shape sh[64];
    int ns = 0;
    char names[64][32];
    for (int l = 0; l < 4; l++) {
        int OC = lin[l].OC, C = lin[l].C;
        snprintf(names[ns], 32, "%s fwd", lin[l].name), sh[ns] = (shape){names[ns], 'N', 'T', M, OC, C, 0}, ns++;
        snprintf(names[ns], 32, "%s bwd dinp", lin[l].name), sh[ns] = (shape){names[ns], 'N', 'N', M, C, OC, 0}, ns++;
        snprintf(names[ns], 32, "%s bwd dW", lin[l].name), sh[ns] = (shape){names[ns], 'T', 'N', OC, C, M, 1}, ns++;
    }
    int nmain = ns, r = 16, OC = 3072, C = 768;  // LoRA on fc: x (M,C), A (r,C), Bw (OC,r)
    sh[ns++] = (shape){"lora h=x.A^T", 'N', 'T', M, r, C, 0};
    sh[ns++] = (shape){"lora y+=h.B^T", 'N', 'T', M, OC, r, 1};
    sh[ns++] = (shape){"lora dh=dy.B", 'N', 'N', M, r, OC, 0};
    sh[ns++] = (shape){"lora dB=dy^T.h", 'T', 'N', OC, r, M, 1};
    sh[ns++] = (shape){"lora dA=dh^T.x", 'T', 'N', r, C, M, 1};
    sh[ns++] = (shape){"lora dx+=dh.A", 'N', 'N', M, C, r, 1};

    size_t maxe = 3072 * 3072;
    float *A = aligned_alloc(64, maxe * 4), *Bm = aligned_alloc(64, maxe * 4), *Cm = aligned_alloc(64, maxe * 4);
    srand(1);
    for (size_t i = 0; i < maxe; i++) {
        A[i] = (float)rand() / RAND_MAX - 0.5f;
        Bm[i] = (float)rand() / RAND_MAX - 0.5f;
        Cm[i] = 0.0f;
    }
    int nth = 1;
#ifdef _OPENMP
    nth = omp_get_max_threads();
#endif
    printf("gemm: isa %s, %d OpenMP threads | OpenBLAS: core %s, %d threads | B=%d T=%d\n", gemm_isa(), nth,
           openblas_get_corename(), openblas_get_num_threads(), Bsz, T);
    printf("%-16s %-3s %5s %5s %5s %10s %10s %6s\n", "product", "op", "M", "N", "K", "ours GF/s", "BLAS GF/s", "ratio");
    double lsum = 0, lsum_b = 0;
    for (int i = 0; i < ns; i++) {
        const shape *s = &sh[i];
        if (argc > 3 && !strstr(s->name, argv[3])) continue;
        if (i == nmain) printf("-- LoRA rank %d on fc (not in the mean)\n", r);
        double t = 1e30, tb = 1e30, flop = 2.0 * s->M * s->N * s->K;
        for (int round = 0; round < ROUNDS; round++) {  // alternate, so both see the same load
            double x = best_time(0, s, A, Bm, Cm, 0.1), y = best_time(1, s, A, Bm, Cm, 0.1);
            t = x < t ? x : t, tb = y < tb ? y : tb;
        }
        double g = flop / t * 1e-9, gb = flop / tb * 1e-9;
        printf("%-16s %c%c  %5d %5d %5d %10.1f %10.1f %6.2f\n", s->name, s->ta, s->tb, s->M, s->N, s->K, g, gb, g / gb);
        fflush(stdout);
        if (i < nmain) lsum += t, lsum_b += tb;
    }
    if (lsum > 0) printf("GPT-2 124M linears, total time ratio (BLAS time / ours): %.2f\n", lsum_b / lsum);
    free(A), free(Bm), free(Cm);
    return 0;
}
