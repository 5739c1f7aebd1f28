/*
cuda/common.cuh — what every CUDA file of the GPU trainer shares: error checks, the two
activation types (float for --precision fp32, __nv_bfloat16 for bf16), conversions, 16-byte
vectors and warp reductions.
*/
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CUDA_CHECK(call)                                                                               \
    do {                                                                                               \
        cudaError_t e_ = (call);                                                                       \
        if (e_ != cudaSuccess) {                                                                       \
            fprintf(stderr, "error: CUDA: %s (%s:%d: %s)\n", cudaGetErrorString(e_), __FILE__, __LINE__, #call); \
            exit(1);                                                                                   \
        }                                                                                              \
    } while (0)
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
