/*
dev/bench/gpu_kernels.cu — the GPU trainer's hand-written kernels, one by one, at GPT-2 124M's
training shape (B=16, T=1024, 12 heads of 64, vocab 50257 padded to 50304, bf16): each variant is
checked against the reference kernel and timed with CUDA events (median of 20 after 3 warm-ups).

    make -f cuda/cuda.mk gpu_kernels_bench && ./gpu_kernels_bench      (on the GPU machine)

  attention: the tensor-core kernels of cuda/attention.cuh for every (chunk, blocks per SM) variant
             compiled in below, against the one-warp-per-row reference kernels (also at an awkward
             T = 1000, B = 2 for the masks and the tails). TFLOP/s count the causal FLOPs only:
             forward 4 B NH T^2 hs / 2, backward 2.5x that.
  cross-entropy: the bf16 kernel against the generic one (losses and dlogits).
  GELU: the fc product + GELU kernel against the product with GELU in cuBLASLt's epilogue.
The variant the trainer uses is set by ATT_* in cuda/attention.cuh.
*/
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/attention.cuh"
#include "cuda/gemm.cuh"

template <typename F> static float time_ms(F f, int reps = 20) { // (no <functional>: -I. would find ./compare)
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) f();
    std::vector<float> t;
    for (int i = 0; i < reps; i++) {
        CUDA_CHECK(cudaEventRecord(a));
        f();
        CUDA_CHECK(cudaEventRecord(b));
        CUDA_CHECK(cudaEventSynchronize(b));
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return t[t.size() / 2];
}

static std::vector<float> fetch(const bf16 *d, size_t n) {
    std::vector<bf16> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), d, n * 2, cudaMemcpyDeviceToHost));
    std::vector<float> f(n);
    for (size_t i = 0; i < n; i++) f[i] = __bfloat162float(h[i]);
    return f;
}
static std::vector<float> fetchf(const float *d, size_t n) {
    std::vector<float> f(n);
    CUDA_CHECK(cudaMemcpy(f.data(), d, n * 4, cudaMemcpyDeviceToHost));
    return f;
}
static double rel_l2(const std::vector<float> &a, const std::vector<float> &b, size_t off = 0, size_t len = 0,
                     size_t period = 0) {
    // all of a, b, or (when period > 0) the elements i with off <= i % period < off + len
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); i++) {
        if (period && ((i % period) < off || (i % period) >= off + len)) continue;
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return std::sqrt(num / (den > 0 ? den : 1));
}
static bf16 *upload_rand(size_t n, float sd, std::mt19937 &rng) {
    std::normal_distribution<float> nd(0.0f, sd);
    std::vector<bf16> h(n);
    for (auto &v : h) v = __float2bfloat16(nd(rng));
    bf16 *d;
    CUDA_CHECK(cudaMalloc(&d, n * 2));
    CUDA_CHECK(cudaMemcpy(d, h.data(), n * 2, cudaMemcpyHostToDevice));
    return d;
}

struct Var { const char *name; void *k; int threads; };
#define FWD(KC, MB) {"fwd KC=" #KC " minB=" #MB, (void *)attention_forward_fast_kernel<KC, MB>, 128}
#define DKV(QC, MB) {"dkv QC=" #QC " minB=" #MB, (void *)attention_backward_dkv_fast_kernel<QC, MB>, 128}
#define DQ(KC, MB) {"dq  KC=" #KC " minB=" #MB, (void *)attention_backward_dq_fast_kernel<KC, MB>, 128}

static int g_fail = 0;

static void bench_attention(int B, int T, int NH, bool timing, std::mt19937 &rng) {
    int C = NH * 64;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, nl = (size_t)B * NH * T;
    bf16 *qkv = upload_rand(nqkv, 1.0f, rng), *dout = upload_rand(nout, 1.0f, rng), *o_ref, *o, *dq_ref, *dq;
    float *l_ref, *l, *D;
    CUDA_CHECK(cudaMalloc(&o_ref, nout * 2)); CUDA_CHECK(cudaMalloc(&o, nout * 2));
    CUDA_CHECK(cudaMalloc(&dq_ref, nqkv * 2)); CUDA_CHECK(cudaMalloc(&dq, nqkv * 2));
    CUDA_CHECK(cudaMalloc(&l_ref, nl * 4)); CUDA_CHECK(cudaMalloc(&l, nl * 4)); CUDA_CHECK(cudaMalloc(&D, nl * 4));
    // reference: the simple kernels
    attention_forward<bf16>(o_ref, l_ref, qkv, B, T, C, NH, true, 0);
    attention_backward<bf16>(dq_ref, D, dout, qkv, o_ref, l_ref, B, T, C, NH, true, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> Oref = fetch(o_ref, nout), Lref = fetchf(l_ref, nl), Gref = fetch(dq_ref, nqkv), Dref = fetchf(D, nl);
    bool ok_d = true;
    double fl = 4.0 * B * NH * (double)T * T * 64 / 2;
    dim3 grid((T + 63) / 64, B * NH);
    printf("\n-- attention B=%d T=%d NH=%d hs=64 (rel. L2 error vs the reference kernel%s)\n", B, T, NH,
           timing ? "; ms, causal TFLOP/s" : "");
    Var fwd[] = {FWD(64, 1), FWD(64, 4), FWD(32, 1), FWD(32, 4)};
    for (Var &v : fwd) {
        CUDA_CHECK(cudaMemset(o, 0xff, nout * 2));
        long ldo = C;
        auto run = [&] { void *args[] = {&o, &l, &qkv, &T, &NH, &ldo};
                         CUDA_CHECK(cudaLaunchKernel(v.k, grid, dim3(v.threads), args, 0, 0)); };
        run();
        CUDA_CHECK(cudaDeviceSynchronize());
        double eo = rel_l2(fetch(o, nout), Oref), el = rel_l2(fetchf(l, nl), Lref);
        bool ok = eo < 2e-2 && el < 1e-3;
        g_fail += !ok;
        printf("  %-18s out %.2e lse %.2e %s", v.name, eo, el, ok ? "ok" : "FAIL");
        if (timing) { float ms = time_ms(run); printf("  %7.3f ms %6.1f TFLOP/s", ms, fl / ms * 1e-9); }
        printf("\n");
    }
    // the backward variants: D from the reference, each kernel timed alone; outputs checked per part
    std::vector<Var> dkv = {DKV(64, 1), DKV(32, 3), DKV(16, 3)};
    std::vector<Var> dqv = {DQ(64, 1), DQ(32, 3), DQ(16, 4)};
    float dkv_best = 1e30f, dq_best = 1e30f;
    for (int part = 0; part < 2; part++)
        for (Var &v : (part == 0 ? dkv : dqv)) {
            CUDA_CHECK(cudaMemset(dq, 0xff, nqkv * 2));
            long ldo = C;
            auto run = [&] { void *args[] = {&dq, &qkv, &dout, &l_ref, &D, &T, &NH, &o_ref, &ldo}; // dq: computes D too
                             CUDA_CHECK(cudaLaunchKernel(v.k, grid, dim3(v.threads), args, 0, 0)); };
            run();
            CUDA_CHECK(cudaDeviceSynchronize());
            std::vector<float> G = fetch(dq, nqkv);
            if (part == 1) { // the D it computed, against the reference's
                double e = rel_l2(fetchf(D, nl), Dref);
                ok_d = ok_d && e < 1e-5;
                printf("  [D %.1e]", e);
            }
            printf("  %-18s", v.name);
            bool ok = true;
            const char *pn[3] = {"dq", "dk", "dv"};
            for (int k = (part == 0 ? 1 : 0); k < (part == 0 ? 3 : 1); k++) {
                double e = rel_l2(G, Gref, (size_t)k * C, C, (size_t)3 * C);
                ok = ok && e < 2e-2;
                printf(" %s %.2e", pn[k], e);
            }
            ok = ok && ok_d;
            g_fail += !ok;
            printf(" %s", ok ? "ok" : "FAIL");
            if (timing) {
                float ms = time_ms(run);
                float share = part == 0 ? 4.0f / 7 : 3.0f / 7; // of the backward's 7 tile products
                printf("  %7.3f ms %6.1f TFLOP/s", ms, 2.5 * fl * share / ms * 1e-9);
                float &best = part == 0 ? dkv_best : dq_best;
                best = std::min(best, ms);
            }
            printf("\n");
        }
    if (timing) {
        float all = time_ms([&] { attention_backward<bf16>(dq, D, dout, qkv, o_ref, l_ref, B, T, C, NH, false, 0); });
        printf("  best dK,dV %.3f ms + best dQ (with D) %.3f ms; the trainer's attention_backward: %.3f ms, %.1f TFLOP/s\n",
               dkv_best, dq_best, all, 2.5 * fl / all * 1e-9);
    }
    cudaFree(qkv); cudaFree(dout); cudaFree(o_ref); cudaFree(o); cudaFree(dq_ref); cudaFree(dq);
    cudaFree(l_ref); cudaFree(l); cudaFree(D);
}

static void bench_crossentropy(std::mt19937 &rng) {
    int N = 16384, V = 50257, Vp = 50304;
    size_t n = (size_t)N * Vp;
    bf16 *x0 = upload_rand(n, 2.0f, rng), *x;
    CUDA_CHECK(cudaMalloc(&x, n * 2));
    std::vector<int> tg(N);
    std::vector<float> w(N, 1.0f / N);
    for (int i = 0; i < N; i++) tg[i] = (int)(rng() % V);
    w[7] = 0.0f; // a masked-out row
    int *tg_d;
    float *w_d, *loss_a, *loss_b;
    CUDA_CHECK(cudaMalloc(&tg_d, N * 4)); CUDA_CHECK(cudaMalloc(&w_d, N * 4));
    CUDA_CHECK(cudaMalloc(&loss_a, N * 4)); CUDA_CHECK(cudaMalloc(&loss_b, N * 4));
    CUDA_CHECK(cudaMemcpy(tg_d, tg.data(), N * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(w_d, w.data(), N * 4, cudaMemcpyHostToDevice));
    auto gen = [&](float *loss) { CUDA_CHECK(cudaMemcpy(x, x0, n * 2, cudaMemcpyDeviceToDevice));
                                  crossentropy_kernel<<<N, 512>>>(x, loss, tg_d, w_d, V, Vp); };
    auto fast = [&](float *loss) { CUDA_CHECK(cudaMemcpy(x, x0, n * 2, cudaMemcpyDeviceToDevice));
                                   crossentropy_bf16_kernel<<<N, 512>>>(x, loss, tg_d, w_d, V, Vp); };
    gen(loss_a);
    std::vector<float> ga = fetch(x, n);
    fast(loss_b);
    std::vector<float> gb = fetch(x, n);
    double el = rel_l2(fetchf(loss_b, N), fetchf(loss_a, N)), eg = rel_l2(gb, ga);
    bool pad_zero = true;
    for (int r = 0; r < N; r += 97)
        for (int j = V; j < Vp; j++) pad_zero = pad_zero && gb[(size_t)r * Vp + j] == 0.0f;
    for (int j = 0; j < Vp; j++) pad_zero = pad_zero && gb[(size_t)7 * Vp + j] == 0.0f;
    bool ok = el < 1e-5 && eg < 1e-2 && pad_zero;
    g_fail += !ok;
    float copy = time_ms([&] { CUDA_CHECK(cudaMemcpy(x, x0, n * 2, cudaMemcpyDeviceToDevice)); });
    float ta = time_ms([&] { gen(loss_a); }) - copy, tb = time_ms([&] { fast(loss_b); }) - copy;
    printf("\n-- cross-entropy + dlogits N=%d V=%d (bf16): bf16 kernel vs generic: loss rel err %.2e, dlogits %.2e, "
           "padding/masked rows zero: %s %s\n   generic %.3f ms, bf16 kernel %.3f ms (%.2fx); %.2f TB/s read+write\n",
           N, V, el, eg, pad_zero ? "yes" : "NO", ok ? "ok" : "FAIL", ta, tb, ta / tb, 2.0 * n * 2 / tb * 1e-9);
    cudaFree(x0); cudaFree(x); cudaFree(tg_d); cudaFree(w_d); cudaFree(loss_a); cudaFree(loss_b);
}

static void bench_gelu_epilogue(std::mt19937 &rng) {
    int N = 16384, C = 768, O = 3072;
    bf16 *x = upload_rand((size_t)N * C, 1.0f, rng), *W = upload_rand((size_t)O * C, 0.04f, rng), *b = upload_rand(O, 0.1f, rng);
    bf16 *pre, *g1, *pre2, *g2;
    CUDA_CHECK(cudaMalloc(&pre, (size_t)N * O * 2)); CUDA_CHECK(cudaMalloc(&g1, (size_t)N * O * 2));
    CUDA_CHECK(cudaMalloc(&pre2, (size_t)N * O * 2)); CUDA_CHECK(cudaMalloc(&g2, (size_t)N * O * 2));
    GemmContext gc;
    DeviceMemory dm;
    gemm_context_init(&gc, 0, 32u << 20, &dm);
    auto sep = [&] { gemm<bf16, bf16>(&gc, 'N', 'T', N, O, C, 1.0f, x, C, W, C, 0.0f, pre, O, b);
                     gelu_forward(g1, pre, (long)N, O, O, 0); };
    auto epi = [&] { gemm<bf16, bf16>(&gc, 'N', 'T', N, O, C, 1.0f, x, C, W, C, 0.0f, g2, O, b, pre2, O); };
    sep();
    epi();
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> a = fetch(g1, (size_t)N * O), c = fetch(g2, (size_t)N * O);
    std::vector<float> pa = fetch(pre, (size_t)N * O), pc = fetch(pre2, (size_t)N * O);
    double e = rel_l2(c, a), ep = rel_l2(pc, pa), maxd = 0;
    for (size_t i = 0; i < a.size(); i++) maxd = std::max(maxd, (double)std::fabs(a[i] - c[i]));
    bool ok = e < 1e-2 && ep < 1e-2;
    g_fail += !ok;
    float ts = time_ms(sep), te = time_ms(epi);
    printf("\n-- fc product (%dx%dx%d) + GELU: epilogue vs kernel: gelu rel err %.2e (max abs %.2e), pre-activation %.2e %s\n"
           "   product + kernel %.3f ms, GELU in the epilogue %.3f ms (%.2fx)\n",
           N, O, C, e, maxd, ep, ok ? "ok" : "FAIL", ts, te, ts / te);
    // the backward: dinp = gelu'(pre) * (dout W^T...) as fc_proj's input gradient: dout (N,C) W (C,O)
    bf16 *dout = upload_rand((size_t)N * C, 1.0f, rng), *W2 = upload_rand((size_t)C * O, 0.04f, rng);
    auto bsep = [&] { gemm<bf16, bf16>(&gc, 'N', 'N', N, O, C, 1.0f, dout, C, W2, O, 0.0f, g1, O);
                      gelu_backward(g1, pre, g1, (long)N, O, O, 0); };
    auto bepi = [&] { gemm<bf16, bf16>(&gc, 'N', 'N', N, O, C, 1.0f, dout, C, W2, O, 0.0f, g2, O, nullptr, pre, O, true); };
    bsep();
    bepi();
    CUDA_CHECK(cudaDeviceSynchronize());
    double eb = rel_l2(fetch(g2, (size_t)N * O), fetch(g1, (size_t)N * O));
    bool okb = eb < 1e-2;
    g_fail += !okb;
    float tbs = time_ms(bsep), tbe = time_ms(bepi);
    printf("   backward (fc_proj's input gradient + GELU backward): epilogue vs kernel rel err %.2e %s; product + kernel "
           "%.3f ms, DGELU epilogue %.3f ms (%.2fx)\n", eb, okb ? "ok" : "FAIL", tbs, tbe, tbs / tbe);
    cudaFree(dout); cudaFree(W2);
    gemm_context_free(&gc);
    cudaFree(x); cudaFree(W); cudaFree(b); cudaFree(pre); cudaFree(g1); cudaFree(pre2); cudaFree(g2);
}

// the input-gradient products with and without the adapter's r = 16 extra output columns (dout [W | B]
// gives [dinp | du] in one product): is the wider product cheaper than a separate du = dout B?
static void bench_wide_dinp(std::mt19937 &rng) {
    int N = 16384, r = 16;
    GemmContext gc;
    DeviceMemory dm;
    gemm_context_init(&gc, 0, 32u << 20, &dm);
    printf("\n-- input-gradient products dinp = dout W (N=%d), autotuned: width in vs in + %d, and du = dout B alone\n", N, r);
    int shapes[3][2] = {{2304, 768}, {3072, 768}, {768, 3072}}; // (out, in): qkv, fc, fc_proj
    for (auto &sh : shapes) {
        int O = sh[0], I = sh[1], ld = I + r;
        bf16 *dout = upload_rand((size_t)N * O, 1.0f, rng), *wb = upload_rand((size_t)O * ld, 0.02f, rng), *dinp, *du;
        CUDA_CHECK(cudaMalloc(&dinp, (size_t)N * ld * 2));
        CUDA_CHECK(cudaMalloc(&du, (size_t)N * r * 2));
        float t0 = time_ms([&] { gemm<bf16, bf16>(&gc, 'N', 'N', N, I, O, 1.0f, dout, O, wb, ld, 0.0f, dinp, ld); });
        float t1 = time_ms([&] { gemm<bf16, bf16>(&gc, 'N', 'N', N, I + r, O, 1.0f, dout, O, wb, ld, 0.0f, dinp, ld); });
        float t2 = time_ms([&] { gemm<bf16, bf16>(&gc, 'N', 'N', N, r, O, 1.0f, dout, O, wb + I, ld, 0.0f, du, r); });
        printf("   out %4d in %4d: dinp %.3f ms, [dinp | du] %.3f ms, du alone %.3f ms -> %s\n", O, I, t0, t1, t2,
               t1 < t0 + t2 ? "one wide product wins" : "separate wins");
        cudaFree(dout); cudaFree(wb); cudaFree(dinp); cudaFree(du);
    }
    gemm_context_free(&gc);
}

int main() {
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    printf("%s, %d SMs\n", p.name, p.multiProcessorCount);
    std::mt19937 rng(1234);
    bench_attention(2, 1000, 3, false, rng);
    bench_attention(16, 1024, 12, true, rng);
    bench_crossentropy(rng);
    bench_gelu_epilogue(rng);
    bench_wide_dinp(rng);
    printf("\n%s\n", g_fail ? "SOME CHECKS FAILED" : "all checks passed");
    return g_fail != 0;
}
