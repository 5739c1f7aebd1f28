/*
llmc/dist.h — data-parallel training over MPI: who this process is, and the few collectives the
training loop needs. Compiled with -DUSE_MPI (the Makefile adds it when it finds mpicc) it wraps
MPI; without it every function is the one-process answer (rank 0 of 1) and costs nothing.

    if (dist_init(err, sizeof(err)) != 0) ...  // MPI_Init only when started by mpirun (else 1 process)
    if (dist_is_main()) write_files();        // rank 0 alone prints and writes
    dist_allreduce_f32(grads, n);             // sum over ranks, in place, identical on every rank
    if (dist_check_identical("LoRI-S mask", mask, nB, err, sizeof(err)) != 0) die("%s", err);
    dist_finalize();

Launch: `mpirun -np N ./train_lora ...` (as root: --allow-run-as-root; more ranks than cores:
--oversubscribe). A binary built with MPI but started without mpirun does not initialise MPI
at all: it is the ordinary one-process trainer.

Determinism: a sum is MPI_Allreduce's with MPI_SUM. For a fixed rank count and message size Open
MPI picks one algorithm, so a run repeats bit for bit; every rank ends with the same bits (ring,
recursive doubling and Rabenseifner reduce each element once, or combine commutatively). What
must be identical on all ranks (the LoRI-S mask, the base after a PLoRA unload, the trainable
values at a checkpoint) is checked with dist_check_identical, not assumed. With 2 ranks a sum is
a0 + a1 on both: 2 ranks x B is 1 process x 2 micro-batches of B up to the order in which the two
halves' gradients are added (the test's 1e-6).
*/
#ifndef LLMC_DIST_H
#define LLMC_DIST_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef USE_MPI
#include <mpi.h>
#endif

typedef struct {
    int rank, world;  // this process, and how many there are
    int local_rank;   // this process among those on its node (the GPU it drives)
    int mpi;          // MPI was initialised (started by mpirun)
} Dist;

static Dist g_dist = {0, 1, 0, 0};

static int dist_rank(void) { return g_dist.rank; }
static int dist_world(void) { return g_dist.world; }
static int dist_local_rank(void) { return g_dist.local_rank; }
static int dist_is_main(void) { return g_dist.rank == 0; }
static int dist_active(void) { return g_dist.mpi; } // collectives run (even at world size 1)

// Started by a launcher? Open MPI's mpirun, PMIx, Hydra (MPICH), Slurm's srun with PMI.
static int dist_launched(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) if (getenv(vars[i])) return 1;
    return 0;
}

// Joins the job when started by mpirun; otherwise one process, rank 0 of 1. Ranks other than 0
// send their stdout to /dev/null (rank 0 alone prints); stderr stays, so every rank's errors show.
// Returns -1 (err says why) when a binary built without MPI is one of several processes mpirun
// started: each would train alone and write the same files.
static int dist_init(char *err, size_t errlen) {
#ifndef USE_MPI
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n) n = getenv("PMI_SIZE");
    if (n && atoi(n) > 1) {
        snprintf(err, errlen, "started as one of %s processes (mpirun), but built without MPI: each would train alone. "
                 "Rebuild with MPI (Debian: apt-get install libopenmpi-dev openmpi-bin; make finds mpicc)", n);
        return -1;
    }
#else
    if (g_dist.mpi || !dist_launched()) return 0;
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_dist.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_dist.world);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_dist.rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &g_dist.local_rank);
    MPI_Comm_free(&node);
    g_dist.mpi = 1;
    if (g_dist.rank != 0 && !freopen("/dev/null", "w", stdout)) fprintf(stderr, "rank %d: cannot silence stdout\n", g_dist.rank);
#endif
    (void)err; (void)errlen;
    return 0;
}

static void dist_finalize(void) {
#ifdef USE_MPI
    if (g_dist.mpi) { fflush(stdout); MPI_Finalize(); g_dist.mpi = 0; }
#endif
}

// Ends the whole job (every rank) with `code`: what an error on one rank must do, since the
// others would wait for it in the next collective.
static void dist_abort(int code) {
#ifdef USE_MPI
    if (g_dist.mpi && g_dist.world > 1) { fflush(stdout); fflush(stderr); MPI_Abort(MPI_COMM_WORLD, code); }
#endif
    (void)code;
}

#ifdef USE_MPI
// MPI counts are int: large buffers go in chunks of 2^30 elements.
static void dist_allreduce_(void *buf, size_t n, MPI_Datatype t, size_t esize, MPI_Op op) {
    if (!g_dist.mpi) return;
    for (size_t off = 0; off < n;) {
        size_t k = n - off < ((size_t)1 << 30) ? n - off : ((size_t)1 << 30);
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * esize, (int)k, t, op, MPI_COMM_WORLD);
        off += k;
    }
}
#endif

// x[i] = sum over ranks of x[i], in place; every rank gets the same bits.
static void dist_allreduce_f32(float *x, size_t n) {
#ifdef USE_MPI
    dist_allreduce_(x, n, MPI_FLOAT, sizeof(float), MPI_SUM);
#endif
    (void)x; (void)n;
}
static void dist_allreduce_f64(double *x, size_t n) {
#ifdef USE_MPI
    dist_allreduce_(x, n, MPI_DOUBLE, sizeof(double), MPI_SUM);
#endif
    (void)x; (void)n;
}
static void dist_allreduce_i32(int *x, size_t n) {
#ifdef USE_MPI
    dist_allreduce_(x, n, MPI_INT, sizeof(int), MPI_SUM);
#endif
    (void)x; (void)n;
}

// ZeRO-1's collectives over n values split in rank order: rank r's shard is [r S, (r+1) S) within n,
// S = ceil(n / W) (equal shards but the last: NCCL's reduce-scatter wants equal counts, so the GPU
// pads to W S). MPI counts are int: n must be below 2^31 (dist_shard_ok says so before training).
static size_t dist_shard_size(size_t n, int world) { return (n + (size_t)world - 1) / (size_t)world; }
static void dist_shard(size_t n, int rank, int world, size_t *lo, size_t *hi) {
    size_t S = dist_shard_size(n, world);
    *lo = (size_t)rank * S < n ? (size_t)rank * S : n;
    *hi = *lo + S < n ? *lo + S : n;
}
static int dist_shard_ok(size_t n) { return n < ((size_t)1 << 31); }
#ifdef USE_MPI
static void dist_shard_counts_(size_t n, int *counts, int *displs) {
    for (int r = 0; r < g_dist.world; r++) {
        size_t lo, hi;
        dist_shard(n, r, g_dist.world, &lo, &hi);
        counts[r] = (int)(hi - lo);
        displs[r] = (int)lo;
    }
}
#endif
// x (n) summed over the ranks; this rank's shard of the sum lands in x[lo..hi) (the rest of x is
// left as it was). scratch: room for one shard.
static void dist_reduce_scatter_f32(float *x, size_t n, float *scratch) {
#ifdef USE_MPI
    if (g_dist.mpi) {
        int counts[g_dist.world], displs[g_dist.world];
        dist_shard_counts_(n, counts, displs);
        MPI_Reduce_scatter(x, scratch, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        memcpy(x + displs[g_dist.rank], scratch, (size_t)counts[g_dist.rank] * sizeof(float));
    }
#endif
    (void)x; (void)n; (void)scratch;
}
// every rank's shard of x (n) to every rank, in place
static void dist_allgather_f32(float *x, size_t n) {
#ifdef USE_MPI
    if (g_dist.mpi) {
        int counts[g_dist.world], displs[g_dist.world];
        dist_shard_counts_(n, counts, displs);
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
    }
#endif
    (void)x; (void)n;
}
// every rank's shard (its hi - lo values at `shard`) into root's full (n); full is only read on root
static void dist_gather_f32(const float *shard, float *full, size_t n, int root) {
#ifdef USE_MPI
    if (g_dist.mpi) {
        int counts[g_dist.world], displs[g_dist.world];
        dist_shard_counts_(n, counts, displs);
        MPI_Gatherv(shard, counts[g_dist.rank], MPI_FLOAT, full, counts, displs, MPI_FLOAT, root, MPI_COMM_WORLD);
        return;
    }
#endif
    memcpy(full, shard, n * sizeof(float));
    (void)root;
}

// root's `bytes` bytes at buf, to every rank (the NCCL unique id)
static void dist_bcast(void *buf, size_t bytes, int root) {
#ifdef USE_MPI
    if (g_dist.mpi) MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
#endif
    (void)buf; (void)bytes; (void)root;
}

static void dist_barrier(void) {
#ifdef USE_MPI
    if (g_dist.mpi) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

// FNV-1a over the bytes, 64 bits: a checksum for comparing ranks (not for security)
static uint64_t dist_hash(const void *buf, size_t bytes) {
    const uint8_t *p = (const uint8_t *)buf;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < bytes; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
    return h;
}

// Checks that `bytes` bytes at buf are the same on every rank: the checksum's minimum and maximum
// over the ranks must agree. Returns 0, or -1 (on every rank) with a message naming `what`.
// LLMC_DIST_FAULT=what in the environment changes rank 1's checksum: the tests' proof that a
// difference is caught.
static int dist_check_identical(const char *what, const void *buf, size_t bytes, char *err, size_t errlen) {
    if (!g_dist.mpi || g_dist.world == 1) return 0;
    uint64_t h = dist_hash(buf, bytes);
    const char *fault = getenv("LLMC_DIST_FAULT");
    if (fault && strcmp(fault, what) == 0 && g_dist.rank == 1) h ^= 1;
#ifdef USE_MPI
    uint64_t lo = h, hi = h;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi) {
        snprintf(err, errlen, "%s: not the same on every rank (rank %d's checksum %016llx; min %016llx, max %016llx)", what,
                 g_dist.rank, (unsigned long long)h, (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
#endif
    (void)h; (void)err; (void)errlen;
    return 0;
}

#endif // LLMC_DIST_H
