/*
cuda/common.cuh — what every CUDA file of the GPU trainer shares: error checks, the two
activation types (float for --precision fp32, __nv_bfloat16 for bf16), conversions, 16-byte
vectors, warp reductions and the counted device allocator.

Errors: what a caller can get wrong (a configuration the kernels do not support, a token outside
the vocab, a model that does not fit in GPU memory) is returned to the caller. A failing CUDA or
cuBLAS call is not: after an illegal address or a launch failure the CUDA context is unusable, so
CUDA_CHECK prints the call, file and line and ends the process, as llm.c's cudaCheck does.
*/
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <utility>
#include <vector>

// an expression (usable inside others): the failing call, file and line, then the end of the process
inline void cuda_check(cudaError_t e, const char *file, int line, const char *call) {
    if (e != cudaSuccess) {
        fprintf(stderr, "error: CUDA: %s (%s:%d: %s)\n", cudaGetErrorString(e), file, line, call);
        exit(1);
    }
}
#define CUDA_CHECK(call) cuda_check((call), __FILE__, __LINE__, #call)
// after every kernel launch: a bad launch configuration is reported where it happened
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

typedef __nv_bfloat16 bf16;

__host__ __device__ inline int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

// conversions between the storage types and float (the arithmetic type of every kernel)
__device__ inline float to_f(float x) { return x; }
__device__ inline float to_f(bf16 x) { return __bfloat162float(x); }
template <typename T> __device__ inline T from_f(float x);
template <> __device__ inline float from_f<float>(float x) { return x; }
template <> __device__ inline bf16 from_f<bf16>(float x) { return __float2bfloat16_rn(x); }

// 16 bytes of T: 4 floats or 8 bf16. Loads and stores of whole rows go through this.
template <typename T> struct alignas(16) Vec {
    static constexpr int n = 16 / sizeof(T);
    T v[n];
};
template <typename T> __device__ inline Vec<T> load_vec(const T *p) { return *reinterpret_cast<const Vec<T> *>(p); }
template <typename T> __device__ inline void store_vec(T *p, const Vec<T> &x) { *reinterpret_cast<Vec<T> *>(p) = x; }

__device__ inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// the project's splitmix64 (data/dataloader.h), as a counter: the k-th draw (k >= 1) after a
// state s is mix(s + k·G). That is what lets the GPU reproduce the CPU trainer's dropout masks.
__host__ __device__ inline uint64_t splitmix64_at(uint64_t state, uint64_t k) {
    uint64_t z = state + k * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Every device buffer of a model, counted: `now` and `peak` bytes are what the trainer reports as its
// GPU memory (parameters, optimizer, activations, scratch, cuBLASLt and cuDNN workspaces; not the
// CUDA context). dev_alloc returns NULL (and remembers the failure) when the GPU is out of memory;
// buffers are zeroed.
struct DeviceMemory {
    size_t now = 0, peak = 0;
    std::vector<std::pair<void *, size_t>> blocks;
    char err[256] = "";
    void count(long bytes) {
        now += bytes;
        if (now > peak) peak = now;
    }
};
template <typename X> X *dev_alloc(DeviceMemory &dm, size_t n) {
    X *p = nullptr;
    size_t bytes = (n ? n : 1) * sizeof(X);
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); // (an allocation failure is not sticky)
        if (!dm.err[0])
            snprintf(dm.err, sizeof(dm.err), "out of GPU memory allocating %zu bytes (%s); %zu bytes already held", bytes,
                     cudaGetErrorString(e), dm.now);
        return nullptr;
    }
    CUDA_CHECK(cudaMemset(p, 0, bytes));
    dm.blocks.push_back({(void *)p, bytes});
    dm.count((long)bytes);
    return p;
}
template <typename X> void dev_free(DeviceMemory &dm, X *&p) {
    if (!p) return;
    for (size_t i = 0; i < dm.blocks.size(); i++)
        if (dm.blocks[i].first == (void *)p) {
            dm.now -= dm.blocks[i].second;
            dm.blocks.erase(dm.blocks.begin() + i);
            break;
        }
    CUDA_CHECK(cudaFree(p));
    p = nullptr;
}
inline void dev_free_all(DeviceMemory &dm) {
    for (auto &b : dm.blocks) cudaFree(b.first);
    dm.blocks.clear();
    dm.now = 0;
}
