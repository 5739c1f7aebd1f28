/*
cuda/nccl.h — the GPU trainer's data parallelism: one process per GPU, started by mpirun, NCCL's
all-reduce of the trainable gradients on the GPU. Included by cuda/host.c when the build found
NCCL and MPI (-DUSE_NCCL -DUSE_MPI: cuda/cuda.mk); plain C, since NCCL's interface is C.

    if (dist_active()) nccl_dp_init(&dp);     // before the GPU model: picks this rank's GPU
    nccl_dp_allreduce(&dp, grads, n, stream); // after the backward, before the gradient norm
    nccl_dp_free(&dp);

The NCCL unique id is made by rank 0 and sent to the others by MPI (llmc/dist.h's dist_bcast), so
one node and many nodes start the same way. Rank r drives GPU (local rank mod GPUs per node).
The all-reduce is in place, float32 sum, on the model's stream: the gradient norm and AdamW that
follow on the same stream see the sums. Every rank gets the same bits (NCCL's ring and tree
reduce each element once and broadcast it), which the loop checks at checkpoints.
Keep NVLink multicast off where it is shared (NCCL_NVLS_ENABLE=0).
*/
#ifndef CUDA_NCCL_H
#define CUDA_NCCL_H
#include <cuda_runtime_api.h>
#include <nccl.h>
#include "../llmc/dist.h"

typedef struct {
    ncclComm_t comm;
    int on;     // a communicator exists: the all-reduce runs (also at world size 1)
    int device; // the GPU this rank drives
} NcclDP;

#define NCCL_DP_CHECK(call, what)                                                                                        \
    do {                                                                                                                 \
        ncclResult_t r_ = (call);                                                                                        \
        if (r_ != ncclSuccess) {                                                                                         \
            fprintf(stderr, "error: rank %d: NCCL %s: %s (%s:%d)\n", dist_rank(), what, ncclGetErrorString(r_), __FILE__, \
                    __LINE__);                                                                                           \
            dist_abort(1);                                                                                               \
            exit(1);                                                                                                     \
        }                                                                                                                \
    } while (0)

// This rank's GPU, and a communicator over all ranks. Call after dist_init, before any CUDA work.
static void nccl_dp_init(NcclDP *d) {
    memset(d, 0, sizeof(*d));
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        fprintf(stderr, "error: rank %d: no CUDA device\n", dist_rank());
        dist_abort(1);
        exit(1);
    }
    d->device = dist_local_rank() % ndev;
    cudaSetDevice(d->device);
    ncclUniqueId id;
    if (dist_is_main()) NCCL_DP_CHECK(ncclGetUniqueId(&id), "ncclGetUniqueId");
    dist_bcast(&id, sizeof(id), 0);
    NCCL_DP_CHECK(ncclCommInitRank(&d->comm, dist_world(), id, dist_rank()), "ncclCommInitRank");
    d->on = 1;
}

// grads (device, n floats) = the sum over ranks, enqueued on `stream`
static void nccl_dp_allreduce(NcclDP *d, float *grads, size_t n, cudaStream_t stream) {
    if (!d->on || n == 0) return;
    NCCL_DP_CHECK(ncclAllReduce(grads, grads, n, ncclFloat, ncclSum, d->comm, stream), "ncclAllReduce");
}

// ZeRO-1, in place on `stream`: buf (W S floats) summed over the ranks, rank r's S of the sum at
// buf + r S (NCCL's in-place reduce-scatter); then every rank's S entries at buf + r S to every
// rank (all-gather), of floats or bf16 (2-byte) values
static void nccl_dp_reduce_scatter(NcclDP *d, float *buf, size_t S, cudaStream_t stream) {
    if (!d->on || S == 0) return;
    NCCL_DP_CHECK(ncclReduceScatter(buf, buf + (size_t)dist_rank() * S, S, ncclFloat, ncclSum, d->comm, stream), "ncclReduceScatter");
}
static void nccl_dp_allgather(NcclDP *d, void *buf, size_t S, int bf16, cudaStream_t stream) {
    if (!d->on || S == 0) return;
    size_t es = bf16 ? 2 : 4;
    NCCL_DP_CHECK(ncclAllGather((char *)buf + (size_t)dist_rank() * S * es, buf, S, bf16 ? ncclBfloat16 : ncclFloat, d->comm, stream),
                  "ncclAllGather");
}

static void nccl_dp_free(NcclDP *d) {
    if (d->on) ncclCommDestroy(d->comm);
    d->on = 0;
}

#endif // CUDA_NCCL_H
