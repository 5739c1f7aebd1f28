/*
cuda/profile.cuh — GPU_PROFILE=1: where the GPU's time per step goes, by category. Every operation
of a step is preceded by mark(category), a CUDA event; once per step flush() adds the time between
consecutive events to their categories (steps after the first; host waits included), and the
report is printed when the model is freed. A profiled model runs its steps eagerly, not as CUDA
graphs, so the events sit between the kernels (the events themselves add ~0.4 ms to a 124M step);
the report adds what its training pass takes as a graph, timed at creation.
*/
#pragma once
#include <time.h>
#include <vector>
#include "common.cuh"

enum ProfCategory { PC_HOST, PC_EMBED, PC_MATMUL, PC_WGRAD, PC_LORA, PC_ATT_FWD, PC_ATT_BWD, PC_LN, PC_GELU, PC_CE, PC_OPT, PC_NCAT };
static const char *prof_names[PC_NCAT] = {"batch upload, loss download, host waits", "embedding", "matmul: forward, input grads, LM head",
                                          "matmul: weight and bias grads", "adapter products", "attention forward",
                                          "attention backward", "layernorm (+residual)", "gelu", "cross-entropy",
                                          "optimizer, grad norm, zeroing"};

static double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

struct Profiler {
    bool on = false;
    cudaStream_t st = 0;
    std::vector<cudaEvent_t> pool;
    std::vector<int> cat;
    size_t nev = 0;
    double ms[PC_NCAT] = {}, host_ms = 0;
    double graph_ms = 0; // the training pass (forward, backward, gradient norm) replayed as a CUDA graph
    int steps = 0;
};

static void prof_init(Profiler &p, cudaStream_t st) {
    const char *e = getenv("GPU_PROFILE");
    p.on = e && *e && *e != '0';
    p.st = st;
}
static void prof_mark(Profiler &p, int category) {
    if (!p.on) return;
    if (p.nev == p.pool.size()) {
        cudaEvent_t e;
        CUDA_CHECK(cudaEventCreate(&e));
        p.pool.push_back(e);
        p.cat.push_back(0);
    }
    CUDA_CHECK(cudaEventRecord(p.pool[p.nev], p.st));
    p.cat[p.nev++] = category;
}
// once per step: the intervals between consecutive marks, by category
static void prof_flush(Profiler &p) {
    if (!p.on || p.nev == 0) return;
    prof_mark(p, -1);
    CUDA_CHECK(cudaEventSynchronize(p.pool[p.nev - 1]));
    if (p.steps++ > 0)
        for (size_t i = 0; i + 1 < p.nev; i++) {
            float t = 0;
            CUDA_CHECK(cudaEventElapsedTime(&t, p.pool[i], p.pool[i + 1]));
            if (p.cat[i] >= 0) p.ms[p.cat[i]] += t;
        }
    p.nev = 0;
}
static void prof_report_and_free(Profiler &p) {
    if (p.on && p.steps >= 2) {
        double tot = 0;
        for (int i = 0; i < PC_NCAT; i++) tot += p.ms[i];
        int n = p.steps - 1;
        printf("GPU profile (GPU_PROFILE): %.2f ms per step over %d steps; host enqueue of forward+backward %.2f ms\n", tot / n, n,
               p.host_ms / n);
        for (int i = 0; i < PC_NCAT; i++) printf("  %-42s %8.3f ms  %5.1f%%\n", prof_names[i], p.ms[i] / n, 100.0 * p.ms[i] / tot);
        if (p.graph_ms > 0) printf("  (the training pass as one CUDA graph, as unprofiled runs execute it: %.3f ms)\n", p.graph_ms);
    }
    for (cudaEvent_t e : p.pool) cudaEventDestroy(e);
    p.pool.clear();
}
