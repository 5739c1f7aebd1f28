/*
cuda/attention.cuh — causal multi-head self-attention on the GPU, flash-style: the (T,T) score
matrix is never stored; the forward keeps one log-sum-exp per row and the backward recomputes the
probabilities from it (kernels/layers.h's attention_forward/backward is the math).

    qkv is (B,T,3C) holding [q;k;v], head h of each uses channels h*hs..h*hs+hs-1 (as on the CPU)
    out is (B,T,C) with row stride ldo (default C); lse is (B,NH,T): lse[i] = log sum_{j<=i} exp(q_i.k_j / sqrt(hs))
    backward: dout (B,T,C) -> dqkv (B,T,3C) (overwritten); D (B,NH,T) scratch = rowsum(dout * out)

Two versions of each pass, tested against each other (test_gpt2.cu):
  *_simple  any head size <= 256, float or bf16: one warp per row, online softmax. The reference.
  *_fast    bf16 and hs = 64: tensor cores (mma.sync m16n8k16, bf16 in, fp32 accumulate), FlashAttention-2
            style. A block of 4 warps owns 64 query rows (forward, dQ) or 64 keys (dK, dV); each warp
            16 of them, with its accumulators in registers; key/query tiles of 64 stream through shared
            memory. The backward is split in two kernels (dQ per query tile, which also computes
            D = rowsum(dO * O) for its rows; then dK,dV per key tile) so that nothing needs atomics: it
            recomputes S and dP once more, 7 tile products instead of 5.
Fragment layouts are the PTX ISA's for mma.m16n8k16 (g = lane/4, t = lane%4):
  A (16x16, row): a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
  B (16x8, col):  b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
  C (16x8):       c0,c1 = C[g][2t], C[g][2t+1];  c2,c3 = C[g+8][2t], C[g+8][2t+1]
so the C fragments of two adjacent 8-column blocks of S are exactly the A fragment of P for the
next product (no shuffles). B fragments come from row-major tiles through ldmatrix (.trans where
the tile holds the product's k as rows), rows padded to 72 elements: conflict-free. Tiles are
copied with cp.async into two buffers, the next tile's copy overlapping this tile's products.
*/
#pragma once
#include "common.cuh"

#define ATT_MAX_HS 256
#define LOG2E_F 1.4426950408889634f
#define LN2_F 0.6931471805599453f

// ----------------------------------------------------------------------------
// the reference kernels: one warp per (b, h, row); lanes split the head dimension

template <typename T>
__global__ void attention_forward_simple_kernel(T *out, float *lse, const T *qkv, int B, int T_, int NH, int hs, long ldo) {
    int warps = blockDim.x / 32, lane = threadIdx.x % 32;
    long r = (long)blockIdx.x * warps + threadIdx.x / 32;
    if (r >= (long)B * NH * T_) return;
    int i = (int)(r % T_), h = (int)((r / T_) % NH), b = (int)(r / ((long)T_ * NH));
    int C = NH * hs, C3 = 3 * C;
    const T *q = qkv + ((long)b * T_ + i) * C3 + h * hs;
    float qr[ATT_MAX_HS / 32], o[ATT_MAX_HS / 32];
#pragma unroll
    for (int k = 0; k < ATT_MAX_HS / 32; k++) {
        int d = lane + 32 * k;
        qr[k] = d < hs ? to_f(q[d]) : 0.0f;
        o[k] = 0.0f;
    }
    float scale = 1.0f / sqrtf((float)hs), m = -INFINITY, l = 0.0f;
    for (int j = 0; j <= i; j++) {
        const T *kp = qkv + ((long)b * T_ + j) * C3 + C + h * hs, *vp = kp + C;
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < ATT_MAX_HS / 32; k++) {
            int d = lane + 32 * k;
            if (d < hs) s += qr[k] * to_f(kp[d]);
        }
        s = warp_sum(s) * scale;
        float mn = fmaxf(m, s), a = expf(m - mn), e = expf(s - mn);
        l = l * a + e;
#pragma unroll
        for (int k = 0; k < ATT_MAX_HS / 32; k++) {
            int d = lane + 32 * k;
            if (d < hs) o[k] = o[k] * a + e * to_f(vp[d]);
        }
        m = mn;
    }
    T *op = out + ((long)b * T_ + i) * ldo + h * hs;
#pragma unroll
    for (int k = 0; k < ATT_MAX_HS / 32; k++) {
        int d = lane + 32 * k;
        if (d < hs) op[d] = from_f<T>(o[k] / l);
    }
    if (lane == 0) lse[((long)b * NH + h) * T_ + i] = m + logf(l);
}

// D (B,NH,T) = rowsum(dout * out) per head
template <typename T>
__global__ void attention_rowdot_kernel(float *D, const T *dout, const T *out, int B, int T_, int NH, int hs, long ldo) {
    int warps = blockDim.x / 32, lane = threadIdx.x % 32;
    long r = (long)blockIdx.x * warps + threadIdx.x / 32;
    if (r >= (long)B * NH * T_) return;
    int i = (int)(r % T_), h = (int)((r / T_) % NH), b = (int)(r / ((long)T_ * NH));
    long off = ((long)b * T_ + i) * NH * hs + h * hs, oo = ((long)b * T_ + i) * ldo + h * hs;
    float s = 0.0f;
    for (int d = lane; d < hs; d += 32) s += to_f(dout[off + d]) * to_f(out[oo + d]);
    s = warp_sum(s);
    if (lane == 0) D[r] = s;
}

// dq_i = scale sum_{j<=i} p_ij (dO_i.v_j - D_i) k_j, with p_ij = exp(scale q_i.k_j - lse_i)
template <typename T>
__global__ void attention_backward_dq_simple_kernel(T *dqkv, const T *qkv, const T *dout, const float *lse, const float *D,
                                                    int B, int T_, int NH, int hs) {
    int warps = blockDim.x / 32, lane = threadIdx.x % 32;
    long r = (long)blockIdx.x * warps + threadIdx.x / 32;
    if (r >= (long)B * NH * T_) return;
    int i = (int)(r % T_), h = (int)((r / T_) % NH), b = (int)(r / ((long)T_ * NH));
    int C = NH * hs, C3 = 3 * C;
    const T *q = qkv + ((long)b * T_ + i) * C3 + h * hs, *dO = dout + ((long)b * T_ + i) * C + h * hs;
    float qr[ATT_MAX_HS / 32], dor[ATT_MAX_HS / 32], dq[ATT_MAX_HS / 32];
#pragma unroll
    for (int k = 0; k < ATT_MAX_HS / 32; k++) {
        int d = lane + 32 * k;
        qr[k] = d < hs ? to_f(q[d]) : 0.0f;
        dor[k] = d < hs ? to_f(dO[d]) : 0.0f;
        dq[k] = 0.0f;
    }
    float scale = 1.0f / sqrtf((float)hs), li = lse[r], Di = D[r];
    for (int j = 0; j <= i; j++) {
        const T *kp = qkv + ((long)b * T_ + j) * C3 + C + h * hs, *vp = kp + C;
        float s = 0.0f, dp = 0.0f;
#pragma unroll
        for (int k = 0; k < ATT_MAX_HS / 32; k++) {
            int d = lane + 32 * k;
            if (d < hs) { s += qr[k] * to_f(kp[d]); dp += dor[k] * to_f(vp[d]); }
        }
        s = warp_sum(s);
        dp = warp_sum(dp);
        float p = expf(s * scale - li), ds = p * (dp - Di);
#pragma unroll
        for (int k = 0; k < ATT_MAX_HS / 32; k++) {
            int d = lane + 32 * k;
            if (d < hs) dq[k] += ds * to_f(kp[d]);
        }
    }
    T *o = dqkv + ((long)b * T_ + i) * C3 + h * hs;
#pragma unroll
    for (int k = 0; k < ATT_MAX_HS / 32; k++) {
        int d = lane + 32 * k;
        if (d < hs) o[d] = from_f<T>(dq[k] * scale);
    }
}

// dv_j = sum_{i>=j} p_ij dO_i;  dk_j = scale sum_{i>=j} p_ij (dO_i.v_j - D_i) q_i
template <typename T>
__global__ void attention_backward_dkv_simple_kernel(T *dqkv, const T *qkv, const T *dout, const float *lse, const float *D,
                                                     int B, int T_, int NH, int hs) {
    int warps = blockDim.x / 32, lane = threadIdx.x % 32;
    long r = (long)blockIdx.x * warps + threadIdx.x / 32;
    if (r >= (long)B * NH * T_) return;
    int j = (int)(r % T_), h = (int)((r / T_) % NH), b = (int)(r / ((long)T_ * NH));
    int C = NH * hs, C3 = 3 * C;
    const T *kp = qkv + ((long)b * T_ + j) * C3 + C + h * hs, *vp = kp + C;
    float kr[ATT_MAX_HS / 32], vr[ATT_MAX_HS / 32], dk[ATT_MAX_HS / 32], dv[ATT_MAX_HS / 32];
#pragma unroll
    for (int k = 0; k < ATT_MAX_HS / 32; k++) {
        int d = lane + 32 * k;
        kr[k] = d < hs ? to_f(kp[d]) : 0.0f;
        vr[k] = d < hs ? to_f(vp[d]) : 0.0f;
        dk[k] = dv[k] = 0.0f;
    }
    float scale = 1.0f / sqrtf((float)hs);
    const float *lrow = lse + ((long)b * NH + h) * T_, *Drow = D + ((long)b * NH + h) * T_;
    for (int i = j; i < T_; i++) {
        const T *q = qkv + ((long)b * T_ + i) * C3 + h * hs, *dO = dout + ((long)b * T_ + i) * C + h * hs;
        float s = 0.0f, dp = 0.0f;
#pragma unroll
        for (int k = 0; k < ATT_MAX_HS / 32; k++) {
            int d = lane + 32 * k;
            if (d < hs) { s += to_f(q[d]) * kr[k]; dp += to_f(dO[d]) * vr[k]; }
        }
        s = warp_sum(s);
        dp = warp_sum(dp);
        float p = expf(s * scale - lrow[i]), ds = p * (dp - Drow[i]);
#pragma unroll
        for (int k = 0; k < ATT_MAX_HS / 32; k++) {
            int d = lane + 32 * k;
            if (d < hs) { dv[k] += p * to_f(dO[d]); dk[k] += ds * to_f(q[d]); }
        }
    }
    T *ok = dqkv + ((long)b * T_ + j) * C3 + C + h * hs, *ov = ok + C;
#pragma unroll
    for (int k = 0; k < ATT_MAX_HS / 32; k++) {
        int d = lane + 32 * k;
        if (d < hs) { ok[d] = from_f<T>(dk[k] * scale); ov[d] = from_f<T>(dv[k]); }
    }
}

// ----------------------------------------------------------------------------
// the fast kernels (bf16, hs = 64)

#define FA_PAD 72 // shared-memory row length in bf16: 144 bytes, so 8 rows of 16 bytes hit 32 distinct banks

__device__ inline void mma_16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// four 8x8 bf16 matrices from shared memory; lanes 8i..8i+7 give the row addresses of matrix i, and
// lane (g,t) receives row g, columns 2t..2t+1 of each (.trans: column g, rows 2t..2t+1)
__device__ inline void ldsm_x4(uint32_t r[4], const bf16 *p) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ inline void ldsm_x4_t(uint32_t r[4], const bf16 *p) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ inline uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi); // .x (low half) = lo
    return *reinterpret_cast<uint32_t *>(&v);
}
__device__ inline uint32_t ldg32(const bf16 *p) { return *reinterpret_cast<const uint32_t *>(p); }

// Starts copying a 64x64 tile (rows 0..nvalid-1 of src, row stride ld; missing rows as 0) into
// dst[row][col] with cp.async (16 bytes per thread and copy); completes at cp.async.wait_group.
__device__ inline void fa_load_tile_async(bf16 (*dst)[FA_PAD], const bf16 *src, long ld, int nvalid) {
    for (int c = threadIdx.x; c < 512; c += blockDim.x) {
        int r = c >> 3, k = (c & 7) * 8;
        const bf16 *g = src + (long)(r < nvalid ? r : 0) * ld + k;
        uint32_t s = (uint32_t)__cvta_generic_to_shared(&dst[r][k]);
        int bytes = r < nvalid ? 16 : 0; // 0: zero-fill
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(g), "r"(bytes));
    }
}
// the key and value tiles of keys k0..k0+63 of one head (base: the head's q columns of its sequence in qkv)
__device__ inline void fa_load_kv_async(bf16 (*Kt)[FA_PAD], bf16 (*Vt)[FA_PAD], const bf16 *base, int C, int k0, int T_) {
    fa_load_tile_async(Kt, base + (long)k0 * 3 * C + C, 3 * C, min(64, T_ - k0));
    fa_load_tile_async(Vt, base + (long)k0 * 3 * C + 2 * C, 3 * C, min(64, T_ - k0));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ inline void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// A fragments (16 rows x 64 cols as 4 k-steps) of rows r0+g, r0+g+8 of a global matrix (missing rows 0)
__device__ inline void fa_load_afrag(uint32_t a[4][4], const bf16 *src, long ld, int r0, int nrows, int g, int t) {
    int ra = r0 + g, rb = r0 + g + 8;
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        int c0 = kk * 16 + 2 * t;
        a[kk][0] = ra < nrows ? ldg32(src + ra * ld + c0) : 0u;
        a[kk][1] = rb < nrows ? ldg32(src + rb * ld + c0) : 0u;
        a[kk][2] = ra < nrows ? ldg32(src + ra * ld + c0 + 8) : 0u;
        a[kk][3] = rb < nrows ? ldg32(src + rb * ld + c0 + 8) : 0u;
    }
}
// acc[nb] (16 x 8 block nb of a 16 x 8NB product) += A (16x64, 4 k-steps) * B with B[k][n] = tile[n0 + n][k]
// (the tile holds the product's n as rows: K in Q K^T); NB even
template <int NB>
__device__ inline void fa_mma_rows(float (*acc)[4], const uint32_t a[4][4], const bf16 (*tile)[FA_PAD], int n0, int lane) {
    int row = ((lane >> 4) << 3) + (lane & 7), col = ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int nb = 0; nb < NB; nb += 2)
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            uint32_t b[4];
            ldsm_x4(b, &tile[n0 + nb * 8 + row][kk * 16 + col]);
            mma_16816(acc[nb], a[kk], b[0], b[1]);
            mma_16816(acc[nb + 1], a[kk], b[2], b[3]);
        }
}
// acc[nb] (16x64) += P (16 x 16KS, held as C fragments p[2KS][4]) * B with B[k][n] = tile[k0 + k][n] (the
// tile holds the product's k as rows: V in P V), read transposed by ldmatrix
template <int KS>
__device__ inline void fa_mma_pc(float acc[8][4], const float (*p)[4], const bf16 (*tile)[FA_PAD], int k0, int lane) {
    int row = ((lane >> 3) & 1) * 8 + (lane & 7), col = (lane >> 4) * 8;
#pragma unroll
    for (int j = 0; j < KS; j++) {
        uint32_t a[4] = {pack_bf16(p[2 * j][0], p[2 * j][1]), pack_bf16(p[2 * j][2], p[2 * j][3]),
                         pack_bf16(p[2 * j + 1][0], p[2 * j + 1][1]), pack_bf16(p[2 * j + 1][2], p[2 * j + 1][3])};
#pragma unroll
        for (int nb = 0; nb < 8; nb += 2) {
            uint32_t b[4];
            ldsm_x4_t(b, &tile[k0 + j * 16 + row][nb * 8 + col]);
            mma_16816(acc[nb], a, b[0], b[1]);
            mma_16816(acc[nb + 1], a, b[2], b[3]);
        }
    }
}
template <int NB> __device__ inline void fa_zero(float (*x)[4]) {
#pragma unroll
    for (int i = 0; i < NB; i++)
#pragma unroll
        for (int k = 0; k < 4; k++) x[i][k] = 0.0f;
}
// rows r0+g, r0+g+8 (< nrows) of dst (row stride ld) = acc * mult, as bf16 pairs
__device__ inline void fa_store_rows(bf16 *dst, long ld, const float acc[8][4], float multA, float multB, int r0, int nrows, int g, int t) {
    int ra = r0 + g, rb = r0 + g + 8;
#pragma unroll
    for (int nb = 0; nb < 8; nb++) {
        int c = nb * 8 + 2 * t;
        if (ra < nrows) *reinterpret_cast<uint32_t *>(dst + ra * ld + c) = pack_bf16(acc[nb][0] * multA, acc[nb][1] * multA);
        if (rb < nrows) *reinterpret_cast<uint32_t *>(dst + rb * ld + c) = pack_bf16(acc[nb][2] * multB, acc[nb][3] * multB);
    }
}
// 4 bytes global -> shared with cp.async (completes with the tiles at cp.async.wait_group)
__device__ inline void cp_async4(void *dst, const void *src) {
    uint32_t s = (uint32_t)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(src));
}

// Every kernel streams 64-row tiles through two shared-memory buffers: the copy of tile i+1 (cp.async)
// runs while tile i is computed on. Each tile is worked on in chunks of KC (or QC) of its 64 rows
// (fewer registers for the score fragments, so more warps per multiprocessor); MINB is the number of
// blocks per multiprocessor the register allocation must allow (__launch_bounds__).

// grid (ceil(T/64), B*NH), 128 threads; the longest query tiles start first
template <int KC, int MINB>
__global__ void __launch_bounds__(128, MINB) attention_forward_fast_kernel(bf16 *out, float *lse, const bf16 *qkv, int T_, int NH,
                                                                          long ldo) {
    __shared__ __align__(16) bf16 Ks[2][64][FA_PAD], Vs[2][64][FA_PAD];
    const int C = NH * 64, C3 = 3 * C;
    int nqt = (T_ + 63) / 64, qt = nqt - 1 - blockIdx.x, bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
    const bf16 *base = qkv + (long)b * T_ * C3 + h * 64;
    int q0 = qt * 64 + warp * 16, qA = q0 + g, qB = q0 + g + 8;
    fa_load_kv_async(Ks[0], Vs[0], base, C, 0, T_);
    cp_async_commit();
    uint32_t qa[4][4];
    fa_load_afrag(qa, base, C3, q0, T_, g, t);
    float o[8][4], s[KC / 8][4];
    fa_zero<8>(o);
    float mA = -INFINITY, mB = -INFINITY, lA = 0.0f, lB = 0.0f;
    const float sl2 = LOG2E_F / 8.0f; // log2(e) / sqrt(64)
    for (int kt = 0; kt <= qt; kt++) {
        int k0 = kt * 64, cur = kt & 1;
        if (kt < qt) fa_load_kv_async(Ks[cur ^ 1], Vs[cur ^ 1], base, C, k0 + 64, T_);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        bool edge = kt == qt || k0 + 64 > T_; // only the diagonal and the last tile need the causal/length mask
#pragma unroll
        for (int c0 = 0; c0 < 64; c0 += KC) {
            fa_zero<KC / 8>(s);
            fa_mma_rows<KC / 8>(s, qa, Ks[cur], c0, lane);
            float mxA = mA, mxB = mB;
#pragma unroll
            for (int nb = 0; nb < KC / 8; nb++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float a = s[nb][e] * sl2, bb = s[nb][2 + e] * sl2;
                    if (edge) {
                        int key = k0 + c0 + nb * 8 + 2 * t + e;
                        if (key > qA || key >= T_) a = -INFINITY;
                        if (key > qB || key >= T_) bb = -INFINITY;
                    }
                    s[nb][e] = a;
                    s[nb][2 + e] = bb;
                    mxA = fmaxf(mxA, a);
                    mxB = fmaxf(mxB, bb);
                }
            mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 1));
            mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 2));
            mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 1));
            mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 2));
            float uA = mxA == -INFINITY ? 0.0f : mxA, uB = mxB == -INFINITY ? 0.0f : mxB;
            float alA = exp2f(mA - uA), alB = exp2f(mB - uB), sumA = 0.0f, sumB = 0.0f;
#pragma unroll
            for (int nb = 0; nb < KC / 8; nb++) {
                s[nb][0] = exp2f(s[nb][0] - uA); s[nb][1] = exp2f(s[nb][1] - uA);
                s[nb][2] = exp2f(s[nb][2] - uB); s[nb][3] = exp2f(s[nb][3] - uB);
                sumA += s[nb][0] + s[nb][1];
                sumB += s[nb][2] + s[nb][3];
            }
#pragma unroll
            for (int nb = 0; nb < 8; nb++) { o[nb][0] *= alA; o[nb][1] *= alA; o[nb][2] *= alB; o[nb][3] *= alB; }
            lA = lA * alA + sumA;
            lB = lB * alB + sumB;
            mA = mxA;
            mB = mxB;
            fa_mma_pc<KC / 16>(o, s, Vs[cur], c0, lane);
        }
        __syncthreads(); // the buffer is refilled next iteration
    }
    lA += __shfl_xor_sync(0xffffffffu, lA, 1);
    lA += __shfl_xor_sync(0xffffffffu, lA, 2);
    lB += __shfl_xor_sync(0xffffffffu, lB, 1);
    lB += __shfl_xor_sync(0xffffffffu, lB, 2);
    fa_store_rows(out + (long)b * T_ * ldo + h * 64, ldo, o, 1.0f / lA, 1.0f / lB, q0, T_, g, t);
    if (t == 0) {
        if (qA < T_) lse[(long)bh * T_ + qA] = (mA + log2f(lA)) * LN2_F;
        if (qB < T_) lse[(long)bh * T_ + qB] = (mB + log2f(lB)) * LN2_F;
    }
}

// dK, dV of 64 keys per block; grid (ceil(T/64), B*NH), 128 threads. The log-sum-exp and D of each
// query tile travel with it (cp.async); rows past T are clamped to the last one (masked anyway).
template <int QC, int MINB>
__global__ void __launch_bounds__(128, MINB) attention_backward_dkv_fast_kernel(bf16 *dqkv, const bf16 *qkv, const bf16 *dout,
                                                                                const float *lse, const float *D, int T_, int NH) {
    __shared__ __align__(16) bf16 Qs[2][64][FA_PAD], dOs[2][64][FA_PAD];
    __shared__ float ls[2][64], Ds[2][64];
    const int C = NH * 64, C3 = 3 * C;
    int nqt = (T_ + 63) / 64, kt = blockIdx.x, bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
    const bf16 *base = qkv + (long)b * T_ * C3 + h * 64, *dbase = dout + (long)b * T_ * C + h * 64;
    int k0w = kt * 64 + warp * 16, kA = k0w + g, kB = k0w + g + 8;
    auto stage = [&](int qt, int buf) {
        int q0 = qt * 64, nvalid = min(64, T_ - q0);
        fa_load_tile_async(Qs[buf], base + (long)q0 * C3, C3, nvalid);
        fa_load_tile_async(dOs[buf], dbase + (long)q0 * C, C, nvalid);
        int i = threadIdx.x & 63, row = q0 + min(i, nvalid - 1);
        if (threadIdx.x < 64) cp_async4(&ls[buf][i], lse + (long)bh * T_ + row);
        else cp_async4(&Ds[buf][i], D + (long)bh * T_ + row);
    };
    stage(kt, 0);
    cp_async_commit();
    uint32_t ka[4][4], va[4][4];
    fa_load_afrag(ka, base + C, C3, k0w, T_, g, t);
    fa_load_afrag(va, base + 2 * C, C3, k0w, T_, g, t);
    float dk[8][4], dv[8][4], st[QC / 8][4], dp[QC / 8][4];
    fa_zero<8>(dk);
    fa_zero<8>(dv);
    const float sl2 = LOG2E_F / 8.0f, scale = 0.125f;
    for (int qt = kt; qt < nqt; qt++) {
        int q0 = qt * 64, cur = (qt - kt) & 1;
        if (qt + 1 < nqt) stage(qt + 1, cur ^ 1);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        bool edge = qt == kt || q0 + 64 > T_; // only the diagonal and the last tile need the mask
#pragma unroll
        for (int c0 = 0; c0 < 64; c0 += QC) {
            fa_zero<QC / 8>(st);
            fa_mma_rows<QC / 8>(st, ka, Qs[cur], c0, lane); // S^T (16 keys x QC queries)
#pragma unroll
            for (int nb = 0; nb < QC / 8; nb++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int col = c0 + nb * 8 + 2 * t + e, q = q0 + col;
                    float l2 = ls[cur][col] * LOG2E_F;
                    float pa = exp2f(st[nb][e] * sl2 - l2), pb = exp2f(st[nb][2 + e] * sl2 - l2);
                    if (edge) {
                        if (!(q >= kA && q < T_)) pa = 0.0f;
                        if (!(q >= kB && q < T_)) pb = 0.0f;
                    }
                    st[nb][e] = pa;
                    st[nb][2 + e] = pb;
                }
            fa_mma_pc<QC / 16>(dv, st, dOs[cur], c0, lane); // dV += P^T dO
            fa_zero<QC / 8>(dp);
            fa_mma_rows<QC / 8>(dp, va, dOs[cur], c0, lane); // dP^T = V dO^T
#pragma unroll
            for (int nb = 0; nb < QC / 8; nb++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float Dq = Ds[cur][c0 + nb * 8 + 2 * t + e];
                    st[nb][e] = st[nb][e] * (dp[nb][e] - Dq) * scale;
                    st[nb][2 + e] = st[nb][2 + e] * (dp[nb][2 + e] - Dq) * scale;
                }
            fa_mma_pc<QC / 16>(dk, st, Qs[cur], c0, lane); // dK += dS^T Q
        }
        __syncthreads();
    }
    bf16 *ob = dqkv + (long)b * T_ * C3 + h * 64;
    fa_store_rows(ob + C, C3, dk, 1.0f, 1.0f, k0w, T_, g, t);
    fa_store_rows(ob + 2 * C, C3, dv, 1.0f, 1.0f, k0w, T_, g, t);
}

// dQ of 64 queries per block; grid (ceil(T/64), B*NH), 128 threads; the longest tiles first
// It also computes D = rowsum(dO * O) of its rows (from the same dO fragments) and stores it for the
// dK, dV kernel, which runs after it: out == NULL reads D instead.
template <int KC, int MINB>
__global__ void __launch_bounds__(128, MINB) attention_backward_dq_fast_kernel(bf16 *dqkv, const bf16 *qkv, const bf16 *dout,
                                                                               const float *lse, float *D, int T_, int NH,
                                                                               const bf16 *out, long ldo) {
    __shared__ __align__(16) bf16 Ks[2][64][FA_PAD], Vs[2][64][FA_PAD];
    const int C = NH * 64, C3 = 3 * C;
    int nqt = (T_ + 63) / 64, qt = nqt - 1 - blockIdx.x, bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
    const bf16 *base = qkv + (long)b * T_ * C3 + h * 64, *dbase = dout + (long)b * T_ * C + h * 64;
    int q0 = qt * 64 + warp * 16, qA = q0 + g, qB = q0 + g + 8;
    fa_load_kv_async(Ks[0], Vs[0], base, C, 0, T_);
    cp_async_commit();
    uint32_t qa[4][4], da[4][4];
    fa_load_afrag(qa, base, C3, q0, T_, g, t);
    fa_load_afrag(da, dbase, C, q0, T_, g, t);
    float lA = qA < T_ ? lse[(long)bh * T_ + qA] * LOG2E_F : INFINITY, lB = qB < T_ ? lse[(long)bh * T_ + qB] * LOG2E_F : INFINITY;
    float DA, DB;
    if (out) { // D of rows qA, qB: this lane's 16 products of each, summed over the 4 lanes of the row
        uint32_t oa[4][4];
        fa_load_afrag(oa, out + (long)b * T_ * ldo + h * 64, ldo, q0, T_, g, t);
        DA = DB = 0.0f;
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&da[kk][i]));
                float2 y = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&oa[kk][i]));
                float d = x.x * y.x + x.y * y.y;
                if (i & 1) DB += d; else DA += d;
            }
        DA += __shfl_xor_sync(0xffffffffu, DA, 1);
        DA += __shfl_xor_sync(0xffffffffu, DA, 2);
        DB += __shfl_xor_sync(0xffffffffu, DB, 1);
        DB += __shfl_xor_sync(0xffffffffu, DB, 2);
        if (t == 0) {
            if (qA < T_) D[(long)bh * T_ + qA] = DA;
            if (qB < T_) D[(long)bh * T_ + qB] = DB;
        }
    } else {
        DA = qA < T_ ? D[(long)bh * T_ + qA] : 0.0f;
        DB = qB < T_ ? D[(long)bh * T_ + qB] : 0.0f;
    }
    float dq[8][4], s[KC / 8][4], dp[KC / 8][4];
    fa_zero<8>(dq);
    const float sl2 = LOG2E_F / 8.0f, scale = 0.125f;
    for (int kt = 0; kt <= qt; kt++) {
        int k0 = kt * 64, cur = kt & 1;
        if (kt < qt) fa_load_kv_async(Ks[cur ^ 1], Vs[cur ^ 1], base, C, k0 + 64, T_);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        bool edge = kt == qt || k0 + 64 > T_; // only the diagonal and the last tile need the mask
#pragma unroll
        for (int c0 = 0; c0 < 64; c0 += KC) {
            fa_zero<KC / 8>(s);
            fa_mma_rows<KC / 8>(s, qa, Ks[cur], c0, lane); // S
            fa_zero<KC / 8>(dp);
            fa_mma_rows<KC / 8>(dp, da, Vs[cur], c0, lane); // dP = dO V^T
#pragma unroll
            for (int nb = 0; nb < KC / 8; nb++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float pa = exp2f(s[nb][e] * sl2 - lA), pb = exp2f(s[nb][2 + e] * sl2 - lB);
                    if (edge) {
                        int key = k0 + c0 + nb * 8 + 2 * t + e;
                        if (!(key <= qA && key < T_)) pa = 0.0f;
                        if (!(key <= qB && key < T_)) pb = 0.0f;
                    }
                    s[nb][e] = pa * (dp[nb][e] - DA) * scale;
                    s[nb][2 + e] = pb * (dp[nb][2 + e] - DB) * scale;
                }
            fa_mma_pc<KC / 16>(dq, s, Ks[cur], c0, lane); // dQ += dS K
        }
        __syncthreads();
    }
    fa_store_rows(dqkv + (long)b * T_ * C3 + h * 64, C3, dq, 1.0f, 1.0f, q0, T_, g, t);
}

// the chunk sizes and blocks per multiprocessor the trainer uses (dev/bench/gpu_kernels.cu times the
// others; on an H200 at B=16 T=1024: dK,dV 0.274 -> 0.247 ms, dQ 0.219 -> 0.190 ms per layer, forward
// 0.166 -> 0.162 ms). Tried and dropped: two 16-row blocks per warp in the forward and dQ kernels (each
// K/V fragment serving two products): fewer warps per multiprocessor, slower (0.180-0.197 ms forward,
// 0.239 ms dQ).
#ifndef ATT_FWD_KC
#define ATT_FWD_KC 64
#endif
#ifndef ATT_FWD_MINB
#define ATT_FWD_MINB 4
#endif
#ifndef ATT_DKV_QC
#define ATT_DKV_QC 32
#endif
#ifndef ATT_DKV_MINB
#define ATT_DKV_MINB 3
#endif
#ifndef ATT_DQ_KC
#define ATT_DQ_KC 16
#endif
#ifndef ATT_DQ_MINB
#define ATT_DQ_MINB 4
#endif

// ----------------------------------------------------------------------------
// dispatch: the fast kernels for bf16 with hs = 64 unless `simple`; the reference otherwise

template <typename T> inline bool attention_fast_ok(int hs, bool simple) { (void)hs; (void)simple; return false; }
template <> inline bool attention_fast_ok<bf16>(int hs, bool simple) { return hs == 64 && !simple; }

template <typename T>
void attention_forward(T *out, float *lse, const T *qkv, int B, int T_, int C, int NH, bool simple, cudaStream_t st,
                       long ldo = 0) {
    if (ldo == 0) ldo = C;
    int hs = C / NH;
    if (attention_fast_ok<T>(hs, simple)) {
        dim3 grid((T_ + 63) / 64, B * NH);
        attention_forward_fast_kernel<ATT_FWD_KC, ATT_FWD_MINB><<<grid, 128, 0, st>>>((bf16 *)out, lse, (const bf16 *)qkv, T_, NH, ldo);
    } else {
        long rows = (long)B * NH * T_;
        attention_forward_simple_kernel<<<ceil_div(rows, 4), 128, 0, st>>>(out, lse, qkv, B, T_, NH, hs, ldo);
    }
    CUDA_LAUNCH_CHECK();
}

template <typename T>
void attention_backward(T *dqkv, float *D, const T *dout, const T *qkv, const T *out, const float *lse, int B, int T_, int C,
                        int NH, bool simple, cudaStream_t st, long ldo = 0) {
    if (ldo == 0) ldo = C;
    int hs = C / NH;
    long rows = (long)B * NH * T_;
    if (attention_fast_ok<T>(hs, simple)) { // dQ (and D) first, then dK, dV
        dim3 grid((T_ + 63) / 64, B * NH);
        attention_backward_dq_fast_kernel<ATT_DQ_KC, ATT_DQ_MINB>
            <<<grid, 128, 0, st>>>((bf16 *)dqkv, (const bf16 *)qkv, (const bf16 *)dout, lse, D, T_, NH, (const bf16 *)out, ldo);
        CUDA_LAUNCH_CHECK();
        attention_backward_dkv_fast_kernel<ATT_DKV_QC, ATT_DKV_MINB>
            <<<grid, 128, 0, st>>>((bf16 *)dqkv, (const bf16 *)qkv, (const bf16 *)dout, lse, D, T_, NH);
    } else {
        attention_rowdot_kernel<<<ceil_div(rows, 8), 256, 0, st>>>(D, dout, out, B, T_, NH, hs, ldo);
        CUDA_LAUNCH_CHECK();
        attention_backward_dkv_simple_kernel<<<ceil_div(rows, 4), 128, 0, st>>>(dqkv, qkv, dout, lse, D, B, T_, NH, hs);
        CUDA_LAUNCH_CHECK();
        attention_backward_dq_simple_kernel<<<ceil_div(rows, 4), 128, 0, st>>>(dqkv, qkv, dout, lse, D, B, T_, NH, hs);
    }
    CUDA_LAUNCH_CHECK();
}
