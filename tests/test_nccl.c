/*
tests/test_nccl.c — the GPU trainer's NCCL path (cuda/nccl.h) on its own, exactly: under
`mpirun -np N ./test_nccl` every rank joins the job (llmc/dist.h), picks its GPU, builds the
communicator from the unique id rank 0 broadcast, and all-reduces a device buffer whose entry i on
rank r is (r + 1) * (i % 1000): the sum is (i % 1000) * N (N + 1) / 2, exact in float. Also the
in-place, stream-ordered use the trainer makes of it (a kernel-free cudaMemsetAsync before, a copy
back after, on the same stream). Prints "N passed, M failed"; exit status 0 when all passed.
Built by cuda/cuda.mk where NCCL and mpicc are found (make test_nccl).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../cuda/nccl.h"

static int pass = 0, fail = 0;
static void check(int ok, const char *what) {
    if (ok) pass++; else fail++;
    if (dist_is_main() || !ok) printf("%s: rank %d: %s\n", ok ? "ok" : "FAIL", dist_rank(), what);
}

int main(void) {
    char err[512];
    if (dist_init(err, sizeof(err)) != 0) { fprintf(stderr, "error: %s\n", err); return 1; }
    NcclDP dp;
    nccl_dp_init(&dp);
    int N = dist_world(), r = dist_rank();
    const size_t n = 3000001; // odd, and more than one NCCL chunk
    float *h = malloc(n * sizeof(float)), *d = NULL;
    cudaStream_t st;
    if (!h || cudaStreamCreate(&st) != cudaSuccess || cudaMalloc((void **)&d, n * sizeof(float)) != cudaSuccess) {
        fprintf(stderr, "error: rank %d: cannot allocate\n", r);
        return 1;
    }
    for (size_t i = 0; i < n; i++) h[i] = (float)((r + 1) * (int)(i % 1000));
    cudaMemsetAsync(d, 0xff, n * sizeof(float), st); // the buffer's previous contents are overwritten
    cudaMemcpyAsync(d, h, n * sizeof(float), cudaMemcpyHostToDevice, st);
    nccl_dp_allreduce(&dp, d, n, st);
    cudaMemcpyAsync(h, d, n * sizeof(float), cudaMemcpyDeviceToHost, st);
    check(cudaStreamSynchronize(st) == cudaSuccess, "the all-reduce ran on the stream");
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += h[i] != (float)((i % 1000) * (size_t)N * (N + 1) / 2);
    char what[160];
    snprintf(what, sizeof(what), "%zu floats summed over %d rank%s on GPU %d: %zu wrong", n, N, N > 1 ? "s" : "", dp.device, bad);
    check(bad == 0, what);
    // every rank must hold the same bits: the checksum comparison the trainer uses
    check(dist_check_identical("the all-reduced buffer", h, n * sizeof(float), err, sizeof(err)) == 0, "identical on every rank");
    check(dp.on, "a communicator (NCCL id from rank 0 by MPI)");
    cudaFree(d);
    cudaStreamDestroy(st);
    free(h);
    nccl_dp_free(&dp);
    int failed = fail;
    dist_allreduce_i32(&failed, 1);
    if (dist_is_main()) printf("%d passed, %d failed\n", pass, failed);
    dist_finalize();
    return failed ? 1 : 0;
}
