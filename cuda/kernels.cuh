/*
cuda/kernels.cuh — the GPU trainer's element-wise and reduction kernels, each the CUDA version of a
layer of kernels/layers.h (same math, same argument order; shapes in the comments). T is the
activation type (float or bf16); every kernel computes in float. Rows of C values are read as
16-byte vectors, so C (and Vp) must be multiples of 8: gpu_create checks it.
Unlike layers.h, most backward kernels here OVERWRITE their input gradient (the buffers are
scratch, reused layer after layer); where they accumulate, the comment says so.
*/
#pragma once
#include <algorithm>
#include <type_traits>
#include "common.cuh"

#define LOG2E_CE 1.4426950408889634f
#define LN2_CE 0.6931471805599453f

// ----------------------------------------------------------------------------
// token + position embedding
// out is (B,T,C); inp is (B,T) token ids; wte is (Vp,C); wpe is (maxT,C)
template <typename T>
__global__ void encoder_forward_kernel(T *out, const int *inp, const T *wte, const T *wpe, int N, int T_, int C) {
    constexpr int V = Vec<T>::n;
    long i = ((long)blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (i >= (long)N * C) return;
    int n = (int)(i / C), c = (int)(i % C), t = n % T_;
    Vec<T> a = load_vec(wte + (long)inp[n] * C + c), b = load_vec(wpe + (long)t * C + c), o;
    for (int k = 0; k < V; k++) o.v[k] = from_f<T>(to_f(a.v[k]) + to_f(b.v[k]));
    store_vec(out + i, o);
}
template <typename T> void encoder_forward(T *out, const int *inp, const T *wte, const T *wpe, int B, int T_, int C, cudaStream_t st) {
    long n = (long)B * T_ * C / Vec<T>::n;
    encoder_forward_kernel<<<ceil_div(n, 256), 256, 0, st>>>(out, inp, wte, wpe, B * T_, T_, C);
    CUDA_LAUNCH_CHECK();
}

// dwte (Vp,C), dwpe (maxT,C) fp32 ACCUMULATE dout (B,T,C) at the rows the tokens used
template <typename T>
__global__ void encoder_backward_kernel(float *dwte, float *dwpe, const T *dout, const int *inp, int N, int T_, int C) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)N * C) return;
    int n = (int)(i / C), c = (int)(i % C), t = n % T_;
    float d = to_f(dout[i]);
    atomicAdd(dwte + (long)inp[n] * C + c, d);
    atomicAdd(dwpe + (long)t * C + c, d);
}
template <typename T> void encoder_backward(float *dwte, float *dwpe, const T *dout, const int *inp, int B, int T_, int C, cudaStream_t st) {
    long n = (long)B * T_ * C;
    encoder_backward_kernel<<<ceil_div(n, 256), 256, 0, st>>>(dwte, dwpe, dout, inp, B * T_, T_, C);
    CUDA_LAUNCH_CHECK();
}

// ----------------------------------------------------------------------------
// LayerNorm (eps 1e-5), one warp per row, optionally fused with the residual add before it:
//   res_out = a + b (when b != NULL), x = res_out; else x = a
//   out = (x - mean) * rstd * weight + bias;   mean, rstd (N,) saved for the backward
// a, b, res_out, out are (N,C); weight, bias are (C,). In bf16 the statistics are taken over the
// stored (rounded) residual, the tensor the backward will see.
// The layernorm kernels keep a row's 16-byte chunks in registers, CH per lane (a compile-time count):
// LAUNCH(CH) with the smallest compiled CH >= ch (up to 16: C <= ln_max_channels<T>()).
template <typename T> constexpr int ln_max_channels() { return 16 * 32 * Vec<T>::n; }
#define LN_CHUNKS_DISPATCH(ch, LAUNCH, name, C)                                                        \
    do {                                                                                               \
        int ch_ = (ch);                                                                                \
        if (ch_ <= 1) LAUNCH(1);                                                                       \
        else if (ch_ <= 2) LAUNCH(2);                                                                  \
        else if (ch_ <= 3) LAUNCH(3);                                                                  \
        else if (ch_ <= 4) LAUNCH(4);                                                                  \
        else if (ch_ <= 6) LAUNCH(6);                                                                  \
        else if (ch_ <= 8) LAUNCH(8);                                                                  \
        else if (ch_ <= 16) LAUNCH(16);                                                                \
        else fprintf(stderr, "error: internal: %s: C = %d is too wide\n", name, (int)(C)); /* gpu_create refuses it */ \
    } while (0)

// One warp per row; lane l holds the 16-byte chunks l, l+32, ... of the row (CH of them) in registers:
// every input is read once, all of a lane's loads in flight together.
template <typename T, int CH>
__global__ void layernorm_forward_kernel(T *out, float *mean, float *rstd, T *res_out, const T *a, const T *b,
                                         const T *weight, const T *bias, int N, int C, long ldo) {
    constexpr int V = Vec<T>::n;
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const T *ar = a + (long)row * C;
    Vec<T> xv[CH];
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < CH; k++) {
        int c = (lane + 32 * k) * V;
        if (c < C) xv[k] = load_vec(ar + c);
    }
    if (b) {
        const T *br = b + (long)row * C;
        T *rr = res_out + (long)row * C;
#pragma unroll
        for (int k = 0; k < CH; k++) {
            int c = (lane + 32 * k) * V;
            if (c >= C) break;
            Vec<T> y = load_vec(br + c);
#pragma unroll
            for (int j = 0; j < V; j++) xv[k].v[j] = from_f<T>(to_f(xv[k].v[j]) + to_f(y.v[j]));
            store_vec(rr + c, xv[k]);
        }
    }
#pragma unroll
    for (int k = 0; k < CH; k++) {
        int c = (lane + 32 * k) * V;
        if (c >= C) break;
#pragma unroll
        for (int j = 0; j < V; j++) sum += to_f(xv[k].v[j]);
    }
    float m = warp_sum(sum) / C;
    float var = 0.0f;
#pragma unroll
    for (int k = 0; k < CH; k++) {
        int c = (lane + 32 * k) * V;
        if (c >= C) break;
#pragma unroll
        for (int j = 0; j < V; j++) { float d = to_f(xv[k].v[j]) - m; var += d * d; }
    }
    var = warp_sum(var) / C;
    float s = 1.0f / sqrtf(var + 1e-5f);
    T *o = out + (long)row * ldo;
#pragma unroll
    for (int k = 0; k < CH; k++) {
        int c = (lane + 32 * k) * V;
        if (c >= C) break;
        Vec<T> w = load_vec(weight + c), bb = load_vec(bias + c), y;
#pragma unroll
        for (int j = 0; j < V; j++) y.v[j] = from_f<T>((s * (to_f(xv[k].v[j]) - m)) * to_f(w.v[j]) + to_f(bb.v[j]));
        store_vec(o + c, y);
    }
    if (lane == 0) { mean[row] = m; rstd[row] = s; }
}
template <typename T>
void layernorm_forward(T *out, float *mean, float *rstd, T *res_out, const T *a, const T *b, const T *weight,
                       const T *bias, int N, int C, cudaStream_t st, long ldo = 0) {
#define LN_FWD(CH) layernorm_forward_kernel<T, CH><<<ceil_div(N, 8), 256, 0, st>>>(out, mean, rstd, res_out, a, b, weight, bias, N, C, ldo ? ldo : C)
    LN_CHUNKS_DISPATCH(ceil_div(C, 32 * Vec<T>::n), LN_FWD, "layernorm_forward", C);
#undef LN_FWD
    CUDA_LAUNCH_CHECK();
}

// dinp (N,C) = (accumulate ? dinp : 0) + rstd (dn - mean(dn) - xhat mean(dn xhat)), dn = weight * dout;
// dweight (C) += sum_n xhat dout, dbias (C) += sum_n dout (fp32, NULL when frozen); dout has row stride ldd,
// dinp ldi.
// One warp per row; lane l holds the 16-byte chunks l, l+32, ... of the row (CH of them, CH*32*8 >= C
// for bf16) in registers, so the row is read once. Weight gradients are summed per lane over the
// warp's rows, then per block in shared memory, then added to the global ones.
template <typename T, int CH>
__global__ void layernorm_backward_kernel(T *dinp, float *dweight, float *dbias, const T *dout, const T *inp,
                                          const T *weight, const float *mean, const float *rstd, int N, int C,
                                          int accumulate, long ldd, long ldi) {
    constexpr int V = Vec<T>::n;
    extern __shared__ float sh[]; // (2C): dweight, dbias partial sums of this block
    bool wants_w = dweight != nullptr;
    if (wants_w) {
        for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) sh[c] = 0.0f;
        __syncthreads();
    }
    int warps = blockDim.x / 32, lane = threadIdx.x % 32;
    float aw[CH][V], ab[CH][V];
#pragma unroll
    for (int k = 0; k < CH; k++)
#pragma unroll
        for (int j = 0; j < V; j++) aw[k][j] = ab[k][j] = 0.0f;
    for (int row = blockIdx.x * warps + threadIdx.x / 32; row < N; row += gridDim.x * warps) {
        const T *d = dout + (long)row * ldd, *x = inp + (long)row * C;
        float m = mean[row], s = rstd[row];
        Vec<T> dv[CH], xv[CH];
        float dm = 0.0f, dmx = 0.0f;
#pragma unroll
        for (int k = 0; k < CH; k++) {
            int c = (lane + 32 * k) * V;
            if (c >= C) break;
            dv[k] = load_vec(d + c);
            xv[k] = load_vec(x + c);
            Vec<T> wv = load_vec(weight + c);
#pragma unroll
            for (int j = 0; j < V; j++) {
                float xhat = (to_f(xv[k].v[j]) - m) * s, dd = to_f(dv[k].v[j]), dn = to_f(wv.v[j]) * dd;
                dm += dn;
                dmx += dn * xhat;
                aw[k][j] += xhat * dd;
                ab[k][j] += dd;
            }
        }
        dm = warp_sum(dm) / C;
        dmx = warp_sum(dmx) / C;
        if (!dinp) continue;
        T *di = dinp + (long)row * ldi;
#pragma unroll
        for (int k = 0; k < CH; k++) {
            int c = (lane + 32 * k) * V;
            if (c >= C) break;
            Vec<T> wv = load_vec(weight + c), o;
            if (accumulate) o = load_vec(di + c);
#pragma unroll
            for (int j = 0; j < V; j++) {
                float xhat = (to_f(xv[k].v[j]) - m) * s, dn = to_f(wv.v[j]) * to_f(dv[k].v[j]);
                float g = s * (dn - dm - xhat * dmx);
                o.v[j] = from_f<T>(accumulate ? to_f(o.v[j]) + g : g);
            }
            store_vec(di + c, o);
        }
    }
    if (wants_w) {
#pragma unroll
        for (int k = 0; k < CH; k++) {
            int c = (lane + 32 * k) * V;
            if (c >= C) break;
#pragma unroll
            for (int j = 0; j < V; j++) { atomicAdd(&sh[c + j], aw[k][j]); atomicAdd(&sh[C + c + j], ab[k][j]); }
        }
        __syncthreads();
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            atomicAdd(dweight + c, sh[c]);
            atomicAdd(dbias + c, sh[C + c]);
        }
    }
}
template <typename T>
void layernorm_backward(T *dinp, float *dweight, float *dbias, const T *dout, const T *inp, const T *weight,
                        const float *mean, const float *rstd, int N, int C, int accumulate, int num_sms, cudaStream_t st,
                        long ldd = 0, long ldi = 0) {
    int blocks = ceil_div(N, 8);
    if (dweight && blocks > 2 * num_sms) blocks = 2 * num_sms; // fewer blocks: fewer global atomics
    size_t smem = dweight ? 2 * C * sizeof(float) : 0;
#define LN_BWD(CH) layernorm_backward_kernel<T, CH><<<blocks, 256, smem, st>>>(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, accumulate, ldd ? ldd : C, ldi ? ldi : C)
    LN_CHUNKS_DISPATCH(ceil_div(C, 32 * Vec<T>::n), LN_BWD, "layernorm_backward", C);
#undef LN_BWD
    CUDA_LAUNCH_CHECK();
}

// ----------------------------------------------------------------------------
// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). In bf16 the tanh is the
// hardware's tanh.approx.f32 (relative error about 2^-11, under bf16's 2^-9 rounding); fp32 keeps tanhf.
#define GELU_SCALE_F 0.7978845608028654f
template <typename T> __device__ inline float gelu_tanh(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
    if (sizeof(T) == 2) {
        float y;
        asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
        return y;
    }
#endif
    return tanhf(x);
}
template <typename T> __device__ inline float gelu_f(float v) {
    return 0.5f * v * (1.0f + gelu_tanh<T>(GELU_SCALE_F * (v + 0.044715f * v * v * v)));
}
template <typename T> __device__ inline float gelu_grad_f(float v) { // d gelu(v) / dv
    float th = gelu_tanh<T>(GELU_SCALE_F * (v + 0.044715f * v * v * v));
    return 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * GELU_SCALE_F * (1.0f + 3.0f * 0.044715f * v * v);
}
// forward: out (rows, O; row stride ldo) = gelu(inp (rows, O) contiguous); O % 8 == 0. Grid: x over the
// 16-byte chunks of a row, y over rows (no division by O).
template <typename T> __global__ void gelu_forward_kernel(T *out, const T *inp, long rows, int O, long ldo) {
    constexpr int V = Vec<T>::n;
    int c = (blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (c >= O) return;
    for (long row = blockIdx.y; row < rows; row += gridDim.y) {
        Vec<T> x = load_vec(inp + row * O + c), y;
#pragma unroll
        for (int k = 0; k < V; k++) y.v[k] = from_f<T>(gelu_f<T>(to_f(x.v[k])));
        store_vec(out + row * ldo + c, y);
    }
}
// dinp (rows, O; row stride ld) = gelu'(inp (rows, O)) * dout (row stride ld); dinp may be dout (in place)
template <typename T> __global__ void gelu_backward_kernel(T *dinp, const T *inp, const T *dout, long rows, int O, long ld) {
    constexpr int V = Vec<T>::n;
    int c = (blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (c >= O) return;
    for (long row = blockIdx.y; row < rows; row += gridDim.y) {
        Vec<T> x = load_vec(inp + row * O + c), d = load_vec(dout + row * ld + c), y;
#pragma unroll
        for (int k = 0; k < V; k++) y.v[k] = from_f<T>(gelu_grad_f<T>(to_f(x.v[k])) * to_f(d.v[k]));
        store_vec(dinp + row * ld + c, y);
    }
}
// out (rows, O; row stride ldo) = gelu(inp (rows, O))
template <typename T> void gelu_forward(T *out, const T *inp, long rows, int O, long ldo, cudaStream_t st) {
    dim3 grid(ceil_div(O / Vec<T>::n, 128), (unsigned)std::min(rows, 65535L));
    gelu_forward_kernel<<<grid, 128, 0, st>>>(out, inp, rows, O, ldo);
    CUDA_LAUNCH_CHECK();
}
template <typename T> void gelu_backward(T *dinp, const T *inp, const T *dout, long rows, int O, long ld, cudaStream_t st) {
    dim3 grid(ceil_div(O / Vec<T>::n, 128), (unsigned)std::min(rows, 65535L));
    gelu_backward_kernel<<<grid, 128, 0, st>>>(dinp, inp, dout, rows, O, ld);
    CUDA_LAUNCH_CHECK();
}

// The GELU backward fused with the adapter's input-gradient term of the product after it:
// dinp (N,O) = gelu'(inp) * (dout + us du A), du (N,r; row stride ldu) in T, A (r,O) row-major in fp32 (the
// master copy: no conversions in the inner loop); dinp and dout have row stride ld and may be the same
// (in place); inp is contiguous. One thread: GBR rows of one 16-byte
// chunk of columns, so each row of A read serves GBR rows; grid x over chunks, y over row groups.
#define GBR 4
template <typename T>
__global__ void gelu_backward_lowrank_kernel(T *dinp, const T *inp, const T *dout, const T *du, const float *A, int r, int N,
                                             int O, long ld, long ldu, float us, bool vec_du) {
    constexpr int V = Vec<T>::n;
    int c = (blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (c >= O) return;
    long groups = (N + GBR - 1) / GBR;
    for (long g = blockIdx.y; g < groups; g += gridDim.y) {
        long n0 = g * GBR;
        float acc[GBR][V];
        const T *ur[GBR];
        Vec<T> xs[GBR]; // the GELU inputs, loaded before the loop so their latency hides behind it
#pragma unroll
        for (int h = 0; h < GBR; h++) {
            long n = n0 + h < N ? n0 + h : N - 1; // rows past the end: computed, not stored
            ur[h] = du + n * ldu;
            xs[h] = load_vec(inp + n * O + c);
            Vec<T> d = load_vec(dout + n * ld + c);
#pragma unroll
            for (int j = 0; j < V; j++) acc[h][j] = to_f(d.v[j]);
        }
        for (int k0 = 0; k0 < r; k0 += V) { // V entries of each du row at a time (one 16-byte load when aligned)
            Vec<T> w[GBR]; // (kept in T: half the registers of floats)
#pragma unroll
            for (int h = 0; h < GBR; h++) {
                if (vec_du) w[h] = load_vec(ur[h] + k0);
                else
#pragma unroll
                    for (int j = 0; j < V; j++) w[h].v[j] = k0 + j < r ? ur[h][k0 + j] : from_f<T>(0.0f);
            }
#pragma unroll
            for (int kk = 0; kk < V; kk++) {
                if (k0 + kk >= r) break;
                float a[V];
#pragma unroll
                for (int q = 0; q < V / 4; q++) {
                    float4 f = *reinterpret_cast<const float4 *>(A + (long)(k0 + kk) * O + c + 4 * q);
                    a[4 * q] = f.x; a[4 * q + 1] = f.y; a[4 * q + 2] = f.z; a[4 * q + 3] = f.w;
                }
#pragma unroll
                for (int h = 0; h < GBR; h++)
#pragma unroll
                    for (int j = 0; j < V; j++) acc[h][j] += us * to_f(w[h].v[kk]) * a[j];
            }
        }
#pragma unroll
        for (int h = 0; h < GBR; h++) {
            if (n0 + h >= N) break;
            long off = (n0 + h) * ld + c;
            Vec<T> y;
#pragma unroll
            for (int j = 0; j < V; j++) // the sum rounded to T first, as the unfused path stores dout + du A
                y.v[j] = from_f<T>(gelu_grad_f<T>(to_f(xs[h].v[j])) * to_f(from_f<T>(acc[h][j])));
            store_vec(dinp + off, y);
        }
    }
}
// A must be 16-byte aligned (O % 4 == 0)
template <typename T>
void gelu_backward_lowrank(T *dinp, const T *inp, const T *dout, const T *du, const float *A, int r, int N, int O, long ld,
                           long ldu, float us, cudaStream_t st) {
    long groups = (N + GBR - 1) / GBR;
    dim3 grid(ceil_div(O / Vec<T>::n, 128), (unsigned)std::min(groups, 65535L));
    constexpr int V = Vec<T>::n;
    bool vec_du = r % V == 0 && ldu % V == 0 && (uintptr_t)du % 16 == 0; // whole 16-byte loads of each du row
    gelu_backward_lowrank_kernel<<<grid, 128, 0, st>>>(dinp, inp, dout, du, A, r, N, O, ld, ldu, us, vec_du);
    CUDA_LAUNCH_CHECK();
}

// columns of many small matrices at once: job y copies src (rows, cols) contiguous into dst (row stride ldd)
template <typename T> struct ColCopy {
    T *dst;
    const T *src;
    long ldd;
    int rows, cols;
};
template <typename T> __global__ void copy_cols_kernel(const ColCopy<T> *jobs) {
    ColCopy<T> j = jobs[blockIdx.y];
    long n = (long)j.rows * j.cols;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        j.dst[(i / j.cols) * j.ldd + i % j.cols] = j.src[i];
}

// ----------------------------------------------------------------------------
// softmax + cross-entropy over the real vocabulary V, one block per row, fused with its backward:
// losses (N,) = logsumexp(logits[:V]) - logits[target]. When weights != NULL the logits (N,Vp) are
// overwritten with dlogits = (softmax - onehot(target)) * weights[n] on the first V columns and 0 on
// the padded ones (weights[n] = the loss weight of row n: 1/count, or 0 for a masked-out target).
// (m, s) = a running maximum and the sum of exp(z - m) (E2: of 2^(z - m), z in log2 units), merged
template <bool E2> __device__ inline void ce_combine(float &m, float &s, float m2, float s2) {
    float M = fmaxf(m, m2);
    float a = m == -INFINITY ? 0.0f : s * (E2 ? exp2f(m - M) : expf(m - M));
    float b = m2 == -INFINITY ? 0.0f : s2 * (E2 ? exp2f(m2 - M) : expf(m2 - M));
    s = a + b;
    m = M;
}
// every thread's (m, s) -> the block's, in every thread: across the warp, then across warps
// (red_m, red_s: 32 floats of shared memory each; bc: 2)
template <bool E2> __device__ inline void ce_block_reduce(float &m, float &s, float *red_m, float *red_s, float *bc) {
    for (int o = 16; o > 0; o >>= 1) ce_combine<E2>(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    if (lane == 0) { red_m[warp] = m; red_s[warp] = s; }
    __syncthreads();
    if (warp == 0) {
        m = lane < nw ? red_m[lane] : -INFINITY;
        s = lane < nw ? red_s[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) ce_combine<E2>(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
        if (lane == 0) { bc[0] = m; bc[1] = s; }
    }
    __syncthreads();
    m = bc[0];
    s = bc[1];
}
template <typename T>
__global__ void crossentropy_kernel(T *logits, float *losses, const int *targets, const float *weights, int V, int Vp) {
    constexpr int VN = Vec<T>::n;
    __shared__ float red_m[32], red_s[32], bc[3];
    T *x = logits + (long)blockIdx.x * Vp;
    int tgt = targets[blockIdx.x];
    float m = -INFINITY, s = 0.0f;
    for (int i = threadIdx.x * VN; i < Vp; i += blockDim.x * VN) {
        Vec<T> v = load_vec(x + i);
        for (int k = 0; k < VN; k++) {
            if (i + k >= V) break;
            float z = to_f(v.v[k]);
            if (z > m) { s = s * expf(m - z) + 1.0f; m = z; }
            else s += expf(z - m);
        }
    }
    if (threadIdx.x == 0) bc[2] = to_f(x[tgt]);
    ce_block_reduce<false>(m, s, red_m, red_s, bc);
    if (threadIdx.x == 0) losses[blockIdx.x] = m + logf(s) - bc[2];
    if (!weights) return;
    float w = weights[blockIdx.x], inv = 1.0f / s;
    for (int i = threadIdx.x * VN; i < Vp; i += blockDim.x * VN) {
        Vec<T> v = load_vec(x + i);
        for (int k = 0; k < VN; k++) {
            int j = i + k;
            float g = 0.0f;
            if (j < V && w != 0.0f) g = (expf(to_f(v.v[k]) - m) * inv - (j == tgt ? 1.0f : 0.0f)) * w;
            v.v[k] = from_f<T>(g);
        }
        store_vec(x + i, v);
    }
}

// The same for bf16 logits, cheaper per element: each 8-wide vector updates the running (max, sum)
// once (its own max first, then one rescale), and the exponentials are exp2 of logits pre-scaled by
// log2(e): about 3 instructions per element and pass instead of ~20 (the kernel above is bound by
// instruction issue, not memory, on an H100/H200). Rows must be 16-byte aligned (Vp % 8 == 0).
__global__ void __launch_bounds__(512) crossentropy_bf16_kernel(bf16 *logits, float *losses, const int *targets,
                                                                const float *weights, int V, int Vp) {
    __shared__ float red_m[32], red_s[32], bc[3];
    bf16 *x = logits + (long)blockIdx.x * Vp;
    int tgt = targets[blockIdx.x];
    float m = -INFINITY, s = 0.0f; // in log2 units: z * log2(e)
#pragma unroll 4
    for (int i = threadIdx.x * 8; i < Vp; i += blockDim.x * 8) {
        Vec<bf16> v = load_vec(x + i);
        float z[8], vm = -INFINITY;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            z[k] = i + k < V ? __bfloat162float(v.v[k]) * LOG2E_CE : -INFINITY;
            vm = fmaxf(vm, z[k]);
        }
        if (vm == -INFINITY) continue; // all padding
        if (vm > m) { s *= exp2f(m - vm); m = vm; }
#pragma unroll
        for (int k = 0; k < 8; k++) s += exp2f(z[k] - m);
    }
    if (threadIdx.x == 0) bc[2] = __bfloat162float(x[tgt]);
    ce_block_reduce<true>(m, s, red_m, red_s, bc);
    if (threadIdx.x == 0) losses[blockIdx.x] = (m + log2f(s)) * LN2_CE - bc[2];
    if (!weights) return;
    float w = weights[blockIdx.x], ws = w / s;
#pragma unroll 4
    for (int i = threadIdx.x * 8; i < Vp; i += blockDim.x * 8) {
        Vec<bf16> v = load_vec(x + i);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            int j = i + k;
            float g = 0.0f;
            if (j < V && w != 0.0f) g = exp2f(__bfloat162float(v.v[k]) * LOG2E_CE - m) * ws - (j == tgt ? w : 0.0f);
            v.v[k] = __float2bfloat16_rn(g);
        }
        store_vec(x + i, v);
    }
}

template <typename T>
void crossentropy(T *logits, float *losses, const int *targets, const float *weights, int N, int V, int Vp, cudaStream_t st) {
    if (std::is_same<T, bf16>::value && Vp % 8 == 0)
        crossentropy_bf16_kernel<<<N, 512, 0, st>>>((bf16 *)logits, losses, targets, weights, V, Vp);
    else
        crossentropy_kernel<<<N, 512, 0, st>>>(logits, losses, targets, weights, V, Vp);
    CUDA_LAUNCH_CHECK();
}

// ----------------------------------------------------------------------------
// dbias (OC,) fp32 += sum over the N rows of dout (N,OC)
template <typename T> __global__ void bias_backward_kernel(float *dbias, const T *dout, int N, int OC, int rows_per_block) {
    __shared__ float sh[8][33];
    int col = blockIdx.x * 32 + threadIdx.x;
    int r0 = blockIdx.y * rows_per_block, r1 = min(N, r0 + rows_per_block);
    float acc = 0.0f;
    if (col < OC)
        for (int r = r0 + threadIdx.y; r < r1; r += 8) acc += to_f(dout[(long)r * OC + col]);
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < OC) {
        for (int k = 1; k < 8; k++) acc += sh[k][threadIdx.x];
        atomicAdd(dbias + col, acc);
    }
}
template <typename T> void bias_backward(float *dbias, const T *dout, int N, int OC, cudaStream_t st) {
    int rpb = 256;
    dim3 grid(ceil_div(OC, 32), ceil_div(N, rpb)), block(32, 8);
    bias_backward_kernel<<<grid, block, 0, st>>>(dbias, dout, N, OC, rpb);
    CUDA_LAUNCH_CHECK();
}

// ----------------------------------------------------------------------------
// AdamW over one group of trainable values (train_gpt2.c's adamw_step, the same float formula):
//   j = idx ? idx[i] : i;  g = grad[j] * gscale;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p[j] -= lr (m/bc1 / (sqrt(v/bc2) + eps) + decay p[j]);  px[j] = p[j] rounded (the bf16 copy)
// With idx (LoRI-S) only the kept entries are read or written: masked entries of B never move.
template <typename T>
__global__ void adamw_kernel(float *p, const float *g, float *m, float *v, T *px, const uint32_t *idx, long n, float lr,
                             float b1, float b2, float eps, float bc1, float bc2, float decay, float gscale) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        long j = idx ? (long)idx[i] : i;
        float gi = g[j] * gscale;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        float pj = p[j];
        pj -= lr * (mhat / (sqrtf(vhat) + eps) + decay * pj);
        p[j] = pj;
        if (px) px[j] = from_f<T>(pj);
    }
}

// out += sum of g[idx ? idx[i] : i]^2 (double, as the CPU's adamw_grad_norm)
__global__ void sumsq_kernel(double *out, const float *g, const uint32_t *idx, long n) {
    __shared__ double sh[32];
    double acc = 0.0;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        double x = g[idx ? (long)idx[i] : i];
        acc += x * x;
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0.0;
        for (int k = 0; k < (int)blockDim.x / 32; k++) s += sh[k];
        atomicAdd(out, s);
    }
}

// out (n,) = in converted (float <-> bf16, or a plain copy)
template <typename To, typename Ti> __global__ void cast_kernel(To *out, const Ti *in, long n) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        out[i] = from_f<To>(to_f(in[i]));
}
template <typename To, typename Ti> void cast(To *out, const Ti *in, long n, cudaStream_t st) {
    if (n <= 0) return;
    int blocks = ceil_div(n, 256);
    if (blocks > 8192) blocks = 8192;
    cast_kernel<<<blocks, 256, 0, st>>>(out, in, n);
    CUDA_LAUNCH_CHECK();
}

// ----------------------------------------------------------------------------
// adapter dropout (inverted), reproducing the CPU trainer's draws: element i of a slot's (N,in)
// input uses the (base+i+1)-th splitmix64 draw after `state`; kept with probability keep.
__device__ inline float dropout_mult(uint64_t state, uint64_t k, float keep, float inv) {
    float u = (float)(splitmix64_at(state, k) >> 40) * (1.0f / 16777216.0f);
    return u < keep ? inv : 0.0f;
}
// out = x * mult
template <typename T>
__global__ void dropout_apply_kernel(T *out, const T *x, long n, uint64_t state, uint64_t base, float keep, float inv) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        out[i] = from_f<T>(to_f(x[i]) * dropout_mult(state, base + i + 1, keep, inv));
}
// dinp += tmp * mult
template <typename T>
__global__ void dropout_add_kernel(T *dinp, const T *tmp, long n, uint64_t state, uint64_t base, float keep, float inv) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        dinp[i] = from_f<T>(to_f(dinp[i]) + to_f(tmp[i]) * dropout_mult(state, base + i + 1, keep, inv));
}
