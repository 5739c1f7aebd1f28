/*
test_gpt2.cu — the GPU trainer against its references, on the GPU. The last line is "N passed, N failed".

  1. PyTorch (float64) reference dump, dev/ref/gpt2_tiny_ref.bin (dev/gpt2_reference.py: B=2, T=8, the
     logits, the loss, all 16 gradients, 10 AdamW steps lr 1e-3 wd 0.1 clip 1.0), in fp32 and bf16.
     Errors are relative L2 norms, ||gpu - ref|| / ||ref||, per tensor:
       fp32: logits 1e-5, loss 1e-5 (abs), gradients 1e-4, step losses 1e-4 (abs), parameters after 10
             steps 1e-3 of the update's norm (AdamW divides by sqrt(v): tiny gradients amplify rounding)
       bf16: logits 2e-2, loss 1e-2 (abs), gradients 5e-2, step losses 2e-2 (abs), updates 0.25.
     bf16 keeps 8 mantissa bits (2^-9 = 2e-3 relative per rounding); a value that went through a dozen
     roundings in a row (layer after layer) lands near 1e-2, which is what the bf16 bounds allow;
     the bf16 run also starts from the bf16 checkpoint (gpt2_tiny_bf16.bin), itself rounded.
  2. The tensor-core attention against the reference kernel (bf16, hs=64, T not a multiple of 64):
     output, log-sum-exp and dq, dk, dv within 2e-2.
  3. Every adapter variant against the CPU trainer (train_gpt2.c, run in this process with the same
     flags and seeds on a tiny model with a loss-masked training shard): full fine-tuning (weight
     decay), LoRA, LoRA with dropout (the same dropout draws), LoRI D->S (the same mask), PLoRA with
     plain and momentum unloads. fp32: train losses within 1e-4, val losses within 1e-4, adapters /
     models within 1e-3 relative; bf16 (LoRA, LoRI): train losses within 2e-2. No base weight gradient
     is computed by an adapter run.
  4. LoRI-S: masked entries of B are exactly 0.0f after 30 steps at a large learning rate and weight
     decay (fp32 and bf16); the file writer stores them sparse.
  5. PLoRA unload is function-preserving: logits before and after an unload (momentum 0 and 0.5)
     within 1e-5 (fp32) and 2e-2 (bf16) relative.
  6. GPT-2 124M's shape (d12, B=2, T=1024): bf16 (flash attention) against fp32 (reference kernels):
     loss within 2e-2, gradient norm within 5%, and (the loss is ln V at init whatever attention
     does) the gradients of qkvw, attprojw and ln1w within 5e-2 relative L2.
  7. The step as CUDA graphs against the same step run eagerly (GPU_PROFILE=1 models run eagerly):
     losses and trained values within 1e-5 (fp32) / 1e-2 (bf16) relative, for LoRA and full
     fine-tuning; and a token outside the vocab is refused with an error, not an exit.
In USE_CUDNN=1 builds 2. also checks cuDNN's fused attention against the reference kernels (and
every bf16 model in 3. and 6. runs on it).
*/
#define TESTING
#include "train_gpt2.cu"
#include "cuda/host_api.h"
#include <fcntl.h>
#include <stdarg.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

static int g_pass = 0, g_fail = 0;
static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "  ok  " : "  FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (ok) g_pass++; else g_fail++;
}

static double rel_l2(const float *a, const float *b, size_t n) { // ||a - b|| / ||b||
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double x = (double)a[i] - b[i];
        d += x * x;
        r += (double)b[i] * b[i];
    }
    if (!std::isfinite(d)) return INFINITY;
    return r > 0 ? sqrt(d / r) : sqrt(d);
}
static double max_abs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double x = fabs((double)a[i] - b[i]);
        if (!(x <= m)) m = x; // NaN propagates
    }
    return m;
}

static uint64_t g_rng = 0x1234567ull;
static float frand() { return (float)(splitmix64_at(g_rng++, 1) >> 40) * (1.0f / 16777216.0f); } // [0,1)
static float nrand() {
    float u1 = frand(), u2 = frand();
    if (u1 < 1e-12f) u1 = 1e-12f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

static std::vector<char> read_file(const char *path) {
    std::vector<char> b;
    FILE *f = fopen(path, "rb");
    if (!f) return b;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b.resize(n);
    if (fread(b.data(), 1, n, f) != (size_t)n) b.clear();
    fclose(f);
    return b;
}

// ----------------------------------------------------------------------------
// 1. the PyTorch reference

static const char *pnames[NUM_PARAMS] = {"wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
                                         "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

static void test_reference(int bf16) {
    const char *mode = bf16 ? "bf16" : "fp32";
    printf("== PyTorch reference (dev/ref), %s\n", mode);
    std::vector<char> ref = read_file("dev/ref/gpt2_tiny_ref.bin");
    if (ref.size() < 1024) { check(false, "%s: cannot read dev/ref/gpt2_tiny_ref.bin", mode); return; }
    int cfg6[6];
    float *params = nullptr, *params32 = nullptr;
    size_t np = 0, np32 = 0;
    if (hostapi_load_checkpoint(bf16 ? "dev/ref/gpt2_tiny_bf16.bin" : "dev/ref/gpt2_tiny.bin", cfg6, &params, &np) != 0 ||
        hostapi_load_checkpoint("dev/ref/gpt2_tiny.bin", cfg6, &params32, &np32) != 0) {
        check(false, "%s: cannot load dev/ref/gpt2_tiny*.bin", mode);
        return;
    }
    const int32_t *h = (const int32_t *)ref.data();
    int B = h[2], T = h[3], nsteps = h[4], Vp = cfg6[2];
    size_t BT = (size_t)B * T;
    const char *p = ref.data() + 1024;
    const int *x = (const int *)p; p += 4 * BT;
    const int *y = (const int *)p; p += 4 * BT;
    const float *rlogits = (const float *)p; p += 4 * BT * Vp;
    float rloss = *(const float *)p; p += 4;
    const float *rgrads = (const float *)p; p += 4 * np;
    const float *rsteps = (const float *)p; p += 4 * nsteps;
    const float *rafter = (const float *)p; p += 4 * np;
    check((size_t)(p - ref.data()) == ref.size(), "%s: reference file size %zu as its header implies", mode, ref.size());
    GPUConfig c = {cfg6[0], cfg6[1], cfg6[2], cfg6[3], cfg6[4], cfg6[5]};
    char err[512];
    GPUModel *gm = gpu_create(&c, params, nullptr, B, T, bf16, 0, err, sizeof(err));
    if (!gm) { check(false, "%s: gpu_create: %s", mode, err); return; }
    double tol_logit = bf16 ? 2e-2 : 1e-5, tol_loss = bf16 ? 1e-2 : 1e-5, tol_grad = bf16 ? 5e-2 : 1e-4;
    double tol_step = bf16 ? 2e-2 : 1e-4, tol_upd = bf16 ? 0.25 : 1e-3;

    std::vector<float> logits(BT * Vp), grads(np), after(np);
    float loss;
    gpu_forward(gm, x, y, nullptr, &loss, nullptr);
    gpu_get_logits(gm, 0, (int)BT, logits.data());
    double e = rel_l2(logits.data(), rlogits, logits.size());
    check(e < tol_logit, "%s: logits rel err %.2e (max abs %.2e) < %g", mode, e, max_abs(logits.data(), rlogits, logits.size()), tol_logit);
    gpu_zero_grad(gm);
    gpu_forward_backward(gm, x, y, nullptr, 1.0f / BT, &loss, nullptr);
    check(fabs(loss - rloss) < tol_loss, "%s: loss %.6f vs %.6f (|diff| %.2e < %g)", mode, loss, rloss, fabs(loss - rloss), tol_loss);
    gpu_get_grads(gm, grads.data());
    size_t sizes[NUM_PARAMS], off = 0;
    gpu_param_sizes(sizes, c);
    double worst = 0;
    for (int i = 0; i < NUM_PARAMS; i++) {
        double ge = rel_l2(grads.data() + off, rgrads + off, sizes[i]);
        if (!(ge < tol_grad)) check(false, "%s: gradient of %s rel err %.2e >= %.0e", mode, pnames[i], ge, tol_grad);
        if (!(ge <= worst)) worst = ge;
        off += sizes[i];
    }
    check(worst < tol_grad, "%s: all 16 gradients, worst rel err %.2e < %g", mode, worst, tol_grad);
    // 10 AdamW steps on the same batch
    double step_err = 0;
    for (int t = 1; t <= nsteps; t++) {
        gpu_zero_grad(gm);
        float l;
        gpu_forward_backward(gm, x, y, nullptr, 1.0f / BT, &l, nullptr);
        double d = fabs(l - rsteps[t - 1]);
        if (!(d <= step_err)) step_err = d;
        float norm = gpu_grad_norm(gm);
        float gscale = 1.0f / (norm + 1e-6f);
        if (gscale > 1.0f) gscale = 1.0f;
        gpu_adamw_step(gm, 1e-3f, 0.1f, gscale, t);
    }
    check(step_err < tol_step, "%s: losses of 10 AdamW steps, max |diff| %.2e < %g", mode, step_err, tol_step);
    gpu_get_params(gm, after.data());
    std::vector<float> upd_gpu(np), upd_ref(np);
    for (size_t i = 0; i < np; i++) { upd_gpu[i] = after[i] - params32[i]; upd_ref[i] = rafter[i] - params32[i]; }
    double ue = rel_l2(upd_gpu.data(), upd_ref.data(), np);
    check(ue < tol_upd, "%s: parameters after 10 steps, error / update norm %.2e < %g", mode, ue, tol_upd);
    gpu_free(gm);
    free(params);
    free(params32);
}

// ----------------------------------------------------------------------------
// 2. the tensor-core attention against the reference kernel

static void test_attention(int B, int T, int NH) {
    printf("== attention: tensor-core kernels vs the reference kernels (bf16, B=%d T=%d NH=%d hs=64)\n", B, T, NH);
    int C = NH * 64;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, nl = (size_t)B * NH * T;
    std::vector<bf16> hq(nqkv), hd(nout);
    for (auto &v : hq) v = __float2bfloat16(nrand());
    for (auto &v : hd) v = __float2bfloat16(nrand());
    bf16 *qkv, *dout, *o1, *o2, *dq1, *dq2;
    float *l1, *l2, *D;
    CUDA_CHECK(cudaMalloc(&qkv, nqkv * 2)); CUDA_CHECK(cudaMalloc(&dout, nout * 2));
    CUDA_CHECK(cudaMalloc(&o1, nout * 2)); CUDA_CHECK(cudaMalloc(&o2, nout * 2));
    CUDA_CHECK(cudaMalloc(&dq1, nqkv * 2)); CUDA_CHECK(cudaMalloc(&dq2, nqkv * 2));
    CUDA_CHECK(cudaMalloc(&l1, nl * 4)); CUDA_CHECK(cudaMalloc(&l2, nl * 4)); CUDA_CHECK(cudaMalloc(&D, nl * 4));
    CUDA_CHECK(cudaMemcpy(qkv, hq.data(), nqkv * 2, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dout, hd.data(), nout * 2, cudaMemcpyHostToDevice));
    // poison the outputs: every element must be written
    CUDA_CHECK(cudaMemset(o1, 0xff, nout * 2)); CUDA_CHECK(cudaMemset(dq1, 0xff, nqkv * 2)); CUDA_CHECK(cudaMemset(l1, 0xff, nl * 4));
    attention_forward<bf16>(o1, l1, qkv, B, T, C, NH, false, 0);
    attention_forward<bf16>(o2, l2, qkv, B, T, C, NH, true, 0);
    attention_backward<bf16>(dq1, D, dout, qkv, o1, l1, B, T, C, NH, false, 0);
    attention_backward<bf16>(dq2, D, dout, qkv, o2, l2, B, T, C, NH, true, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    auto fetch = [](const bf16 *d, size_t n) {
        std::vector<bf16> h(n);
        CUDA_CHECK(cudaMemcpy(h.data(), d, n * 2, cudaMemcpyDeviceToHost));
        std::vector<float> f(n);
        for (size_t i = 0; i < n; i++) f[i] = __bfloat162float(h[i]);
        return f;
    };
    std::vector<float> a = fetch(o1, nout), b = fetch(o2, nout);
    check(rel_l2(a.data(), b.data(), nout) < 2e-2, "out rel err %.2e < 2e-2", rel_l2(a.data(), b.data(), nout));
    std::vector<float> la(nl), lb(nl);
    CUDA_CHECK(cudaMemcpy(la.data(), l1, nl * 4, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(lb.data(), l2, nl * 4, cudaMemcpyDeviceToHost));
    check(rel_l2(la.data(), lb.data(), nl) < 1e-3, "log-sum-exp rel err %.2e < 1e-3", rel_l2(la.data(), lb.data(), nl));
    std::vector<float> ga = fetch(dq1, nqkv), gb = fetch(dq2, nqkv);
    const char *part[3] = {"dq", "dk", "dv"};
    for (int k = 0; k < 3; k++) { // q, k, v channel ranges of every row
        std::vector<float> pa, pb;
        for (size_t r = 0; r < (size_t)B * T; r++)
            for (int cc = 0; cc < C; cc++) { pa.push_back(ga[r * 3 * C + k * C + cc]); pb.push_back(gb[r * 3 * C + k * C + cc]); }
        double e = rel_l2(pa.data(), pb.data(), pa.size());
        check(e < 2e-2, "%s rel err %.2e < 2e-2", part[k], e);
    }
#ifdef USE_CUDNN
    { // cuDNN's fused attention against the same reference outputs (o2, l2, dq2)
        char err[512];
        size_t ws = 0;
        CudnnAttention *ca = cudnn_attention_create(B, NH, T, 64, C, C, &ws, err, sizeof(err));
        check(ca != nullptr, "cuDNN attention graphs built (%s)", ca ? "ok" : err);
        if (ca) {
            CUDA_CHECK(cudaMemset(o1, 0xff, nout * 2)); CUDA_CHECK(cudaMemset(dq1, 0xff, nqkv * 2)); CUDA_CHECK(cudaMemset(l1, 0xff, nl * 4));
            cudnn_attention_forward(ca, o1, l1, qkv, 0);
            cudnn_attention_backward(ca, dq1, dout, qkv, o1, l1, 0);
            CUDA_CHECK(cudaDeviceSynchronize());
            std::vector<float> c1 = fetch(o1, nout), cl(nl), cg = fetch(dq1, nqkv);
            CUDA_CHECK(cudaMemcpy(cl.data(), l1, nl * 4, cudaMemcpyDeviceToHost));
            check(rel_l2(c1.data(), b.data(), nout) < 2e-2, "cuDNN: out rel err %.2e < 2e-2", rel_l2(c1.data(), b.data(), nout));
            check(rel_l2(cl.data(), lb.data(), nl) < 1e-3, "cuDNN: log-sum-exp rel err %.2e < 1e-3", rel_l2(cl.data(), lb.data(), nl));
            for (int k = 0; k < 3; k++) {
                std::vector<float> pa, pb;
                for (size_t r = 0; r < (size_t)B * T; r++)
                    for (int cc = 0; cc < C; cc++) { pa.push_back(cg[r * 3 * C + k * C + cc]); pb.push_back(gb[r * 3 * C + k * C + cc]); }
                double e = rel_l2(pa.data(), pb.data(), pa.size());
                check(e < 2e-2, "cuDNN: %s rel err %.2e < 2e-2", part[k], e);
            }
            cudnn_attention_free(ca);
        }
    }
#endif
    cudaFree(qkv); cudaFree(dout); cudaFree(o1); cudaFree(o2); cudaFree(dq1); cudaFree(dq2); cudaFree(l1); cudaFree(l2); cudaFree(D);
}

// ----------------------------------------------------------------------------
// 3. the adapter variants against the CPU trainer

static void write_shard(const char *path, const std::vector<uint16_t> &tok) {
    int32_t h[256] = {0};
    h[0] = 20240520; h[1] = 1; h[2] = (int32_t)tok.size();
    FILE *f = fopen(path, "wb");
    fwrite(h, 4, 256, f);
    fwrite(tok.data(), 2, tok.size(), f);
    fclose(f);
}
static void write_lossmask(const char *path, const std::vector<uint8_t> &m) {
    int32_t h[256] = {0};
    h[0] = 20240522; h[1] = 1; h[2] = (int32_t)m.size();
    FILE *f = fopen(path, "wb");
    fwrite(h, 4, 256, f);
    fwrite(m.data(), 1, m.size(), f);
    fclose(f);
}

struct Csv { std::vector<float> train, val; };
static Csv read_csv(const std::string &path) {
    Csv c;
    FILE *f = fopen(path.c_str(), "r");
    if (!f) return c;
    char line[512];
    if (!fgets(line, sizeof(line), f)) { fclose(f); return c; }
    while (fgets(line, sizeof(line), f)) {
        char *f1 = strchr(line, ','), *f2 = f1 ? strchr(f1 + 1, ',') : nullptr;
        if (!f1 || !f2) continue;
        if (f2 > f1 + 1) c.train.push_back(strtof(f1 + 1, nullptr));
        if (f2[1] != ',' && f2[1] != '\n' && f2[1] != 0) c.val.push_back(strtof(f2 + 1, nullptr));
    }
    fclose(f);
    return c;
}

static int test_gpu_main(int argc, char **argv) { // train_gpt2.cu's main, once more in this process
    hostapi_reset_stop();
    return gpu_main(argc, argv);
}

static int run_args(int (*fn)(int, char **), const std::string &cmd) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i < cmd.size()) {
        while (i < cmd.size() && cmd[i] == ' ') i++;
        size_t j = i;
        while (j < cmd.size() && cmd[j] != ' ') j++;
        if (j > i) parts.push_back(cmd.substr(i, j - i));
        i = j;
    }
    std::vector<char *> argv;
    for (auto &s : parts) argv.push_back((char *)s.c_str());
    argv.push_back(nullptr);
    fflush(stdout);
    int saved = dup(1), devnull = open("/dev/null", O_WRONLY); // the trainers' progress lines are not the test's
    dup2(devnull, 1);
    int rc = fn((int)parts.size(), argv.data());
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(devnull);
    return rc;
}

static void compare_runs(const char *name, const std::string &dir, const std::string &flags, int bf16, bool adapter,
                         bool model_file) {
    std::string cd = dir + "/cpu_" + name, gd = dir + "/gpu_" + name;
    std::string common = flags + " -i " + dir + "/train.bin -j " + dir + "/val.bin";
    long long before = g_gpu_base_weight_grad_calls;
    int rc1 = run_args(hostapi_cpu_main, "train_gpt2 " + common + " -o " + cd);
    int rc2 = run_args(test_gpu_main, std::string("train_gpt2cu ") + common + " --precision " + (bf16 ? "bf16" : "fp32") + " -o " + gd);
    if (rc1 != 0 || rc2 != 0) { check(false, "%s: trainers exited with %d (CPU) and %d (GPU)", name, rc1, rc2); return; }
    if (adapter) check(g_gpu_base_weight_grad_calls == before, "%s: no base weight gradient computed on the GPU", name);
    Csv a = read_csv(cd + "/train.csv"), b = read_csv(gd + "/train.csv");
    double tl = bf16 ? 2e-2 : 1e-4;
    bool same = a.train.size() == b.train.size() && a.train.size() > 0 && a.val.size() == b.val.size();
    double dt = 0, dv = 0;
    for (size_t i = 0; same && i < a.train.size(); i++) dt = std::max(dt, (double)fabs(a.train[i] - b.train[i]) / (bf16 ? fabs(a.train[i]) : 1.0));
    for (size_t i = 0; same && i < a.val.size(); i++) dv = std::max(dv, (double)fabs(a.val[i] - b.val[i]) / (bf16 ? fabs(a.val[i]) : 1.0));
    check(same && dt < tl && dv < tl, "%s (%s): %zu train losses max %s %.2e, %zu val losses max %.2e (< %g); final %.5f vs %.5f", name,
          bf16 ? "bf16" : "fp32", a.train.size(), bf16 ? "rel diff" : "|diff|", dt, a.val.size(), dv, tl,
          a.train.empty() ? 0.0 : a.train.back(), b.train.empty() ? 0.0 : b.train.back());
    if (bf16) return;
    if (adapter) {
        HostAdapterInfo x, y;
        if (hostapi_adapter_read((cd + "/adapter.bin").c_str(), &x) != 0 || hostapi_adapter_read((gd + "/adapter.bin").c_str(), &y) != 0) {
            check(false, "%s: adapter.bin unreadable", name);
            return;
        }
        bool shape = x.nA == y.nA && x.nB == y.nB && x.stage == y.stage;
        double ea = shape ? rel_l2(y.params, x.params, x.nA) : 1, eb = shape ? rel_l2(y.params + x.nA, x.params + x.nA, x.nB) : 1;
        check(shape && ea < 1e-3 && eb < 1e-3, "%s: adapter.bin A rel err %.2e, B rel err %.2e (< 1e-3), stage %d vs %d", name, ea, eb,
              x.stage, y.stage);
        if (x.kept || y.kept) {
            bool same_mask = x.nkept == y.nkept && x.kept && y.kept && memcmp(x.kept, y.kept, x.nkept * 4) == 0;
            check(same_mask, "%s: the same LoRI-S mask (%zu vs %zu kept entries)", name, x.nkept, y.nkept);
            check(y.b_storage == 1, "%s: the GPU's B is exactly 0 outside its mask (stored sparse: storage %d)", name, y.b_storage);
        }
        free(x.params); free(y.params); free(x.kept); free(y.kept);
    }
    if (model_file) {
        int c1[6], c2[6];
        float *p1 = nullptr, *p2 = nullptr;
        size_t n1 = 0, n2 = 0;
        if (hostapi_load_checkpoint((cd + "/model.bin").c_str(), c1, &p1, &n1) != 0 ||
            hostapi_load_checkpoint((gd + "/model.bin").c_str(), c2, &p2, &n2) != 0 || n1 != n2) {
            check(false, "%s: model.bin unreadable", name);
            return;
        }
        double e = rel_l2(p2, p1, n1), m = max_abs(p2, p1, n1);
        check(e < 1e-5, "%s: model.bin rel err %.2e (< 1e-5; max abs diff %.2e)", name, e, m);
        free(p1); free(p2);
    }
}

static void test_vs_cpu() {
    printf("== adapter variants: the GPU trainer vs the CPU trainer (same flags, same seeds)\n");
    char tmpl[] = "/tmp/test_gpt2cu_XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) { check(false, "mkdtemp"); return; }
    std::string d = dir;
    std::vector<uint16_t> tr(20000), va(4000);
    std::vector<uint8_t> m(tr.size());
    for (size_t i = 0; i < tr.size(); i++) { tr[i] = (uint16_t)((i * 7 + (i / 13) * 3 + (uint64_t)(frand() * 40)) % 257); m[i] = frand() < 0.7f; }
    for (auto &t : va) t = (uint16_t)(frand() * 257);
    write_shard((d + "/train.bin").c_str(), tr);
    write_lossmask((d + "/train.lossmask").c_str(), m);
    write_shard((d + "/val.bin").c_str(), va);
    std::string base = "-e L=2,C=64,H=4,V=257,T=64 -b 4 -t 32 -l 3e-3 -v 5 -m 2 -s 0 --seed 11 --print-every 1000 --warmup 2";
    compare_runs("full", d, base + " -x 10 --adapter none -c 0.1", 0, false, true);
    compare_runs("lora", d, base + " -x 10 --adapter lora --rank 8 -c 0.01", 0, true, false);
    compare_runs("lora_dropout", d, base + " -x 10 --adapter lora --rank 8 --dropout 0.2", 0, true, false);
    // gradient accumulation: -d 256 = two micro-batches of B*T = 128 per step (each backward must start
    // its activation gradients afresh and add onto the step's parameter gradients)
    compare_runs("full_accum", d, base + " -x 6 -d 256 --adapter none -c 0.1", 0, false, true);
    compare_runs("lora_accum", d, base + " -x 6 -d 256 --adapter lora --rank 8", 0, true, false);
    compare_runs("lori", d, base + " -x 8 --adapter lori --rank 8 --sparsity 0.9", 0, true, false);
    compare_runs("plora", d, base + " -x 12 --adapter plora --rank 8 --plora-every 4", 0, true, true);
    compare_runs("plora_momentum", d, base + " -x 12 --adapter plora --rank 8 --plora-every 4 --plora-momentum 0.5", 0, true, true);
    compare_runs("plora_momentum_writeup", d, base + " -x 12 --adapter plora --rank 8 --plora-every 4 --plora-momentum 0.5 --plora-momentum-mode writeup", 0, true, true);
    compare_runs("lora_adamw_flags", d, base + " -x 10 --adapter lora --rank 8 --beta1 0.8 --beta2 0.95 --eps 1e-6", 0, true, false);
    compare_runs("full_bf16", d, base + " -x 10 --adapter none", 1, false, false);
    compare_runs("lora_bf16", d, base + " -x 10 --adapter lora --rank 8", 1, true, false);
    compare_runs("lora_dropout_bf16", d, base + " -x 10 --adapter lora --rank 8 --dropout 0.2", 1, true, false);
    compare_runs("lori_bf16", d, base + " -x 8 --adapter lori --rank 8", 1, true, false);
    std::string rm = "rm -rf " + d;
    if (system(rm.c_str()) != 0) printf("(could not remove %s)\n", dir);
}

// ----------------------------------------------------------------------------
// 4, 5: LoRI-S exactness and PLoRA's function-preserving unload, in process

static GPUModel *tiny_model(int bf16, void **ad, HostAdapterDesc &hd, int kind, std::vector<float> &params, int B, int T) {
    GPUConfig c = {64, 257, 320, 2, 4, 64};
    size_t sizes[NUM_PARAMS], n = 0;
    gpu_param_sizes(sizes, c);
    for (int i = 0; i < NUM_PARAMS; i++) n += sizes[i];
    params.resize(n);
    for (auto &v : params) v = 0.05f * nrand();
    *ad = hostapi_adapter_new(kind, 8, 16.0f, c.num_layers, c.channels, 99, 0.0f, &hd);
    GPUAdapterDesc gd = {hd.base_absorbs, hd.rank, hd.scale, hd.dropout, hd.trains_A, hd.nslots, hd.slot_layer, hd.slot_target,
                         hd.slot_in, hd.slot_out, hd.a_off, hd.b_off, hd.nA, hd.nB};
    char err[512];
    GPUModel *gm = gpu_create(&c, params.data(), &gd, B, T, bf16, 0, err, sizeof(err));
    if (!gm) { fprintf(stderr, "gpu_create: %s\n", err); exit(1); }
    gpu_set_adapter(gm, hd.params);
    return gm;
}

static void test_lori_exact(int bf16) {
    const char *mode = bf16 ? "bf16" : "fp32";
    printf("== LoRI-S: masked entries of B stay exactly 0 (%s)\n", mode);
    void *ad;
    std::vector<float> params;
    int B = 4, T = 32;
    HostAdapterDesc hd;
    GPUModel *gm = tiny_model(bf16, &ad, hd, 2, params, B, T);
    std::vector<uint8_t> mask(hd.nB);
    for (auto &x : mask) x = frand() < 0.1f;
    uint32_t *kept;
    size_t nkept;
    hostapi_adapter_set_mask(ad, mask.data(), &kept, &nkept);
    gpu_set_mask(gm, kept, nkept, 1);
    gpu_opt_setup(gm);
    check(gpu_opt_size(gm) == nkept, "%s: the optimizer holds the %zu kept entries only (%zu)", mode, nkept, gpu_opt_size(gm));
    std::vector<int> x(B * T), y(B * T);
    for (int t = 1; t <= 30; t++) {
        for (int i = 0; i < B * T; i++) { x[i] = (int)(frand() * 257); y[i] = (int)(frand() * 257); }
        gpu_zero_grad(gm);
        float l;
        gpu_forward_backward(gm, x.data(), y.data(), nullptr, 1.0f / (B * T), &l, nullptr);
        gpu_adamw_step(gm, 5e-2f, 0.1f, 1.0f, t);
    }
    std::vector<float> ab(hd.nA + hd.nB), A0(hd.params, hd.params + hd.nA);
    gpu_get_adapter(gm, ab.data());
    size_t bad = 0, moved = 0;
    for (size_t i = 0; i < hd.nB; i++) {
        float v = ab[hd.nA + i];
        if (!mask[i] && v != 0.0f) bad++;
        if (mask[i] && v != 0.0f) moved++;
    }
    check(bad == 0 && moved > nkept / 2, "%s: %zu masked entries nonzero (must be 0); %zu of %zu kept entries trained", mode, bad, moved, nkept);
    check(memcmp(ab.data(), A0.data(), hd.nA * 4) == 0, "%s: LoRI's A is frozen (bit-identical after 30 steps)", mode);
    hostapi_adapter_free(ad);
    gpu_free(gm);
}

static void test_plora_unload(int bf16, float momentum) {
    const char *mode = bf16 ? "bf16" : "fp32";
    printf("== PLoRA unload is function-preserving (%s, momentum %g)\n", mode, momentum);
    void *ad;
    std::vector<float> params;
    int B = 2, T = 32;
    HostAdapterDesc hd;
    GPUModel *gm = tiny_model(bf16, &ad, hd, 3, params, B, T);
    std::vector<float> ab(hd.nA + hd.nB);
    gpu_get_adapter(gm, ab.data());
    for (size_t i = hd.nA; i < ab.size(); i++) ab[i] = 0.05f * nrand(); // a trained-looking B
    // the host adapter must hold what the GPU holds (the unload reads it back from the GPU anyway)
    gpu_set_adapter(gm, ab.data());
    std::vector<int> x(B * T);
    for (auto &v : x) v = (int)(frand() * 257);
    size_t nl = (size_t)B * T * 320;
    std::vector<float> l1(nl), l2(nl);
    float loss;
    gpu_forward(gm, x.data(), nullptr, nullptr, &loss, nullptr);
    gpu_get_logits(gm, 0, B * T, l1.data());
    hostapi_plora_unload(gm, ad, momentum);
    gpu_forward(gm, x.data(), nullptr, nullptr, &loss, nullptr);
    gpu_get_logits(gm, 0, B * T, l2.data());
    double e = rel_l2(l2.data(), l1.data(), nl), tol = bf16 ? 2e-2 : 1e-5;
    check(e < tol, "%s: logits before/after the unload rel diff %.2e < %g", mode, e, tol);
    std::vector<float> base(params.size());
    gpu_get_params(gm, base.data());
    check(rel_l2(base.data(), params.data(), params.size()) > 1e-4, "%s: the base changed (the update went into W)", mode);
    hostapi_adapter_free(ad);
    gpu_free(gm);
}

// ----------------------------------------------------------------------------
// 6. GPT-2 124M's shape: bf16 with the tensor-core attention vs fp32 with the reference kernels

static void test_d12() {
    printf("== GPT-2 124M shape (d12, B=2, T=1024): bf16 + flash attention vs fp32 + reference kernels\n");
    GPUConfig c = {1024, 50257, 50304, 12, 12, 768};
    size_t sizes[NUM_PARAMS], n = 0;
    gpu_param_sizes(sizes, c);
    for (int i = 0; i < NUM_PARAMS; i++) n += sizes[i];
    std::vector<float> p(n);
    for (auto &v : p) v = 0.02f * nrand();
    size_t off = 0;
    for (int i = 0; i < NUM_PARAMS; i++) { // unit layernorm weights, zero biases, zero padded wte rows
        if (i == P_LN1W || i == P_LN2W || i == P_LNFW) for (size_t k = 0; k < sizes[i]; k++) p[off + k] = 1.0f;
        if (i == P_LN1B || i == P_LN2B || i == P_LNFB || i == P_QKVB || i == P_ATTPROJB || i == P_FCB || i == P_FCPROJB)
            for (size_t k = 0; k < sizes[i]; k++) p[off + k] = 0.0f;
        if (i == P_WTE) for (size_t k = (size_t)c.vocab_size * c.channels; k < sizes[i]; k++) p[k] = 0.0f;
        off += sizes[i];
    }
    int B = 2, T = 1024;
    std::vector<int> x(B * T), y(B * T);
    for (int i = 0; i < B * T; i++) { x[i] = (int)(frand() * 50257); y[i] = (int)(frand() * 50257); }
    float loss[2], norm[2];
    std::vector<float> g[2];
    for (int k = 0; k < 2; k++) {
        char err[512];
        GPUModel *gm = gpu_create(&c, p.data(), nullptr, B, T, k == 0, k == 1, err, sizeof(err));
        if (!gm) { check(false, "gpu_create: %s", err); return; }
        gpu_zero_grad(gm);
        gpu_forward_backward(gm, x.data(), y.data(), nullptr, 1.0f / (B * T), &loss[k], nullptr);
        norm[k] = gpu_grad_norm(gm);
        g[k].resize(n);
        gpu_get_grads(gm, g[k].data());
        gpu_free(gm);
    }
    // At this init the loss is ln(V) whatever attention computes, so it checks little; the gradients
    // of the layers around attention do: qkvw's comes only through attention's backward (dq, dk, dv),
    // attprojw's from attention's output. Per tensor, relative L2, the bf16 bound of section 1.
    check(fabs(loss[0] - loss[1]) < 2e-2, "loss bf16 %.5f vs fp32 %.5f (|diff| < 2e-2)", loss[0], loss[1]);
    check(fabs(norm[0] - norm[1]) < 0.05 * norm[1], "grad norm bf16 %.4f vs fp32 %.4f (within 5%%)", norm[0], norm[1]);
    size_t o = 0;
    for (int i = 0; i < NUM_PARAMS; i++) {
        if (i == P_QKVW || i == P_ATTPROJW || i == P_LN1W) {
            double e = rel_l2(g[0].data() + o, g[1].data() + o, sizes[i]);
            check(e < 5e-2, "gradient of %s bf16 vs fp32: rel L2 %.2e < 5e-2", i == P_QKVW ? "qkvw" : i == P_ATTPROJW ? "attprojw" : "ln1w", e);
        }
        o += sizes[i];
    }
}

// ----------------------------------------------------------------------------
// 7. the step as CUDA graphs against the same step run eagerly; a bad token

static GPUModel *tiny_model_env(int bf16, bool adapter, bool eager, void **ad, HostAdapterDesc &hd, std::vector<float> &params, int B, int T) {
    if (eager) setenv("GPU_PROFILE", "1", 1);
    GPUModel *gm;
    if (adapter) {
        gm = tiny_model(bf16, ad, hd, 1, params, B, T);
    } else {
        GPUConfig c = {64, 257, 320, 2, 4, 64};
        char err[512];
        gm = gpu_create(&c, params.data(), nullptr, B, T, bf16, 0, err, sizeof(err));
        *ad = nullptr;
    }
    unsetenv("GPU_PROFILE");
    return gm;
}

static void test_graphs(int bf16, bool adapter) {
    const char *mode = bf16 ? "bf16" : "fp32", *what = adapter ? "LoRA" : "full fine-tuning";
    printf("== the step as CUDA graphs vs eager (%s, %s)\n", mode, what);
    int B = 4, T = 32, steps = 6;
    std::vector<float> loss[2], out[2];
    uint64_t saved = g_rng;
    for (int k = 0; k < 2; k++) { // k = 0: graphs, 1: eager
        g_rng = saved; // the same parameters, adapter and batches
        void *ad = nullptr;
        HostAdapterDesc hd;
        std::vector<float> params;
        if (!adapter) {
            GPUConfig c = {64, 257, 320, 2, 4, 64};
            size_t sizes[NUM_PARAMS], n = 0;
            gpu_param_sizes(sizes, c);
            for (int i = 0; i < NUM_PARAMS; i++) n += sizes[i];
            params.resize(n);
            for (auto &v : params) v = 0.05f * nrand();
        }
        GPUModel *gm = tiny_model_env(bf16, adapter, k == 1, &ad, hd, params, B, T);
        if (!gm) { check(false, "%s %s: gpu_create failed", mode, what); return; }
        bool graphs = strstr(gpu_describe(gm), "CUDA graphs") != nullptr;
        check(graphs == (k == 0), "%s %s: %s model %s CUDA graphs (%s)", mode, what, k ? "a GPU_PROFILE" : "a plain",
              k ? "runs without" : "runs with", gpu_describe(gm));
        std::vector<int> x(B * T), y(B * T);
        for (int t = 1; t <= steps; t++) {
            for (int i = 0; i < B * T; i++) { x[i] = (int)(frand() * 257); y[i] = (int)(frand() * 257); }
            float l = 0;
            gpu_zero_grad(gm);
            gpu_forward_backward(gm, x.data(), y.data(), nullptr, 1.0f / (B * T), &l, nullptr);
            loss[k].push_back(l);
            gpu_adamw_step(gm, 1e-2f, 0.0f, 1.0f, t);
            gpu_synchronize(gm);
        }
        if (adapter) { out[k].resize(hd.nA + hd.nB); gpu_get_adapter(gm, out[k].data()); }
        else { out[k].resize(params.size()); gpu_get_params(gm, out[k].data()); }
        if (ad) hostapi_adapter_free(ad);
        gpu_free(gm);
    }
    double tol = bf16 ? 1e-2 : 1e-5, dl = 0;
    for (int t = 0; t < steps; t++) dl = std::max(dl, (double)fabs(loss[0][t] - loss[1][t]) / fabs(loss[1][t]));
    double e = rel_l2(out[0].data(), out[1].data(), out[0].size());
    check(dl < tol && e < tol, "%s %s: %d losses max rel diff %.2e, trained values rel diff %.2e (< %g)", mode, what, steps, dl, e, tol);
}

static void test_bad_token() {
    printf("== a token outside the vocab is an error returned, not an exit\n");
    void *ad;
    HostAdapterDesc hd;
    std::vector<float> params;
    int B = 2, T = 32;
    GPUModel *gm = tiny_model(1, &ad, hd, 1, params, B, T);
    std::vector<int> x(B * T, 3), y(B * T, 5);
    float loss = 0;
    x[7] = 257;
    int rc = gpu_forward_backward(gm, x.data(), y.data(), nullptr, 1.0f, &loss, nullptr);
    check(rc == -1 && strstr(gpu_error(gm), "outside the vocab"), "input id 257 (V=257): rc %d, '%s'", rc, gpu_error(gm));
    x[7] = 3; y[0] = -1;
    rc = gpu_forward(gm, x.data(), y.data(), nullptr, &loss, nullptr);
    check(rc == -1 && strstr(gpu_error(gm), "target token id -1"), "target id -1: rc %d, '%s'", rc, gpu_error(gm));
    y[0] = 5;
    rc = gpu_forward(gm, x.data(), y.data(), nullptr, &loss, nullptr);
    check(rc == 0 && std::isfinite(loss) && loss > 0, "then a valid batch: rc %d, loss %.4f", rc, loss);
    hostapi_adapter_free(ad);
    gpu_free(gm);
}

int main(int argc, char **argv) {
    int dev = 0;
    if (cudaGetDeviceCount(&dev) != cudaSuccess || dev == 0) {
        printf("no CUDA device: nothing to test here\n0 passed, 1 failed\n");
        return 1;
    }
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0; // skips the CPU comparisons
    test_reference(0);
    test_reference(1);
    test_attention(2, 200, 3);
    test_attention(1, 1024, 2);
    test_lori_exact(0);
    test_lori_exact(1);
    test_plora_unload(0, 0.0f);
    test_plora_unload(0, 0.5f);
    test_plora_unload(1, 0.0f);
    test_d12();
    test_graphs(0, true);
    test_graphs(1, true);
    test_graphs(0, false);
    test_bad_token();
    if (!quick) test_vs_cpu();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
