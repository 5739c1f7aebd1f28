/*
test_gpt2.c — the trainer's tests (libcheck): every layer against central finite differences in
double precision, the whole model against a PyTorch float64 reference (dev/gpt2_reference.py),
llm.c's file formats, and the adapters (LoRA, LoRI-D/S, PLoRA, frozen base).

It includes train_gpt2.c (float) and kernels/layers.h a second time with real = double.
*/
#define TESTING
#include "train_gpt2.c"

#undef real
#undef LAYER_FN
#define real double
#define LAYER_FN(name) name##_f64
#include "kernels/layers.h"
#undef real
#undef LAYER_FN

#include <check.h>

#define REF_MODEL "dev/ref/gpt2_tiny.bin"
#define REF_MODEL_BF16 "dev/ref/gpt2_tiny_bf16.bin"
#define REF_DUMP "dev/ref/gpt2_tiny_ref.bin"

// ----------------------------------------------------------------------------
// helpers

static uint64_t g_rng = 12345;
static double urand(void) { return 2.0 * rng_uniform(&g_rng) - 1.0; } // U(-1,1)
static double *drand_array(size_t n) {
    double *a = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) a[i] = urand();
    return a;
}
static double dot_d(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
// max |a-b| / max(1, max|b|): errors relative to the tensor's scale
static double max_rel_err(const double *a, const double *b, size_t n) {
    double m = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) { if (fabs(a[i] - b[i]) > m) m = fabs(a[i] - b[i]); if (fabs(b[i]) > scale) scale = fabs(b[i]); }
    return m / scale;
}
static double max_abs_diff_f(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs((double)a[i] - b[i]) > m) m = fabs((double)a[i] - b[i]);
    return m;
}
static double max_abs_f(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

// Central finite difference of f over every entry of x: grad[i] = (f(x+h e_i) - f(x-h e_i)) / 2h.
// f is a scalar function of the current contents of the buffers (it reads x in place).
typedef double (*ScalarFn)(void *ctx);
static void fd_grad(double *x, size_t n, ScalarFn f, void *ctx, double *grad) {
    const double h = 1e-5; // in double: truncation O(h^2) ~ 1e-10, rounding ~ 1e-16/h ~ 1e-11
    for (size_t i = 0; i < n; i++) {
        double old = x[i];
        x[i] = old + h; double fp = f(ctx);
        x[i] = old - h; double fm = f(ctx);
        x[i] = old;
        grad[i] = (fp - fm) / (2 * h);
    }
}
// the double-precision FD tolerance: relative to the gradient's scale
#define FD_TOL 1e-7

// ----------------------------------------------------------------------------
// layers: backward vs central finite differences, in double precision.
// Each layer's scalar test loss is sum(out * w) for a fixed random w, so dout = w.

typedef struct { double *out, *w, *x, *W, *b, *mean, *rstd, *pre, *att; int B, T, C, OC, NH, V, Vp; int *ids; } LCtx;

static double f_layernorm(void *p) {
    LCtx *c = p; int N = c->B * c->T;
    layernorm_forward_f64(c->out, c->mean, c->rstd, c->x, c->W, c->b, N, c->C);
    return dot_d(c->out, c->w, (size_t)N * c->C);
}
START_TEST(test_fd_layernorm) {
    LCtx c = {0}; c.B = 2; c.T = 3; c.C = 7; int N = 6;
    c.x = drand_array(N * 7); c.W = drand_array(7); c.b = drand_array(7); c.w = drand_array(N * 7);
    c.out = calloc(N * 7, 8); c.mean = calloc(N, 8); c.rstd = calloc(N, 8);
    double *dx = calloc(N * 7, 8), *dW = calloc(7, 8), *db = calloc(7, 8), *fd = calloc(N * 7, 8);
    f_layernorm(&c);
    layernorm_backward_f64(dx, dW, db, c.w, c.x, c.W, c.mean, c.rstd, N, 7);
    fd_grad(c.x, N * 7, f_layernorm, &c, fd); ck_assert_double_le(max_rel_err(dx, fd, N * 7), FD_TOL);
    fd_grad(c.W, 7, f_layernorm, &c, fd);     ck_assert_double_le(max_rel_err(dW, fd, 7), FD_TOL);
    fd_grad(c.b, 7, f_layernorm, &c, fd);     ck_assert_double_le(max_rel_err(db, fd, 7), FD_TOL);
}
END_TEST

static double f_matmul(void *p) {
    LCtx *c = p; int N = c->B * c->T;
    matmul_forward_ref_f64(c->out, c->x, c->W, c->b, N, c->C, c->OC);
    return dot_d(c->out, c->w, (size_t)N * c->OC);
}
START_TEST(test_fd_matmul) {
    LCtx c = {0}; c.B = 2; c.T = 3; c.C = 5; c.OC = 4; int N = 6;
    c.x = drand_array(N * 5); c.W = drand_array(20); c.b = drand_array(4); c.w = drand_array(N * 4); c.out = calloc(N * 4, 8);
    double *dx = calloc(N * 5, 8), *dW = calloc(20, 8), *db = calloc(4, 8), *fd = calloc(N * 5, 8);
    matmul_backward_ref_f64(dx, dW, db, c.w, c.x, c.W, N, 5, 4);
    fd_grad(c.x, N * 5, f_matmul, &c, fd); ck_assert_double_le(max_rel_err(dx, fd, N * 5), FD_TOL);
    fd_grad(c.W, 20, f_matmul, &c, fd);    ck_assert_double_le(max_rel_err(dW, fd, 20), FD_TOL);
    fd_grad(c.b, 4, f_matmul, &c, fd);     ck_assert_double_le(max_rel_err(db, fd, 4), FD_TOL);
}
END_TEST

static double f_attention(void *p) {
    LCtx *c = p;
    attention_forward_f64(c->out, c->pre, c->att, c->x, c->B, c->T, c->C, c->NH);
    return dot_d(c->out, c->w, (size_t)c->B * c->T * c->C);
}
START_TEST(test_fd_attention) {
    LCtx c = {0}; c.B = 2; c.T = 4; c.C = 6; c.NH = 2; int N = 8;
    c.x = drand_array(N * 18); c.w = drand_array(N * 6); c.out = calloc(N * 6, 8);
    c.pre = calloc(2 * 2 * 16, 8); c.att = calloc(2 * 2 * 16, 8);
    double *dx = calloc(N * 18, 8), *dpre = calloc(64, 8), *datt = calloc(64, 8), *fd = calloc(N * 18, 8);
    f_attention(&c);
    attention_backward_f64(dx, dpre, datt, c.w, c.x, c.att, 2, 4, 6, 2);
    fd_grad(c.x, N * 18, f_attention, &c, fd);
    ck_assert_double_le(max_rel_err(dx, fd, N * 18), FD_TOL);
}
END_TEST

static double f_gelu(void *p) { LCtx *c = p; gelu_forward_f64(c->out, c->x, 50); return dot_d(c->out, c->w, 50); }
START_TEST(test_fd_gelu) {
    LCtx c = {0};
    c.x = drand_array(50); for (int i = 0; i < 50; i++) c.x[i] *= 4; // cover the tails
    c.w = drand_array(50); c.out = calloc(50, 8);
    double *dx = calloc(50, 8), *fd = calloc(50, 8);
    gelu_backward_f64(dx, c.x, c.w, 50);
    fd_grad(c.x, 50, f_gelu, &c, fd);
    ck_assert_double_le(max_rel_err(dx, fd, 50), FD_TOL);
}
END_TEST

static double f_residual(void *p) { LCtx *c = p; residual_forward_f64(c->out, c->x, c->W, 10); return dot_d(c->out, c->w, 10); }
START_TEST(test_fd_residual) {
    LCtx c = {0}; c.x = drand_array(10); c.W = drand_array(10); c.w = drand_array(10); c.out = calloc(10, 8);
    double *da = calloc(10, 8), *db = calloc(10, 8), *fd = calloc(10, 8);
    residual_backward_f64(da, db, c.w, 10);
    fd_grad(c.x, 10, f_residual, &c, fd); ck_assert_double_le(max_rel_err(da, fd, 10), FD_TOL);
    fd_grad(c.W, 10, f_residual, &c, fd); ck_assert_double_le(max_rel_err(db, fd, 10), FD_TOL);
}
END_TEST

static double f_encoder(void *p) {
    LCtx *c = p;
    encoder_forward_f64(c->out, c->ids, c->W, c->b, c->B, c->T, c->C);
    return dot_d(c->out, c->w, (size_t)c->B * c->T * c->C);
}
START_TEST(test_fd_encoder) {
    LCtx c = {0}; c.B = 2; c.T = 3; c.C = 4; int V = 5;
    int ids[6] = {0, 3, 3, 1, 4, 0}; c.ids = ids; // repeated ids: gradients must accumulate
    c.W = drand_array(V * 4); c.b = drand_array(3 * 4); c.w = drand_array(24); c.out = calloc(24, 8);
    double *dwte = calloc(V * 4, 8), *dwpe = calloc(12, 8), *fd = calloc(V * 4, 8);
    encoder_backward_f64(dwte, dwpe, c.w, ids, 2, 3, 4);
    fd_grad(c.W, V * 4, f_encoder, &c, fd); ck_assert_double_le(max_rel_err(dwte, fd, V * 4), FD_TOL);
    fd_grad(c.b, 12, f_encoder, &c, fd);    ck_assert_double_le(max_rel_err(dwpe, fd, 12), FD_TOL);
}
END_TEST

// the loss is mean over counted positions of -log softmax(logits[:V])[target]
static double f_xent(void *p) {
    LCtx *c = p; int N = c->B * c->T;
    softmax_crossentropy_forward_f64(c->out, c->att, c->x, c->ids, N, c->V, c->Vp);
    double s = 0; for (int i = 0; i < N; i++) s += c->out[i] * c->w[i];
    return s;
}
START_TEST(test_fd_crossentropy_masked) {
    LCtx c = {0}; c.B = 2; c.T = 3; c.V = 5; c.Vp = 8; int N = 6;
    int tg[6] = {1, 4, 0, 2, 2, 3}; c.ids = tg;
    double mask[6] = {1, 0, 1, 1, 0, 1}; // a loss mask: weight 1/count on answer positions, 0 elsewhere
    c.w = calloc(N, 8); for (int i = 0; i < N; i++) c.w[i] = mask[i] / 4.0;
    c.x = drand_array(N * 8); for (int i = 0; i < N * 8; i++) c.x[i] *= 3;
    c.out = calloc(N, 8); c.att = calloc(N * 8, 8);
    double *dl = calloc(N * 8, 8), *fd = calloc(N * 8, 8);
    f_xent(&c);
    softmax_crossentropy_backward_f64(dl, c.w, c.att, tg, N, 5, 8);
    fd_grad(c.x, N * 8, f_xent, &c, fd);
    ck_assert_double_le(max_rel_err(dl, fd, N * 8), FD_TOL);
    for (int n = 0; n < N; n++) for (int i = 5; i < 8; i++) ck_assert(dl[n * 8 + i] == 0.0); // padded columns
    for (int i = 0; i < 8; i++) { ck_assert(dl[1 * 8 + i] == 0.0); ck_assert(dl[4 * 8 + i] == 0.0); } // masked rows
}
END_TEST

// The adapted linear y = x W^T + b + s B A drop(x) for every variant. What differs is what
// trains: LoRA/PLoRA both factors, LoRI-D only B, LoRI-S only B at the mask's entries.
typedef struct { double *x, *W, *b, *A, *B, *drop, *y, *u, *w; double s; int N, in, out, r; } ACtx;
static double f_adapted(void *p) {
    ACtx *c = p;
    matmul_forward_ref_f64(c->y, c->x, c->W, c->b, c->N, c->in, c->out);
    lowrank_forward_f64(c->y, c->u, c->x, c->A, c->B, c->drop, c->s, c->N, c->in, c->out, c->r);
    return dot_d(c->y, c->w, (size_t)c->N * c->out);
}
static float *single_W(void *ctx, int l, int t) { (void)l; (void)t; return ctx; }
static void check_adapted_linear(int variant, int with_drop) {
    // variant: 0 LoRA, 1 LoRI-D, 2 LoRI-S, 3 PLoRA (after lora/adapter.h's own unload, momentum 0.5)
    ACtx c = {0}; c.N = 5; c.in = 6; c.out = variant == 3 ? 6 : 7; c.r = 3; c.s = 2.0 / 3;
    int nx = c.N * c.in, nW = c.out * c.in, nA = c.r * c.in, nB = c.out * c.r, ny = c.N * c.out;
    c.x = drand_array(nx); c.W = drand_array(nW); c.b = drand_array(c.out); c.A = drand_array(nA); c.B = drand_array(nB);
    c.w = drand_array(ny); c.y = calloc(ny, 8); c.u = calloc(c.N * c.r, 8);
    if (with_drop) { c.drop = calloc(nx, 8); for (int i = 0; i < nx; i++) c.drop[i] = rng_uniform(&g_rng) < 0.7 ? 1 / 0.7 : 0; }
    uint8_t mask[21];
    if (variant == 2) for (int i = 0; i < nB; i++) { mask[i] = rng_uniform(&g_rng) < 0.4; if (!mask[i]) c.B[i] = 0; } // B ⊙ M
    if (variant == 3) {
        // the trainer's unload on a float adapter with one slot (attn_proj: in = out = C = 6) holding W, A, B:
        // W += (1-m) s B A, A and B scaled by sqrt(m): the function is preserved up to float rounding
        AdapterConfig ac = {ADAPTER_PLORA, 3, 2.0f, 0, 0.0f, 1 << T_ATTPROJ, INIT_KAIMING, 5};
        Adapter ad;
        char err[256];
        ck_assert_int_eq(adapter_create(&ad, &ac, 1, 6, err, sizeof(err)), 0);
        float Wf[36];
        c.s = ad.scale;
        for (int i = 0; i < nW; i++) c.W[i] = Wf[i] = (float)c.W[i];
        for (int i = 0; i < nA; i++) c.A[i] = adapter_A(&ad, 0)[i] = (float)c.A[i];
        for (int i = 0; i < nB; i++) c.B[i] = adapter_B(&ad, 0)[i] = (float)c.B[i];
        double before = f_adapted(&c);
        ck_assert_int_eq(plora_unload(&ad, single_W, Wf, 0.5f), 0);
        for (int i = 0; i < nW; i++) c.W[i] = Wf[i];
        for (int i = 0; i < nA; i++) c.A[i] = adapter_A(&ad, 0)[i];
        for (int i = 0; i < nB; i++) c.B[i] = adapter_B(&ad, 0)[i];
        ck_assert_int_eq(ad.nhist, 1);
        // (with dropout the adapter sees drop(x) and W sees x: the function is preserved at eval time only)
        // float rounding of W's update and of the scaled factors: ~1e-7 relative on sums of a few O(1) terms
        if (!with_drop) ck_assert_double_le(fabs(f_adapted(&c) - before), 1e-5 * (1 + fabs(before)));
        adapter_free(&ad);
    }
    f_adapted(&c);
    double *dx = calloc(nx, 8), *dA = calloc(nA, 8), *dB = calloc(nB, 8), *du = calloc(c.N * c.r, 8), *fd = calloc(nx > nB ? nx : nB, 8);
    int trains_A = variant == 0 || variant == 3;
    matmul_backward_ref_f64(dx, NULL, NULL, c.w, c.x, c.W, c.N, c.in, c.out);
    lowrank_backward_f64(dx, trains_A ? dA : NULL, dB, du, c.w, c.x, c.u, c.A, c.B, c.drop, c.s, c.N, c.in, c.out, c.r);
    fd_grad(c.x, nx, f_adapted, &c, fd); ck_assert_double_le(max_rel_err(dx, fd, nx), FD_TOL);
    fd_grad(c.B, nB, f_adapted, &c, fd);
    // every entry of dB, masked ones included: their B is 0 but the loss depends on them, and dB there
    // is the true gradient; only the optimizer restricts LoRI-S to the mask (test_frozen_base_and_lori_invariants)
    ck_assert_double_le(max_rel_err(dB, fd, nB), FD_TOL);
    if (variant == 2) { // and the mask's entries, what LoRI-S trains, on their own scale
        double kd[21], kf[21];
        int nk = 0;
        for (int i = 0; i < nB; i++) if (mask[i]) { kd[nk] = dB[i]; kf[nk++] = fd[i]; }
        ck_assert_int_gt(nk, 0);
        ck_assert_double_le(max_rel_err(kd, kf, nk), FD_TOL);
    }
    if (trains_A) { fd_grad(c.A, nA, f_adapted, &c, fd); ck_assert_double_le(max_rel_err(dA, fd, nA), FD_TOL); }
    else for (int i = 0; i < nA; i++) ck_assert(dA[i] == 0.0); // LoRI: A frozen, no gradient computed
    free(c.x); free(c.W); free(c.b); free(c.A); free(c.B); free(c.w); free(c.y); free(c.u); free(c.drop);
    free(dx); free(dA); free(dB); free(du); free(fd);
}
START_TEST(test_fd_adapted_linear) {
    for (int v = 0; v < 4; v++) { check_adapted_linear(v, 0); check_adapted_linear(v, 1); }
}
END_TEST

// The trainer's fast (gemm) adapter path against the reference low-rank functions.
START_TEST(test_adapter_fast_vs_reference) {
    AdapterConfig ac = {ADAPTER_LORA, 4, 8.0f, 0, 0.0f, 15, INIT_KAIMING, 7};
    Adapter ad;
    char err[256];
    ck_assert_int_eq(adapter_create(&ad, &ac, 2, 8, err, sizeof(err)), 0);
    int N = 5;
    adapter_alloc_acts(&ad, N);
    for (size_t i = 0; i < ad.nB; i++) ad.params[ad.nA + i] = 0.1f * (float)urand();
    int s = ad.slot_of[1][T_FC], in = ad.slot_in[s], out = ad.slot_out[s], r = 4;
    float *x = malloc(4 * N * in), *y = calloc(N * out, 4), *dy = malloc(4 * N * out), *dx = calloc(N * in, 4);
    double *xd = malloc(8 * N * in), *yd = calloc(N * out, 8), *ud = calloc(N * r, 8), *dyd = malloc(8 * N * out);
    double *Ad = malloc(8 * r * in), *Bd = malloc(8 * out * r), *dxd = calloc(N * in, 8), *dAd = calloc(r * in, 8), *dBd = calloc(out * r, 8), *dud = calloc(N * r, 8);
    for (int i = 0; i < N * in; i++) xd[i] = x[i] = (float)urand();
    for (int i = 0; i < N * out; i++) dyd[i] = dy[i] = (float)urand();
    for (int i = 0; i < r * in; i++) Ad[i] = adapter_A(&ad, s)[i];
    for (int i = 0; i < out * r; i++) Bd[i] = adapter_B(&ad, s)[i];
    adapter_forward(&ad, 1, T_FC, y, x, N);
    adapter_backward(&ad, 1, T_FC, dx, dy, x, N);
    lowrank_forward_f64(yd, ud, xd, Ad, Bd, NULL, ad.scale, N, in, out, r);
    lowrank_backward_f64(dxd, dAd, dBd, dud, dyd, xd, ud, Ad, Bd, NULL, ad.scale, N, in, out, r);
    double ey = 0, edx = 0, edA = 0, edB = 0;
    for (int i = 0; i < N * out; i++) ey = fmax(ey, fabs(y[i] - yd[i]));
    for (int i = 0; i < N * in; i++) edx = fmax(edx, fabs(dx[i] - dxd[i]));
    for (int i = 0; i < r * in; i++) edA = fmax(edA, fabs(ad.grads[ad.a_off[s] + i] - dAd[i]));
    for (int i = 0; i < out * r; i++) edB = fmax(edB, fabs(ad.grads[ad.nA + ad.b_off[s] + i] - dBd[i]));
    // float vs double on sums of ~32 terms of size ~1: a few float ulps
    ck_assert_double_le(ey, 1e-5); ck_assert_double_le(edx, 1e-5); ck_assert_double_le(edA, 1e-5); ck_assert_double_le(edB, 1e-5);
    adapter_free(&ad);
}
END_TEST

// kernels/fast.h against the reference layers, on awkward shapes (T = 1, B = 1, odd sizes)
static float *frand(size_t n, float scale) {
    float *a = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) a[i] = scale * (float)urand();
    return a;
}
static float max_diff_ff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}
START_TEST(test_fast_layers_vs_reference) {
    // B, T, C, NH; attention's fast version works in blocks of ATT_RB = 48 query rows: T = 1, 48,
    // 49, 130 cross none, one or two block edges; head sizes 1, 4, 5, 11, 16, 20, 32, 64 cross or miss
    // the microkernels' tile widths (8, 16, 32)
    int shapes[][4] = {{1, 1, 8, 1}, {1, 7, 12, 3}, {3, 5, 20, 4}, {2, 17, 33, 3}, {1, 64, 64, 4},
                       {1, 48, 64, 1}, {2, 49, 40, 2}, {1, 130, 60, 3}, {2, 130, 96, 3}, {1, 97, 128, 2}};
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        int B = shapes[k][0], T = shapes[k][1], C = shapes[k][2], NH = shapes[k][3], N = B * T, V = 2 * C + 3, Vp = V + 5;
        size_t att = (size_t)B * NH * T * T;
        // GELU (values to +-6: both tails)
        float *x = frand((size_t)N * C, 6), *o1 = calloc(N * C, 4), *o2 = calloc(N * C, 4), *d = frand((size_t)N * C, 1);
        gelu_forward(o1, x, (size_t)N * C); gelu_forward_fast(o2, x, (size_t)N * C);
        ck_assert_float_le(max_diff_ff(o1, o2, (size_t)N * C), 2e-6f);
        memset(o1, 0, 4 * N * C); memset(o2, 0, 4 * N * C);
        gelu_backward(o1, x, d, (size_t)N * C); gelu_backward_fast(o2, x, d, (size_t)N * C);
        ck_assert_float_le(max_diff_ff(o1, o2, (size_t)N * C), 2e-6f);
        // layernorm forward/backward
        float *w = frand(C, 1), *bb = frand(C, 1), *m1 = calloc(N, 4), *r1 = calloc(N, 4), *m2 = calloc(N, 4), *r2 = calloc(N, 4);
        layernorm_forward(o1, m1, r1, x, w, bb, N, C); layernorm_forward_fast(o2, m2, r2, x, w, bb, N, C);
        ck_assert_float_le(max_diff_ff(o1, o2, (size_t)N * C), 1e-5f);
        float *dw1 = calloc(C, 4), *db1 = calloc(C, 4), *dw2 = calloc(C, 4), *db2 = calloc(C, 4);
        memset(o1, 0, 4 * N * C); memset(o2, 0, 4 * N * C);
        layernorm_backward(o1, dw1, db1, d, x, w, m1, r1, N, C); layernorm_backward_fast(o2, dw2, db2, d, x, w, m1, r1, N, C);
        ck_assert_float_le(max_diff_ff(o1, o2, (size_t)N * C), 1e-5f);
        ck_assert_float_le(max_diff_ff(dw1, dw2, C), 1e-5f);
        ck_assert_float_le(max_diff_ff(db1, db2, C), 1e-5f);
        // attention forward/backward, on every gemm instruction set this machine has (its products
        // run on kernels/gemm.h's microkernels)
        float *qkv = frand((size_t)N * 3 * C, 2), *p1 = calloc(att, 4), *a1 = calloc(att, 4), *p2 = calloc(att, 4), *a2 = calloc(att, 4);
        float *g1 = calloc(N * 3 * C, 4), *g2 = calloc(N * 3 * C, 4), *a1c = malloc(4 * att);
        float *s1 = calloc(att, 4), *s2 = calloc(att, 4); // dpreatt, datt scratch (p1 reused)
        attention_forward(o1, p1, a1, qkv, B, T, C, NH);
        memcpy(a1c, a1, 4 * att);
        attention_backward(g1, p1, s1, d, qkv, a1, B, T, C, NH);
        static const char *isas[] = {"avx512", "avx2", "generic"};
#ifdef OMP
        float *aw = attention_work_alloc(T, C / NH, omp_get_max_threads());
#else
        float *aw = attention_work_alloc(T, C / NH, 1);
#endif
        ck_assert_ptr_nonnull(aw);
        for (int is = 0; is < 3; is++) {
            if (!gemm_isa_supported(isas[is])) continue;
            setenv("GEMM_ISA", isas[is], 1);
            memset(o2, 0, 4 * N * C); memset(a2, 0, 4 * att); memset(g2, 0, 4 * N * 3 * C);
            attention_forward_fast(o2, p2, a2, qkv, B, T, C, NH, aw);
            ck_assert_msg(max_diff_ff(o1, o2, (size_t)N * C) <= 1e-5f, "attention out, %s, B=%d T=%d C=%d NH=%d", isas[is], B, T, C, NH);
            ck_assert_msg(max_diff_ff(a1, a2, att) <= 1e-6f, "attention att, %s, B=%d T=%d C=%d NH=%d", isas[is], B, T, C, NH);
            attention_backward_fast(g2, p2, s2, d, qkv, a1c, B, T, C, NH, aw);
            ck_assert_msg(max_diff_ff(g1, g2, (size_t)N * 3 * C) <= 1e-5f, "attention dinp, %s, B=%d T=%d C=%d NH=%d", isas[is], B, T, C, NH);
        }
        unsetenv("GEMM_ISA");
        free(s1); free(s2); free(a1c); free(aw);
        // softmax + cross-entropy
        float *lg = frand((size_t)N * Vp, 5), *pr1 = calloc(N * Vp, 4), *pr2 = calloc(N * Vp, 4), *l1 = calloc(N, 4), *l2 = calloc(N, 4);
        int *tg = malloc(sizeof(int) * N);
        for (int i = 0; i < N; i++) tg[i] = (i * 7) % V;
        softmax_crossentropy_forward(l1, pr1, lg, tg, N, V, Vp); softmax_crossentropy_forward_fast(l2, pr2, lg, tg, N, V, Vp);
        ck_assert_float_le(max_diff_ff(l1, l2, N), 1e-5f);
        ck_assert_float_le(max_diff_ff(pr1, pr2, (size_t)N * Vp), 1e-6f);
        float *dl1 = calloc(N * Vp, 4), *dl2 = calloc(N * Vp, 4);
        softmax_crossentropy_backward(dl1, l1, pr1, tg, N, V, Vp); softmax_crossentropy_backward_fast(dl2, l1, pr1, tg, N, V, Vp);
        ck_assert_float_le(max_diff_ff(dl1, dl2, (size_t)N * Vp), 1e-6f);
        free(x); free(o1); free(o2); free(d); free(w); free(bb); free(m1); free(r1); free(m2); free(r2);
        free(dw1); free(db1); free(dw2); free(db2); free(qkv); free(p1); free(a1); free(p2); free(a2); free(g1); free(g2);
        free(lg); free(pr1); free(pr2); free(l1); free(l2); free(tg); free(dl1); free(dl2);
    }
}
END_TEST

// ----------------------------------------------------------------------------
// the whole model against PyTorch (float64 reference, dev/gpt2_reference.py)

typedef struct {
    int B, T, nsteps;
    int *x, *y;
    float *logits, loss, *grads, *step_losses, *final_params;
} RefDump;

static void load_ref(RefDump *r, size_t nparams, int Vp) {
    size_t size;
    char err[512];
    uint8_t *buf = read_whole_file(REF_DUMP, &size, err, sizeof(err));
    ck_assert_msg(buf != NULL, "%s", err);
    int32_t h[256];
    memcpy(h, buf, sizeof(h));
    ck_assert_int_eq(h[0], 20240327);
    ck_assert_int_eq(h[1], 3);
    r->B = h[2]; r->T = h[3]; r->nsteps = h[4];
    size_t BT = (size_t)r->B * r->T;
    size_t expect = 1024 + BT * 8 + BT * Vp * 4 + 4 + nparams * 4 + r->nsteps * 4 + nparams * 4;
    ck_assert_uint_eq(size, expect);
    uint8_t *p = buf + 1024;
    r->x = malloc(BT * 4); memcpy(r->x, p, BT * 4); p += BT * 4;
    r->y = malloc(BT * 4); memcpy(r->y, p, BT * 4); p += BT * 4;
    r->logits = malloc(BT * Vp * 4); memcpy(r->logits, p, BT * Vp * 4); p += BT * Vp * 4;
    memcpy(&r->loss, p, 4); p += 4;
    r->grads = malloc(nparams * 4); memcpy(r->grads, p, nparams * 4); p += nparams * 4;
    r->step_losses = malloc(r->nsteps * 4); memcpy(r->step_losses, p, r->nsteps * 4); p += r->nsteps * 4;
    r->final_params = malloc(nparams * 4); memcpy(r->final_params, p, nparams * 4);
    free(buf);
}

// Tolerances (our fp32 vs the float64 reference). fp32 has eps = 6e-8 and the values are O(1);
// sums of up to C=128 terms and two blocks deep cost about a decade, so (measured in brackets):
//   logits: 1e-6 absolute [9e-8];  loss: 1e-6 absolute [<1e-7];
//   gradients: 1e-5 of each tensor's largest |gradient| [2e-7] (cancellation in sums over B*T rows);
//   10 AdamW steps: losses 1e-5 absolute, parameters 1e-5 absolute [1.7e-6]: Adam's normalised step
//   m/sqrt(v) turns tiny gradients' rounding into O(lr) differences, which 10 steps of lr 1e-3 bound.
START_TEST(test_model_vs_pytorch) {
    GPT2 m;
    char err[512];
    ck_assert_msg(gpt2_load_checkpoint(&m, REF_MODEL, err, sizeof(err)) == 0, "%s", err);
    RefDump r;
    load_ref(&r, m.num_parameters, m.config.padded_vocab_size);
    gpt2_setup_training(&m, NULL, r.B, r.T);
    int BT = r.B * r.T, Vp = m.config.padded_vocab_size;
    gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
    double dlog = max_abs_diff_f(m.acts.logits, r.logits, (size_t)BT * Vp);
    printf("vs PyTorch: logits max |diff| %.3g, loss %.7f vs %.7f\n", dlog, m.mean_loss, r.loss);
    ck_assert_double_le(dlog, 1e-6);
    ck_assert_double_le(fabs(m.mean_loss - r.loss), 1e-6);
    gpt2_zero_grad(&m);
    gpt2_backward(&m, NULL, 1.0f / BT);
    size_t off = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        size_t n = m.param_sizes[i];
        double d = max_abs_diff_f(m.grads_memory + off, r.grads + off, n), sc = max_abs_f(r.grads + off, n);
        printf("  grad %-9s max |diff| %.3g (scale %.3g)\n", param_names[i], d, sc);
        ck_assert_msg(d <= 1e-5 * sc + 1e-12, "gradient of %s: max |diff| %g vs scale %g", param_names[i], d, sc);
        off += n;
    }
    // 10 AdamW steps: lr 1e-3, wd 0.1 on 2-D weights, clip 1.0 (the reference's settings)
    AdamW opt;
    adamw_setup(&opt, &m);
    for (int s = 0; s < r.nsteps; s++) {
        gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
        printf("  step %d loss %.6f vs %.6f\n", s, m.mean_loss, r.step_losses[s]);
        ck_assert_double_le(fabs(m.mean_loss - r.step_losses[s]), 1e-5);
        gpt2_zero_grad(&m);
        gpt2_backward(&m, NULL, 1.0f / BT);
        float norm = adamw_grad_norm(&opt), coef = 1.0f / (norm + 1e-6f);
        adamw_step(&opt, 1e-3f, 0.1f, coef < 1 ? coef : 1);
    }
    double dp = max_abs_diff_f(m.params_memory, r.final_params, m.num_parameters);
    printf("  params after %d steps: max |diff| %.3g\n", r.nsteps, dp);
    ck_assert_double_le(dp, 1e-5);
    adamw_free(&opt);
    gpt2_free(&m);
}
END_TEST

// Gradient accumulation: one backward per half of the batch, each weighted 1/(B*T), must give the
// gradient of the whole batch (the activation gradients of one micro-batch must not leak into the next).
START_TEST(test_grad_accumulation_matches_whole_batch) {
    GPT2 m;
    char err[512];
    ck_assert(gpt2_load_checkpoint(&m, REF_MODEL, err, sizeof(err)) == 0);
    RefDump r;
    load_ref(&r, m.num_parameters, m.config.padded_vocab_size);
    ck_assert_int_ge(r.B, 2);
    int BT = r.B * r.T, h = r.B / 2, rows[2] = {h, r.B - h};
    gpt2_setup_training(&m, NULL, r.B, r.T);
    gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
    gpt2_zero_grad(&m);
    gpt2_backward(&m, NULL, 1.0f / BT);
    float *g_whole = malloc(m.num_parameters * 4);
    memcpy(g_whole, m.grads_memory, m.num_parameters * 4);
    gpt2_zero_grad(&m);
    for (int k = 0, row = 0; k < 2; row += rows[k], k++) {
        gpt2_setup_training(&m, NULL, rows[k], r.T);
        gpt2_forward(&m, r.x + row * r.T, r.y + row * r.T, NULL, rows[k], r.T);
        gpt2_backward(&m, NULL, 1.0f / BT);
    }
    size_t off = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        size_t n = m.param_sizes[i];
        double d = max_abs_diff_f(m.grads_memory + off, g_whole + off, n), sc = max_abs_f(g_whole + off, n);
        ck_assert_msg(d <= 1e-5 * sc + 1e-12, "accumulated gradient of %s: max |diff| %g vs scale %g", param_names[i], d, sc);
        off += n;
    }
    free(g_whole);
    gpt2_free(&m);
}
END_TEST

START_TEST(test_reference_script_reproduces) {
    // the committed dump must be what dev/gpt2_reference.py produces (needs Debian's python3-torch)
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "\n*** SKIP: dev/gpt2_reference.py --check did NOT run: /usr/bin/python3 has no torch "
                        "(apt-get install python3-torch); the committed dump %s is used unverified ***\n\n", REF_DUMP);
        return;
    }
    ck_assert_int_eq(system("/usr/bin/python3 dev/gpt2_reference.py --check"), 0);
}
END_TEST

START_TEST(test_fast_vs_reference_kernels_model) {
    GPT2 m;
    char err[512];
    ck_assert(gpt2_load_checkpoint(&m, REF_MODEL, err, sizeof(err)) == 0);
    RefDump r;
    load_ref(&r, m.num_parameters, m.config.padded_vocab_size);
    gpt2_setup_training(&m, NULL, r.B, r.T);
    int BT = r.B * r.T;
    float *g_fast = malloc(m.num_parameters * 4);
    for (int pass = 0; pass < 2; pass++) {
        g_use_ref_kernels = pass;
        gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
        gpt2_zero_grad(&m);
        gpt2_backward(&m, NULL, 1.0f / BT);
        if (pass == 0) memcpy(g_fast, m.grads_memory, m.num_parameters * 4);
    }
    g_use_ref_kernels = 0;
    ck_assert_double_le(max_abs_diff_f(g_fast, m.grads_memory, m.num_parameters), 1e-5);
    free(g_fast);
    gpt2_free(&m);
}
END_TEST

// ----------------------------------------------------------------------------
// llm.c file formats

START_TEST(test_checkpoint_roundtrip_and_bf16) {
    GPT2 m, m2, mb;
    char err[512];
    ck_assert(gpt2_load_checkpoint(&m, REF_MODEL, err, sizeof(err)) == 0);
    const char *path = "/tmp/test_gpt2_ckpt.bin";
    ck_assert(gpt2_write_checkpoint(&m.config, m.params_memory, m.num_parameters, path, err, sizeof(err)) == 0);
    // byte for byte the same file as the reference checkpoint (llm.c's layout)
    size_t s1, s2;
    uint8_t *a = read_whole_file(REF_MODEL, &s1, err, sizeof(err)), *b = read_whole_file(path, &s2, err, sizeof(err));
    ck_assert_uint_eq(s1, s2);
    ck_assert(memcmp(a, b, s1) == 0);
    ck_assert(gpt2_load_checkpoint(&m2, path, err, sizeof(err)) == 0);
    ck_assert(memcmp(m.params_memory, m2.params_memory, m.num_parameters * 4) == 0);
    // version 5 (bf16): every value within bf16's rounding (relative 2^-8) of the fp32 one
    ck_assert_msg(gpt2_load_checkpoint(&mb, REF_MODEL_BF16, err, sizeof(err)) == 0, "%s", err);
    for (size_t i = 0; i < m.num_parameters; i++)
        ck_assert(fabsf(mb.params_memory[i] - m.params_memory[i]) <= fabsf(m.params_memory[i]) * (1.0f / 256) + 1e-30f);
    ck_assert(mb.params_memory[0] == bf16_to_float(float_to_bf16(m.params_memory[0])));
    free(a); free(b);
    gpt2_free(&m); gpt2_free(&m2); gpt2_free(&mb);
}
END_TEST

static void write_shard(const char *path, int32_t magic, int32_t version, int32_t claimed, const uint16_t *tok, int n) {
    FILE *f = fopen(path, "wb");
    int32_t h[256] = {0};
    h[0] = magic; h[1] = version; h[2] = claimed;
    fwrite(h, 4, 256, f);
    fwrite(tok, 2, (size_t)n, f);
    fclose(f);
}

START_TEST(test_bad_inputs_refused) {
    uint16_t tok[100];
    for (int i = 0; i < 100; i++) tok[i] = (uint16_t)(i % 50);
    char err[512];
    Shard s;
    write_shard("/tmp/tg_ok.bin", 20240520, 1, 100, tok, 100);
    ck_assert_int_eq(shard_load(&s, "/tmp/tg_ok.bin", 50, err, sizeof(err)), 0);
    shard_free(&s);
    write_shard("/tmp/tg_magic.bin", 12345, 1, 100, tok, 100);
    ck_assert_int_eq(shard_load(&s, "/tmp/tg_magic.bin", 50, err, sizeof(err)), -1);
    ck_assert(strstr(err, "tg_magic.bin") && strstr(err, "magic"));
    write_shard("/tmp/tg_ver.bin", 20240520, 7, 100, tok, 100);
    ck_assert_int_eq(shard_load(&s, "/tmp/tg_ver.bin", 50, err, sizeof(err)), -1);
    ck_assert(strstr(err, "version"));
    write_shard("/tmp/tg_trunc.bin", 20240520, 1, 100, tok, 60);
    ck_assert_int_eq(shard_load(&s, "/tmp/tg_trunc.bin", 50, err, sizeof(err)), -1);
    ck_assert(strstr(err, "truncated"));
    tok[42] = 50;
    write_shard("/tmp/tg_vocab.bin", 20240520, 1, 100, tok, 100);
    ck_assert_int_eq(shard_load(&s, "/tmp/tg_vocab.bin", 50, err, sizeof(err)), -1);
    ck_assert(strstr(err, "vocab") && strstr(err, "position 42"));
    // the data loader reports the pattern that matches nothing
    DataLoader dl;
    ck_assert_int_eq(dataloader_init(&dl, "/tmp/no_such_dir_x/*.bin", 2, 8, 50, 0, 0), -1);
    ck_assert(strstr(dl.err, "no data shard matches"));
    dataloader_free(&dl);
    // model files: bad magic, truncated
    GPT2 m;
    FILE *f = fopen("/tmp/tg_model.bin", "wb");
    int32_t h[256] = {20240326, 3, 16, 61, 2, 4, 32, 64};
    fwrite(h, 4, 256, f);
    fclose(f);
    ck_assert_int_eq(gpt2_load_checkpoint(&m, "/tmp/tg_model.bin", err, sizeof(err)), -1);
    ck_assert(strstr(err, "truncated or corrupt"));
    h[0] = 1;
    f = fopen("/tmp/tg_model.bin", "wb"); fwrite(h, 4, 256, f); fclose(f);
    ck_assert_int_eq(gpt2_load_checkpoint(&m, "/tmp/tg_model.bin", err, sizeof(err)), -1);
    ck_assert(strstr(err, "magic"));
}
END_TEST

START_TEST(test_dataloader_order_and_mask) {
    uint16_t tok[101];
    for (int i = 0; i < 101; i++) tok[i] = (uint16_t)i;
    write_shard("/tmp/tg_dl.bin", 20240520, 1, 101, tok, 101);
    // a loss mask: only odd positions count
    FILE *f = fopen("/tmp/tg_dl.lossmask", "wb");
    int32_t h[256] = {20240522, 1, 101};
    fwrite(h, 4, 256, f);
    for (int i = 0; i < 101; i++) fputc(i % 2, f);
    fclose(f);
    DataLoader dl;
    ck_assert_int_eq(dataloader_init(&dl, "/tmp/tg_dl.bin", 2, 10, 200, 0, 0), 0);
    ck_assert_int_eq(dataloader_next_batch(&dl), 0);
    for (int t = 0; t < 10; t++) {
        ck_assert_int_eq(dl.inputs[t], t);
        ck_assert_int_eq(dl.targets[t], t + 1);
        ck_assert_int_eq(dl.mask[t], (t + 1) % 2);
        ck_assert_int_eq(dl.inputs[10 + t], 10 + t);
    }
    dataloader_free(&dl);
    // shuffled: every row of an epoch exactly once, reproducible from the seed
    DataLoader a, b;
    ck_assert_int_eq(dataloader_init(&a, "/tmp/tg_dl.bin", 1, 10, 200, 1, 99), 0);
    ck_assert_int_eq(dataloader_init(&b, "/tmp/tg_dl.bin", 1, 10, 200, 1, 99), 0);
    int seen[10] = {0};
    for (int i = 0; i < 10; i++) {
        dataloader_next_batch(&a); dataloader_next_batch(&b);
        ck_assert_int_eq(a.inputs[0], b.inputs[0]);
        seen[a.inputs[0] / 10]++;
    }
    for (int i = 0; i < 10; i++) ck_assert_int_eq(seen[i], 1);
    dataloader_free(&a); dataloader_free(&b);
    remove("/tmp/tg_dl.lossmask");
}
END_TEST

// ----------------------------------------------------------------------------
// adapters in the model

static GPT2 tiny_model(void) {
    GPT2 m;
    char err[512];
    ck_assert(gpt2_load_checkpoint(&m, REF_MODEL, err, sizeof(err)) == 0);
    return m;
}

static Adapter make_adapter(AdapterKind kind, const GPT2 *m, int targets) {
    AdapterConfig ac = {kind, 4, 8.0f, 0, 0.0f, targets, INIT_KAIMING, 77};
    Adapter ad;
    char err[256];
    ck_assert_int_eq(adapter_create(&ad, &ac, m->config.num_layers, m->config.channels, err, sizeof(err)), 0);
    return ad;
}

START_TEST(test_adapter_zero_B_is_base) {
    GPT2 m = tiny_model();
    RefDump r;
    load_ref(&r, m.num_parameters, m.config.padded_vocab_size);
    gpt2_setup_training(&m, NULL, r.B, r.T);
    gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
    size_t n = (size_t)r.B * r.T * m.config.padded_vocab_size;
    float *base = malloc(n * 4);
    memcpy(base, m.acts.logits, n * 4);
    for (int kind = ADAPTER_LORA; kind <= ADAPTER_PLORA; kind++) {
        Adapter ad = make_adapter((AdapterKind)kind, &m, 15);
        gpt2_setup_training(&m, &ad, r.B, r.T);
        gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
        ck_assert_msg(memcmp(base, m.acts.logits, n * 4) == 0, "B = 0 must give exactly the base logits");
        adapter_free(&ad);
    }
    free(base);
    gpt2_free(&m);
}
END_TEST

START_TEST(test_merge_unmerge) {
    GPT2 m = tiny_model();
    RefDump r;
    load_ref(&r, m.num_parameters, m.config.padded_vocab_size);
    Adapter ad = make_adapter(ADAPTER_LORA, &m, 15);
    for (size_t i = 0; i < ad.nB; i++) ad.params[ad.nA + i] = 0.05f * (float)urand();
    gpt2_setup_training(&m, &ad, r.B, r.T);
    gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
    size_t n = (size_t)r.B * r.T * m.config.padded_vocab_size;
    float *unmerged = malloc(n * 4), *orig = malloc(m.num_parameters * 4);
    memcpy(unmerged, m.acts.logits, n * 4);
    memcpy(orig, m.params_memory, m.num_parameters * 4);
    for (int s = 0; s < ad.nslots; s++) adapter_fold(&ad, s, gpt2_slot_weight(&m, ad.slot_layer[s], ad.slot_target[s]), 1.0f);
    m.adapter = NULL; // the merged model alone
    gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
    double d = max_abs_diff_f(unmerged, m.acts.logits, n);
    printf("merged vs unmerged logits: max |diff| %.3g\n", d);
    ck_assert_double_le(d, 1e-5); // O(1) logits, float sums in a different order
    for (int s = 0; s < ad.nslots; s++) adapter_fold(&ad, s, gpt2_slot_weight(&m, ad.slot_layer[s], ad.slot_target[s]), -1.0f);
    ck_assert_double_le(max_abs_diff_f(orig, m.params_memory, m.num_parameters), 1e-7); // unmerge: base back to float rounding
    adapter_free(&ad);
    gpt2_free(&m);
}
END_TEST

// The adapted linears' two executions (lora/adapter.h): merged (base product on W + s B A) and
// unmerged (separate low-rank products) give the same loss, logits and adapter gradients, for
// LoRA (A and B train) and LoRI (A frozen), the backward running through every adapted layer.
START_TEST(test_adapter_merged_vs_unmerged) {
    GPT2 m = tiny_model();
    RefDump r;
    load_ref(&r, m.num_parameters, m.config.padded_vocab_size);
    AdapterKind kinds[2] = {ADAPTER_LORA, ADAPTER_LORI};
    for (int k = 0; k < 2; k++) {
        Adapter ad = make_adapter(kinds[k], &m, 15);
        for (size_t i = 0; i < ad.nB; i++) ad.params[ad.nA + i] = 0.05f * (float)urand();
        gpt2_setup_training(&m, &ad, r.B, r.T);
        size_t n = (size_t)r.B * r.T * m.config.padded_vocab_size, ng = ad.nA + ad.nB;
        float *logits[2], *grads[2], loss[2];
        for (int merge = 0; merge < 2; merge++) {
            ad.merge = merge;
            ck_assert_int_eq(adapter_alloc_acts(&ad, r.B * r.T), 0); // the merged weights, for the new policy
            gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
            gpt2_zero_grad(&m);
            gpt2_backward(&m, NULL, 1.0f / (r.B * r.T));
            for (int s = 0; s < ad.nslots; s++) ck_assert_int_eq(ad.merged[s], merge);
            loss[merge] = m.mean_loss;
            logits[merge] = malloc(n * 4); memcpy(logits[merge], m.acts.logits, n * 4);
            grads[merge] = malloc(ng * 4); memcpy(grads[merge], ad.grads, ng * 4);
        }
        double dl = max_abs_diff_f(logits[0], logits[1], n), dg = max_abs_diff_f(grads[0], grads[1], ng);
        double sg = max_abs_f(grads[0], ng);
        printf("%s merged vs unmerged: loss %.3g, logits %.3g, adapter grads %.3g (scale %.3g)\n",
               variant_of(kinds[k])->name, fabs(loss[0] - loss[1]), dl, dg, sg);
        ck_assert_double_le(fabs(loss[0] - loss[1]), 1e-6);
        ck_assert_double_le(dl, 1e-5);                // O(1) logits, as in test_merge_unmerge
        ck_assert_double_le(dg, 1e-5 * sg + 1e-12);   // as the model's gradients against PyTorch
        for (int i = 0; i < 2; i++) { free(logits[i]); free(grads[i]); }
        m.adapter = NULL;
        adapter_free(&ad);
    }
    gpt2_free(&m);
}
END_TEST

// trains `steps` AdamW steps on the reference batch
static void train_steps(GPT2 *m, AdamW *opt, const RefDump *r, int steps, float lr, float wd) {
    for (int s = 0; s < steps; s++) {
        gpt2_forward(m, r->x, r->y, NULL, r->B, r->T);
        gpt2_zero_grad(m);
        gpt2_backward(m, NULL, 1.0f / (r->B * r->T));
        adamw_step(opt, lr, wd, 1.0f);
    }
}

START_TEST(test_frozen_base_and_lori_invariants) {
    GPT2 m = tiny_model();
    RefDump r;
    load_ref(&r, m.num_parameters, m.config.padded_vocab_size);
    float *orig = malloc(m.num_parameters * 4);
    memcpy(orig, m.params_memory, m.num_parameters * 4);
    // LoRI-D, then a model-wise top-10% mask, then LoRI-S with weight decay on
    Adapter ad = make_adapter(ADAPTER_LORI, &m, 15);
    float *A0 = malloc(ad.nA * 4);
    memcpy(A0, ad.params, ad.nA * 4);
    gpt2_setup_training(&m, &ad, r.B, r.T);
    ck_assert_ptr_null(m.grads_memory); // no gradient buffers for a frozen base
    AdamW opt;
    adamw_setup(&opt, &m);
    ck_assert_uint_eq(opt.total, ad.nB); // LoRI-D: only B has optimizer state
    long long calls0 = g_base_weight_grad_calls;
    float first = 0;
    gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
    first = m.mean_loss;
    train_steps(&m, &opt, &r, 30, 1e-2f, 0.0f);
    gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
    ck_assert_float_lt(m.mean_loss, first); // it learns
    uint8_t *mask = adapter_make_mask(&ad, MASK_MODEL, 0.9f, 0);
    size_t kept = 0;
    for (size_t i = 0; i < ad.nB; i++) kept += mask[i];
    ck_assert_uint_eq(kept, (size_t)llround(0.1 * ad.nB));
    memset(ad.params + ad.nA, 0, ad.nB * 4);
    adapter_set_mask(&ad, mask, 1);
    adamw_free(&opt);
    adamw_setup(&opt, &m);
    ck_assert_uint_eq(opt.total, kept); // trainable count = the mask's count
    ck_assert_uint_eq(adapter_num_trainable(&ad), kept);
    train_steps(&m, &opt, &r, 100, 1e-2f, 0.1f);
    size_t nonzero = 0;
    for (size_t i = 0; i < ad.nB; i++) {
        if (!mask[i]) ck_assert_msg(ad.params[ad.nA + i] == 0.0f && !signbit(ad.params[ad.nA + i]), "masked B entry %zu is not exactly 0.0", i);
        else nonzero += ad.params[ad.nA + i] != 0.0f;
    }
    ck_assert_uint_gt(nonzero, kept / 2);
    ck_assert_msg(memcmp(A0, ad.params, ad.nA * 4) == 0, "LoRI's A must be bit-identical after training");
    ck_assert_msg(memcmp(orig, m.params_memory, m.num_parameters * 4) == 0, "the frozen base must be bit-identical");
    ck_assert_int_eq(g_base_weight_grad_calls, calls0); // no dW = dy^T x for the base, ever
    // and the same for LoRA on a subset of targets: the backward stops below the lowest adapted layer
    Adapter la = make_adapter(ADAPTER_LORA, &m, 1 << T_FCPROJ);
    gpt2_setup_training(&m, &la, r.B, r.T);
    ck_assert_int_eq(m.lowest_trainable, T_FCPROJ);
    AdamW o2;
    adamw_setup(&o2, &m);
    ck_assert_uint_eq(o2.total, la.nA + la.nB);
    train_steps(&m, &o2, &r, 5, 1e-2f, 0.1f);
    ck_assert(memcmp(orig, m.params_memory, m.num_parameters * 4) == 0);
    ck_assert_int_eq(g_base_weight_grad_calls, calls0);
    adamw_free(&opt); adamw_free(&o2);
    adapter_free(&ad); adapter_free(&la);
    free(mask); free(A0); free(orig);
    gpt2_free(&m);
}
END_TEST

// numerical rank by Gaussian elimination with full pivoting, in double
static int numerical_rank(const double *M, int rows, int cols, double rel_tol) {
    double *a = malloc(sizeof(double) * rows * cols);
    memcpy(a, M, sizeof(double) * rows * cols);
    double maxabs = 0;
    for (int i = 0; i < rows * cols; i++) maxabs = fmax(maxabs, fabs(a[i]));
    int rank = 0;
    int *used_r = calloc(rows, sizeof(int)), *used_c = calloc(cols, sizeof(int));
    for (;;) {
        int pr = -1, pc = -1;
        double best = rel_tol * maxabs;
        for (int i = 0; i < rows; i++) if (!used_r[i]) for (int j = 0; j < cols; j++)
            if (!used_c[j] && fabs(a[i * cols + j]) > best) { best = fabs(a[i * cols + j]); pr = i; pc = j; }
        if (pr < 0) break;
        used_r[pr] = used_c[pc] = 1;
        rank++;
        for (int i = 0; i < rows; i++) {
            if (used_r[i]) continue;
            double f = a[i * cols + pc] / a[pr * cols + pc];
            for (int j = 0; j < cols; j++) a[i * cols + j] -= f * a[pr * cols + j];
        }
    }
    free(a); free(used_r); free(used_c);
    return rank;
}

// PLoRA's stage boundary through the CPU backend's unload (lora/adapter.h + the moments reset):
// m = 0 redraws A and zeroes B; m > 0 keeps A (scaled, not redrawn): by sqrt(m) (ours, the function is
// preserved) or by m (the write-up's: the model becomes base + (1 - m + m^2) s B A); the moments
// and the bias correction restart at every unload; every stage lands in the history.
START_TEST(test_plora_unload) {
    GPT2 m = tiny_model();
    RefDump r;
    load_ref(&r, m.num_parameters, m.config.padded_vocab_size);
    float *orig = malloc(m.num_parameters * 4), *pre = malloc(m.num_parameters * 4);
    memcpy(orig, m.params_memory, m.num_parameters * 4);
    Adapter ad = make_adapter(ADAPTER_PLORA, &m, 15);
    gpt2_setup_training(&m, &ad, r.B, r.T);
    AdamW opt;
    adamw_setup(&opt, &m);
    Backend be = cpu_backend;
    be.model = &m; be.opt = &opt;
    size_t n = (size_t)r.B * r.T * m.config.padded_vocab_size, np = ad.nA + ad.nB;
    float *before = malloc(n * 4), *want = malloc(n * 4), *p0 = malloc(np * 4);
    float ms[3] = {0.0f, 0.5f, 0.5f};
    PLoRAMomentum modes[3] = {PLORA_SQRT, PLORA_SQRT, PLORA_WRITEUP};
    for (int stage = 0; stage < 3; stage++) {
        float mo = ms[stage];
        train_steps(&m, &opt, &r, 20, 1e-2f, 0.0f);
        ck_assert_int_gt(opt.t, 0);
        gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
        memcpy(before, m.acts.logits, n * 4);
        memcpy(p0, ad.params, np * 4);
        memcpy(pre, m.params_memory, m.num_parameters * 4);
        if (modes[stage] == PLORA_WRITEUP) { // the expected model: base + (1 - m + m^2) s B A, without the adapter
            for (int s = 0; s < ad.nslots; s++) adapter_fold(&ad, s, gpt2_slot_weight(&m, ad.slot_layer[s], ad.slot_target[s]), 1.0f - mo + mo * mo);
            m.adapter = NULL;
            gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
            memcpy(want, m.acts.logits, n * 4);
            m.adapter = &ad;
            memcpy(m.params_memory, pre, m.num_parameters * 4);
        }
        ad.plora_mode = modes[stage];
        be.plora_unload(&be, mo);
        ck_assert_int_eq(ad.stage, stage + 1);
        ck_assert_int_eq(ad.nhist, stage + 1);
        ck_assert_int_eq(opt.t, 0);
        for (size_t i = 0; i < opt.total; i++) ck_assert(opt.m[i] == 0.0f && opt.v[i] == 0.0f);
        if (mo == 0) {
            for (size_t i = 0; i < ad.nB; i++) ck_assert(ad.params[ad.nA + i] == 0.0f);
            ck_assert_msg(memcmp(p0, ad.params, ad.nA * 4) != 0, "m = 0: A must be redrawn");
        } else {
            float k = modes[stage] == PLORA_WRITEUP ? mo : sqrtf(mo);
            for (size_t i = 0; i < np; i++) ck_assert_msg(ad.params[i] == k * p0[i], "m > 0: A and B are scaled by %g, not redrawn", k);
        }
        gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
        double d = max_abs_diff_f(modes[stage] == PLORA_WRITEUP ? want : before, m.acts.logits, n);
        double moved = max_abs_diff_f(before, m.acts.logits, n);
        printf("PLoRA unload (momentum %g, %s): logits max |diff| %.3g against the expected model (%.3g from before)\n", mo,
               plora_momentum_names[modes[stage]], d, moved);
        ck_assert_double_le(d, 1e-5); // float rounding
        if (modes[stage] == PLORA_WRITEUP) ck_assert_double_gt(moved, 1e-3); // the write-up's unload changes the function
    }
    // the accumulated update of a layer has rank above r after the stages
    int C = m.config.channels, rows = 3 * C;
    double *dW = malloc(sizeof(double) * rows * C);
    for (int i = 0; i < rows * C; i++) dW[i] = (double)m.params.qkvw[i] - (double)(orig + (m.params.qkvw - m.params_memory))[i];
    int rank = numerical_rank(dW, rows, C, 1e-4);
    printf("PLoRA: rank of the accumulated qkv update after 3 stages: %d (r = %d)\n", rank, ad.cfg.rank);
    ck_assert_int_gt(rank, ad.cfg.rank);
    free(dW); free(before); free(want); free(p0); free(orig); free(pre);
    adamw_free(&opt); adapter_free(&ad);
    gpt2_free(&m);
}
END_TEST

// The KV-cache inference path (infer_step: its own matvec, attention over the cache, GELU; what
// every sample and exact-match score runs on) against the full forward (gpt2_forward), at every
// position of every row: the base; LoRA (trained-looking B, all four targets) with the forward's
// adapter unmerged (ad.merge = 0) and merged (1), the KV path on the effective parameters (the
// adapter folded in, as sampling and scoring use). Then gpt2_generate's greedy tokens are the
// argmax of the full forward over prompt + generation.
START_TEST(test_kv_cache_matches_forward) {
    GPT2 m = tiny_model();
    RefDump r;
    load_ref(&r, m.num_parameters, m.config.padded_vocab_size);
    GPT2Config c = m.config;
    int V = c.vocab_size, Vp = c.padded_vocab_size;
    Adapter ad = make_adapter(ADAPTER_LORA, &m, 15);
    for (size_t i = 0; i < ad.nB; i++) ad.params[ad.nA + i] = 0.1f * (float)urand();
    float *scratch = NULL;
    InferState st;
    infer_init(&st, &c);
    for (int v = 0; v < 3; v++) {
        gpt2_setup_training(&m, v ? &ad : NULL, r.B, r.T);
        if (v) { ad.merge = v - 1; ad.training = 0; ck_assert_int_eq(adapter_alloc_acts(&ad, r.B * r.T), 0); }
        gpt2_forward(&m, r.x, NULL, NULL, r.B, r.T);
        if (v) for (int s = 0; s < ad.nslots; s++) ck_assert_int_eq(ad.merged[s], v - 1);
        ParameterTensors p;
        point_parameters(&p, (float *)gpt2_effective_params(&m, &scratch), m.param_sizes);
        double d = 0, mx = 0;
        for (int b = 0; b < r.B; b++) {
            st.len = 0;
            for (int t = 0; t < r.T; t++) {
                infer_step(&c, &p, &st, r.x[b * r.T + t], 1);
                const float *full = m.acts.logits + ((size_t)b * r.T + t) * Vp;
                for (int k = 0; k < V; k++) { d = fmax(d, fabs(st.logits[k] - full[k])); mx = fmax(mx, fabs(full[k])); }
            }
        }
        printf("KV cache vs full forward (%s): logits max |diff| %.3g (max |logit| %.3g) over %d x %d positions\n",
               v == 0 ? "base" : v == 1 ? "LoRA unmerged" : "LoRA merged", d, mx, r.B, r.T);
        ck_assert_double_le(d, 1e-6); // logits below 1, float sums in another order (measured ~1.4e-7)
        if (v == 2) ck_assert_double_gt(max_abs_diff_f(p.qkvw, m.params.qkvw, (size_t)3 * c.channels * c.channels), 0); // the adapter is in
    }
    // greedy generation = the argmax of the full forward at each generated position
    ParameterTensors p;
    point_parameters(&p, (float *)gpt2_effective_params(&m, &scratch), m.param_sizes);
    int np = 4, gen[64], seq[64];
    uint64_t rng = 0;
    int ng = gpt2_generate(&c, &p, &st, r.x, np, c.max_seq_len - np, 0.0f, &rng, NULL, gen);
    ck_assert_int_eq(ng, c.max_seq_len - np); // no stop set: up to the context's end
    for (int i = 0; i < np; i++) seq[i] = r.x[i];
    for (int i = 0; i < ng; i++) seq[np + i] = gen[i];
    int len = np + ng - 1;
    gpt2_setup_training(&m, &ad, 1, len);
    gpt2_forward(&m, seq, NULL, NULL, 1, len);
    for (int k = 0; k < ng; k++) {
        const float *lg = m.acts.logits + (size_t)(np - 1 + k) * Vp;
        int best = 0;
        for (int i = 1; i < V; i++) if (lg[i] > lg[best]) best = i;
        ck_assert_msg(gen[k] == best, "generated token %d is %d, the full forward's argmax %d", k, gen[k], best);
    }
    infer_free(&st);
    free(scratch);
    m.adapter = NULL;
    adapter_free(&ad);
    gpt2_free(&m);
}
END_TEST

// --ref-kernels covers the adapter: the adapted linears then run kernels/layers.h's lowrank_forward /
// lowrank_backward (counted), never merged, and give the fast path's loss and adapter gradients, with
// dropout (the same draws) and for LoRI (A frozen).
START_TEST(test_ref_kernels_adapter_path) {
    GPT2 m = tiny_model();
    RefDump r;
    load_ref(&r, m.num_parameters, m.config.padded_vocab_size);
    AdapterKind kinds[2] = {ADAPTER_LORA, ADAPTER_LORI};
    for (int k = 0; k < 2; k++) {
        Adapter ad = make_adapter(kinds[k], &m, 15);
        for (size_t i = 0; i < ad.nB; i++) ad.params[ad.nA + i] = 0.05f * (float)urand();
        ad.cfg.dropout = 0.2f;
        gpt2_setup_training(&m, &ad, r.B, r.T);
        ck_assert_ptr_nonnull(ad.drop);
        ad.training = 1;
        size_t ng = ad.nA + ad.nB;
        float *g[2], loss[2];
        for (int pass = 0; pass < 2; pass++) {
            g_use_ref_kernels = pass;
            ad.drop_rng = 99;
            ad.merge = -1;
            long long calls = g_ref_lowrank_calls;
            gpt2_forward(&m, r.x, r.y, NULL, r.B, r.T);
            gpt2_zero_grad(&m);
            gpt2_backward(&m, NULL, 1.0f / (r.B * r.T));
            // forward and backward of every slot through the reference in pass 1, none in pass 0
            ck_assert_int_eq(g_ref_lowrank_calls - calls, pass ? 2 * ad.nslots : 0);
            if (pass) for (int s = 0; s < ad.nslots; s++) ck_assert_int_eq(ad.merged[s], 0);
            loss[pass] = m.mean_loss;
            g[pass] = malloc(ng * 4); memcpy(g[pass], ad.grads, ng * 4);
        }
        g_use_ref_kernels = 0;
        double dg = max_abs_diff_f(g[0], g[1], ng), sg = max_abs_f(g[0], ng);
        printf("%s with dropout, fast vs --ref-kernels: loss %.3g, adapter grads %.3g (scale %.3g)\n",
               variant_of(kinds[k])->name, fabs(loss[0] - loss[1]), dg, sg);
        ck_assert_double_le(fabs(loss[0] - loss[1]), 1e-6);
        ck_assert_double_le(dg, 1e-5 * sg + 1e-12); // as test_adapter_merged_vs_unmerged
        free(g[0]); free(g[1]);
        m.adapter = NULL;
        adapter_free(&ad);
    }
    gpt2_free(&m);
}
END_TEST

START_TEST(test_overfit_one_batch) {
    // a tiny model from random init drives one batch's loss to near zero (full fine-tuning)
    GPT2 m;
    GPT2Config c;
    ck_assert_int_eq(parse_descriptor("L=2,C=32,H=2,V=64,T=16", &c), 0);
    ck_assert_int_eq(c.padded_vocab_size, 64);
    gpt2_init_random(&m, c, 1);
    int B = 2, T = 16, x[32], y[32];
    uint64_t rng = 5;
    for (int i = 0; i < 32; i++) { x[i] = (int)(splitmix64(&rng) % 64); y[i] = (int)(splitmix64(&rng) % 64); }
    gpt2_setup_training(&m, NULL, B, T);
    AdamW opt;
    adamw_setup(&opt, &m);
    RefDump r = {.B = B, .T = T, .x = x, .y = y};
    train_steps(&m, &opt, &r, 300, 3e-3f, 0.0f);
    gpt2_forward(&m, x, y, NULL, B, T);
    printf("overfit one batch: loss %.4f after 300 steps\n", m.mean_loss);
    ck_assert_float_lt(m.mean_loss, 0.05f);
    adamw_free(&opt);
    gpt2_free(&m);
}
END_TEST

START_TEST(test_descriptors_and_schedules) {
    GPT2Config c;
    ck_assert_int_eq(parse_descriptor("d12", &c), 0);
    ck_assert_int_eq(c.padded_vocab_size, 50304);
    size_t sizes[16], n = 0;
    fill_in_parameter_sizes(sizes, c);
    for (int i = 0; i < 16; i++) n += sizes[i];
    ck_assert_uint_eq(n, 124475904); // GPT-2 124M with padding, as llm.c
    ck_assert_int_eq(parse_descriptor("L=4,C=128,H=4,V=257,T=128", &c), 0);
    ck_assert_int_eq(c.padded_vocab_size, 320);
    ck_assert_int_eq(parse_descriptor("L=4,C=130,H=4", &c), -1); // C not a multiple of H
    ck_assert_int_eq(parse_descriptor("nonsense", &c), -1);
    ck_assert_float_eq(get_lr(SCHED_CONSTANT, 1.0f, 5, 0, 10, 0.0f), 1.0f);
    ck_assert_float_eq(get_lr(SCHED_COSINE, 1.0f, 0, 2, 10, 0.0f), 0.5f); // warmup (step+1)/warmup
    ck_assert_float_eq_tol(get_lr(SCHED_COSINE, 1.0f, 10, 2, 10, 0.1f), 0.1f, 1e-6f);
    ck_assert_float_eq_tol(get_lr(SCHED_LINEAR, 1.0f, 6, 2, 10, 0.0f), 0.5f, 1e-6f);
}
END_TEST

// AdamW's hyperparameters (--beta1, --beta2, --eps) enter the step as PyTorch's formula says,
// recomputed here in double for two steps of one value; the defaults are llm.c's CPU values.
START_TEST(test_adamw_hyperparameters) {
    TrainConfig c;
    config_defaults(&c);
    ck_assert(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f);
    float p = 1.0f, g = 0.5f;
    AdamW o;
    memset(&o, 0, sizeof(o));
    adamw_add(&o, &p, &g, 1, NULL, 1);
    adamw_alloc(&o);
    ck_assert(o.beta1 == 0.9f && o.beta2 == 0.999f && o.eps == 1e-8f);
    o.beta1 = 0.8f; o.beta2 = 0.95f; o.eps = 1e-2f;
    double pd = 1, m = 0, v = 0, lr = 0.1, wd = 0.05;
    for (int t = 1; t <= 2; t++) {
        double gd = t == 1 ? 0.5 : -0.25;
        g = (float)gd;
        adamw_step(&o, (float)lr, (float)wd, 1.0f);
        m = 0.8 * m + 0.2 * gd; v = 0.95 * v + 0.05 * gd * gd;
        double mhat = m / (1 - pow(0.8, t)), vhat = v / (1 - pow(0.95, t));
        pd -= lr * (mhat / (sqrt(vhat) + 1e-2) + wd * pd);
        printf("AdamW step %d (beta1 0.8, beta2 0.95, eps 1e-2): %.9f vs %.9f\n", t, p, pd);
        ck_assert_double_le(fabs(p - pd), 1e-6);
    }
    adamw_free(&o);
}
END_TEST

START_TEST(test_cli_validation) {
    TrainConfig c;
    char *ok[] = {"prog", "-b", "8", "--rank=4", "--rslora", "-l", "1e-3"};
    config_defaults(&c);
    ck_assert_int_eq(parse_args(&c, 7, ok), 0);
    ck_assert_int_eq(c.B, 8); ck_assert_int_eq(c.rank, 4); ck_assert_int_eq(c.rslora, 1);
    ck_assert_int_eq(validate_args(&c), 0);
    char *bad1[] = {"prog", "-b", "abc"};
    config_defaults(&c);
    ck_assert_int_eq(parse_args(&c, 3, bad1), -1);
    char *bad2[] = {"prog", "--sparsity", "1.0"};
    config_defaults(&c);
    ck_assert_int_eq(parse_args(&c, 3, bad2), 0);
    ck_assert_int_eq(validate_args(&c), -1);
    char *bad3[] = {"prog", "--no-such-flag"};
    config_defaults(&c);
    ck_assert_int_eq(parse_args(&c, 2, bad3), -1);
    char *bad5[] = {"prog", "--beta2", "1"}, *bad6[] = {"prog", "--eps", "0"}, *bad7[] = {"prog", "--plora-momentum-mode", "m2"};
    char **bads[3] = {bad5, bad6, bad7};
    for (int k = 0; k < 3; k++) { config_defaults(&c); ck_assert_int_eq(parse_args(&c, 3, bads[k]), 0); ck_assert_int_eq(validate_args(&c), -1); }
    char *ok2[] = {"prog", "--beta1", "0.85", "--beta2=0.95", "--eps", "1e-6", "--plora-momentum-mode", "writeup"};
    config_defaults(&c);
    ck_assert_int_eq(parse_args(&c, 8, ok2), 0);
    ck_assert_int_eq(validate_args(&c), 0);
    ck_assert(c.beta1 == 0.85f && c.beta2 == 0.95f && c.eps == 1e-6f);
    ck_assert(opt_given(&c, "beta2") && !opt_given(&c, "rank"));
    char *bad4[] = {"prog", "-b", "0"};
    config_defaults(&c);
    parse_args(&c, 3, bad4);
    ck_assert_int_eq(validate_args(&c), -1);
}
END_TEST

// finite differences call tiny layers thousands of times: threads would only add overhead
static void single_thread(void) {
#ifdef OMP
    omp_set_num_threads(1);
#endif
}

static Suite *gpt2_suite(void) {
    Suite *s = suite_create("gpt2");
    TCase *layers = tcase_create("layers");
    tcase_set_timeout(layers, 120);
    tcase_add_checked_fixture(layers, single_thread, NULL);
    tcase_add_test(layers, test_fd_layernorm);
    tcase_add_test(layers, test_fd_matmul);
    tcase_add_test(layers, test_fd_attention);
    tcase_add_test(layers, test_fd_gelu);
    tcase_add_test(layers, test_fd_residual);
    tcase_add_test(layers, test_fd_encoder);
    tcase_add_test(layers, test_fd_crossentropy_masked);
    tcase_add_test(layers, test_fd_adapted_linear);
    tcase_add_test(layers, test_adapter_fast_vs_reference);
    tcase_add_test(layers, test_fast_layers_vs_reference);
    suite_add_tcase(s, layers);
    TCase *model = tcase_create("model");
    tcase_set_timeout(model, 300);
    tcase_add_test(model, test_model_vs_pytorch);
    tcase_add_test(model, test_reference_script_reproduces);
    tcase_add_test(model, test_fast_vs_reference_kernels_model);
    tcase_add_test(model, test_grad_accumulation_matches_whole_batch);
    tcase_add_test(model, test_overfit_one_batch);
    tcase_add_test(model, test_descriptors_and_schedules);
    tcase_add_test(model, test_cli_validation);
    tcase_add_test(model, test_adamw_hyperparameters);
    suite_add_tcase(s, model);
    TCase *files = tcase_create("files");
    tcase_add_test(files, test_checkpoint_roundtrip_and_bf16);
    tcase_add_test(files, test_bad_inputs_refused);
    tcase_add_test(files, test_dataloader_order_and_mask);
    suite_add_tcase(s, files);
    TCase *adapters = tcase_create("adapters");
    tcase_set_timeout(adapters, 300);
    tcase_add_test(adapters, test_adapter_zero_B_is_base);
    tcase_add_test(adapters, test_merge_unmerge);
    tcase_add_test(adapters, test_adapter_merged_vs_unmerged);
    tcase_add_test(adapters, test_frozen_base_and_lori_invariants);
    tcase_add_test(adapters, test_plora_unload);
    tcase_add_test(adapters, test_kv_cache_matches_forward);
    tcase_add_test(adapters, test_ref_kernels_adapter_path);
    suite_add_tcase(s, adapters);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(gpt2_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
