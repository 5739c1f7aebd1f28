/*
test_merge.c — merging adapters (lora/merge.h) and folding the result into a checkpoint.
libcheck; includes train_gpt2.c (TESTING) for the model. Run ./test_merge (exit status != 0 on failure).
*/
#include <check.h>
#define TESTING
#include "train_gpt2.c"
#include "lora/merge.h"

static char errbuf[8192];

// A random adapter on (L, C) whose B is nonzero (a "trained" one).
static void rand_adapter(Adapter *ad, int L, int C, int rank, int targets, float alpha, int rslora, uint64_t seed) {
    AdapterConfig cfg = {.kind = ADAPTER_LORA, .rank = rank, .alpha = alpha, .rslora = rslora, .targets = targets,
                         .init = INIT_KAIMING, .seed = seed};
    ck_assert_msg(adapter_create(ad, &cfg, L, C, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    uint64_t rng = seed * 31 + 7;
    for (size_t i = 0; i < ad->nB; i++) ad->params[ad->nA + i] = 0.2f * (rng_uniform(&rng) - 0.5f);
}

// ΔW (out, in) in double of slot (l, t): factor · s · B A; zero when the adapter lacks the slot.
static void delta_w(const Adapter *ad, int l, int t, double factor, double *dw, int out, int in) {
    int s = ad->slot_of[l][t];
    if (s < 0) return;
    const float *A = adapter_A(ad, s), *B = adapter_B(ad, s);
    int r = ad->cfg.rank;
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) {
            double d = 0;
            for (int k = 0; k < r; k++) d += (double)B[o * r + k] * A[(size_t)k * in + i];
            dw[(size_t)o * in + i] += factor * ad->scale * d;
        }
}

// max |ΔW_merged - Σ w_t s_t B_t A_t| relative to max |Σ ...| over every slot of the result.
static double cat_error(const Adapter *merged, const Adapter *const *in, const float *w, int T) {
    double worst = 0;
    for (int s = 0; s < merged->nslots; s++) {
        int l = merged->slot_layer[s], t = merged->slot_target[s], o = merged->slot_out[s], i = merged->slot_in[s];
        double *ref = calloc((size_t)o * i, sizeof(double)), *got = calloc((size_t)o * i, sizeof(double));
        for (int k = 0; k < T; k++) delta_w(in[k], l, t, w[k], ref, o, i);
        delta_w(merged, l, t, 1.0, got, o, i);
        double m = 0, e = 0;
        for (size_t j = 0; j < (size_t)o * i; j++) { m = fmax(m, fabs(ref[j])); e = fmax(e, fabs(ref[j] - got[j])); }
        if (m > 0 && e / m > worst) worst = e / m;
        free(ref); free(got);
    }
    return worst;
}

START_TEST(test_cat_exact_sum) {
    Adapter a[3];
    rand_adapter(&a[0], 2, 16, 2, 15, 8.0f, 0, 1);
    rand_adapter(&a[1], 2, 16, 3, 5, 4.0f, 1, 2);     // other rank, targets, rsLoRA
    rand_adapter(&a[2], 2, 16, 1, 10, 1.0f, 0, 3);
    const Adapter *in[3] = {&a[0], &a[1], &a[2]};
    float w[3] = {0.5f, 0.3f, -0.2f};
    MergeConfig mc = {MERGE_CAT, 1, 0, 0};
    Adapter m;
    ck_assert_msg(adapter_merge(&m, in, w, 3, &mc, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    ck_assert_int_eq(m.cfg.rank, 6);
    ck_assert(m.scale == 1.0f);
    ck_assert_int_eq(m.cfg.targets, 15);
    double e = cat_error(&m, in, w, 3);
    ck_assert_msg(e < 1e-6, "cat: relative error %g", e);
    adapter_free(&m);
    for (int t = 0; t < 3; t++) adapter_free(&a[t]);
} END_TEST

START_TEST(test_linear_factorwise) {
    Adapter a[2];
    rand_adapter(&a[0], 2, 8, 2, 15, 8.0f, 0, 4);
    rand_adapter(&a[1], 2, 8, 2, 15, 2.0f, 1, 5);
    const Adapter *in[2] = {&a[0], &a[1]};
    float w[2] = {0.6f, -0.4f};
    MergeConfig mc = {MERGE_LINEAR, 1, 0, 0};
    Adapter m;
    ck_assert_msg(adapter_merge(&m, in, w, 2, &mc, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    ck_assert(m.scale == 1.0f);
    double ws[2] = {(double)w[0] * a[0].scale, (double)w[1] * a[1].scale};
    for (size_t i = 0; i < m.nA; i++) {
        double ref = 0;
        for (int t = 0; t < 2; t++) ref += (ws[t] >= 0 ? 1 : -1) * sqrt(fabs(ws[t])) * a[t].params[i];
        ck_assert_msg(fabs(m.params[i] - ref) <= 1e-6 * fabs(ref) + 1e-12, "A[%zu] %g vs %g", i, m.params[i], ref);
    }
    for (size_t i = 0; i < m.nB; i++) {
        double ref = 0;
        for (int t = 0; t < 2; t++) ref += sqrt(fabs(ws[t])) * a[t].params[a[t].nA + i];
        ck_assert_msg(fabs(m.params[m.nA + i] - ref) <= 1e-6 * fabs(ref) + 1e-12, "B[%zu]", i);
    }
    // a single adapter with weight 1: the same function (ΔW = s B A)
    float w1 = 1.0f;
    Adapter one;
    ck_assert_int_eq(adapter_merge(&one, in, &w1, 1, &mc, errbuf, sizeof(errbuf)), 0);
    ck_assert(cat_error(&one, in, &w1, 1) < 1e-6);
    adapter_free(&one);
    // unequal ranks are refused
    Adapter b; rand_adapter(&b, 2, 8, 3, 15, 1.0f, 0, 6);
    const Adapter *in2[2] = {&a[0], &b};
    ck_assert_int_eq(adapter_merge(&one, in2, w, 2, &mc, errbuf, sizeof(errbuf)), -1);
    ck_assert(strstr(errbuf, "equal ranks") != NULL);
    adapter_free(&b);
    adapter_free(&m);
    for (int t = 0; t < 2; t++) adapter_free(&a[t]);
} END_TEST

// L = 1, C = 2, qkv only, rank 1, scale 1: A (1, 2), B (6, 1), set by hand.
static void hand_adapter(Adapter *ad, const float *A, const float *B) {
    AdapterConfig cfg = {.kind = ADAPTER_LORA, .rank = 1, .alpha = 1.0f, .targets = 1};
    ck_assert_int_eq(adapter_create(ad, &cfg, 1, 2, errbuf, sizeof(errbuf)), 0);
    memcpy(ad->params, A, 2 * sizeof(float));
    memcpy(ad->params + 2, B, 6 * sizeof(float));
}

START_TEST(test_ties_sign_election) {
    float A[3][2] = {{1, -2}, {3, 1}, {-1, -1}};
    float B[3][6] = {{1, 1, 1, 1, 1, 1}, {-4, 2, 0, 1, -1, 0}, {1, -3, 0, -2, -1, 0}};
    Adapter a[3];
    for (int t = 0; t < 3; t++) hand_adapter(&a[t], A[t], B[t]);
    const Adapter *in[3] = {&a[0], &a[1], &a[2]};
    float w[3] = {1, 1, 1};
    Adapter m;
    // density 1: no pruning. A col 0: Σ = 3 -> +, agreeing {1, 3}: mean 2; col 1: Σ = -2 -> -, {-2, -1}: -1.5
    MergeConfig mc = {MERGE_TIES, 1.0f, 0, 0};
    ck_assert_int_eq(adapter_merge(&m, in, w, 3, &mc, errbuf, sizeof(errbuf)), 0);
    ck_assert(m.params[0] == 2.0f && m.params[1] == -1.5f);
    // B: [1,-4,1] Σ -2 -> -: -4; [1,2,-3] Σ 0 -> + (0 counts as +): mean(1,2) = 1.5; [1,0,0]: 1;
    //    [1,1,-2] Σ 0 -> +: 1; [1,-1,-1] Σ -1 -> -: -1; [1,0,0]: 1
    float Bref[6] = {-4, 1.5f, 1, 1, -1, 1};
    for (int i = 0; i < 6; i++) ck_assert_msg(m.params[2 + i] == Bref[i], "B[%d] = %g, expected %g", i, m.params[2 + i], Bref[i]);
    adapter_free(&m);
    // density 0.5: each A keeps its larger entry (|-1| = |-1|: the lower index): [0,-2], [3,0], [-1,0]
    // col 0: Σ 2 -> +: 3; col 1: only -2 -> -2
    mc.density = 0.5f;
    ck_assert_int_eq(adapter_merge(&m, in, w, 3, &mc, errbuf, sizeof(errbuf)), 0);
    ck_assert(m.params[0] == 3.0f && m.params[1] == -2.0f);
    adapter_free(&m);
    // weights enter after the election: w = (2, 1, 1) on col 0 of A (density 1): (2·1 + 3) / 2 = 2.5
    float w2[3] = {4, 1, 1};  // sqrt(4) = 2 on A and B of the first input
    mc.density = 1.0f;
    ck_assert_int_eq(adapter_merge(&m, in, w2, 3, &mc, errbuf, sizeof(errbuf)), 0);
    ck_assert(m.params[0] == 2.5f);
    adapter_free(&m);
    // magnitude_prune, density 0.5, then linear: A = [0,-2] + [3,0] + [-1,0] = [2, -2]
    mc.method = MERGE_MAGNITUDE_PRUNE; mc.density = 0.5f;
    ck_assert_int_eq(adapter_merge(&m, in, w, 3, &mc, errbuf, sizeof(errbuf)), 0);
    ck_assert(m.params[0] == 2.0f && m.params[1] == -2.0f);
    adapter_free(&m);
    for (int t = 0; t < 3; t++) adapter_free(&a[t]);
} END_TEST

START_TEST(test_dare_rescale) {
    Adapter a;
    rand_adapter(&a, 2, 32, 4, 15, 4.0f, 0, 9);  // scale 1
    for (size_t i = 0; i < a.nA + a.nB; i++) if (a.params[i] == 0.0f) a.params[i] = 0.125f;
    const Adapter *in[1] = {&a};
    float w = 1.0f;
    MergeConfig mc = {MERGE_DARE_LINEAR, 0.25f, 42, 0};
    Adapter m, m2;
    ck_assert_int_eq(adapter_merge(&m, in, &w, 1, &mc, errbuf, sizeof(errbuf)), 0);
    size_t kept = 0, n = a.nA + a.nB;
    for (size_t i = 0; i < n; i++) {
        if (m.params[i] == 0.0f) continue;
        kept++;
        ck_assert_msg(m.params[i] == a.params[i] * 4.0f, "survivor %zu: %g, expected %g (x 1/density)", i, m.params[i], a.params[i] * 4);
    }
    double frac = (double)kept / n;
    ck_assert_msg(fabs(frac - 0.25) < 0.02, "kept fraction %g", frac);
    // reproducible with the seed, different with another
    ck_assert_int_eq(adapter_merge(&m2, in, &w, 1, &mc, errbuf, sizeof(errbuf)), 0);
    ck_assert(memcmp(m.params, m2.params, sizeof(float) * n) == 0);
    adapter_free(&m2);
    mc.seed = 43;
    ck_assert_int_eq(adapter_merge(&m2, in, &w, 1, &mc, errbuf, sizeof(errbuf)), 0);
    ck_assert(memcmp(m.params, m2.params, sizeof(float) * n) != 0);
    adapter_free(&m2);
    // dare_ties on two copies: both agree on every sign, survivors averaged: entries are x/d (one
    // survivor), or x/d (both survive: mean of two equal values)
    const Adapter *in2[2] = {&a, &a};
    float w2[2] = {1, 1};
    mc.method = MERGE_DARE_TIES; mc.seed = 42;
    ck_assert_int_eq(adapter_merge(&m2, in2, w2, 2, &mc, errbuf, sizeof(errbuf)), 0);
    for (size_t i = 0; i < n; i++) ck_assert(m2.params[i] == 0.0f || m2.params[i] == a.params[i] * 4.0f);
    adapter_free(&m2);
    // density outside (0, 1] refused
    mc.density = 0.0f;
    ck_assert_int_eq(adapter_merge(&m2, in, &w, 1, &mc, errbuf, sizeof(errbuf)), -1);
    ck_assert(strstr(errbuf, "density") != NULL);
    adapter_free(&m);
    adapter_free(&a);
} END_TEST

START_TEST(test_svd) {
    Adapter a[2];
    rand_adapter(&a[0], 1, 24, 3, 15, 6.0f, 0, 11);
    rand_adapter(&a[1], 1, 24, 2, 7, 2.0f, 0, 12);
    const Adapter *in[2] = {&a[0], &a[1]};
    float w[2] = {0.7f, 0.5f};
    // full rank (5): the exact sum, as cat
    MergeConfig mc = {MERGE_SVD, 1, 0, 5};
    Adapter full, low;
    ck_assert_msg(adapter_merge(&full, in, w, 2, &mc, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    double e = cat_error(&full, in, w, 2);
    ck_assert_msg(e < 1e-5, "svd at full rank: relative error %g", e);
    // rank 2: rows of A orthonormal, ||ΔW - ΔW_2||² = Σ_{j>2} σ_j² (σ_j = column norms of the full B)
    mc.svd_rank = 2;
    ck_assert_int_eq(adapter_merge(&low, in, w, 2, &mc, errbuf, sizeof(errbuf)), 0);
    for (int s = 0; s < low.nslots; s++) {
        int o = low.slot_out[s], i = low.slot_in[s], l = low.slot_layer[s], t = low.slot_target[s];
        const float *A = adapter_A(&low, s);
        for (int p = 0; p < 2; p++) for (int q = 0; q < 2; q++) {
            double d = 0;
            for (int j = 0; j < i; j++) d += (double)A[p * i + j] * A[q * i + j];
            ck_assert_msg(fabs(d - (p == q)) < 1e-5, "A rows not orthonormal: %g", d);
        }
        int sf = full.slot_of[l][t], R = full.cfg.rank;
        const float *Bf = adapter_B(&full, sf);
        double sig[5] = {0};
        for (int k = 0; k < R; k++) { for (int j = 0; j < o; j++) sig[k] += (double)Bf[j * R + k] * Bf[j * R + k]; sig[k] = sqrt(sig[k]); }
        for (int k = 1; k < R; k++) ck_assert(sig[k] <= sig[k - 1] * (1 + 1e-6));
        double *ref = calloc((size_t)o * i, sizeof(double)), *got = calloc((size_t)o * i, sizeof(double));
        for (int k = 0; k < 2; k++) delta_w(in[k], l, t, w[k], ref, o, i);
        delta_w(&low, l, t, 1.0, got, o, i);
        double res = 0, tail = 0, tot = 0;
        for (size_t j = 0; j < (size_t)o * i; j++) { res += (ref[j] - got[j]) * (ref[j] - got[j]); tot += ref[j] * ref[j]; }
        for (int k = 2; k < R; k++) tail += sig[k] * sig[k];
        ck_assert_msg(fabs(res - tail) <= 1e-5 * tot, "slot %d: residual %g, discarded %g", s, res, tail);
        free(ref); free(got);
    }
    adapter_free(&full); adapter_free(&low);
    for (int t = 0; t < 2; t++) adapter_free(&a[t]);
} END_TEST

START_TEST(test_jacobi_known) {
    // diag(3, 1) rotated: singular values 3, 1
    double c = cos(0.3), s = sin(0.3);
    double M[4] = {3 * c, -1 * s, 3 * s, 1 * c}, U[4], S[2], V[4];
    merge_jacobi_svd(M, 2, U, S, V);
    ck_assert(fabs(S[0] - 3) < 1e-12 && fabs(S[1] - 1) < 1e-12);
    // QR of a rank-deficient matrix: Q orthonormal, Q R = X
    double X[6] = {1, 2, 2, 4, 3, 6}, Q[6], R[4];
    merge_qr(X, 3, 2, Q, R);
    for (int i = 0; i < 3; i++) for (int j = 0; j < 2; j++) {
        double d = 0;
        for (int k = 0; k < 2; k++) d += Q[i * 2 + k] * R[k * 2 + j];
        ck_assert(fabs(d - X[i * 2 + j]) < 1e-12);
    }
    for (int p = 0; p < 2; p++) for (int q = 0; q < 2; q++) {
        double d = 0;
        for (int i = 0; i < 3; i++) d += Q[i * 2 + p] * Q[i * 2 + q];
        ck_assert(fabs(d - (p == q)) < 1e-12);
    }
} END_TEST

// ΔW (out, in) in double that a linear-family merge must give for slot (l, t), recomputed here from the
// inputs' factors: (Σ_t sqrt|w_t s_t| B_t)(Σ_t sign(w_t s_t) sqrt|w_t s_t| A_t) (lora/FORMATS.md), equal ranks.
static void linear_expected(const Adapter *const *in, const float *w, int T, int l, int t, double *dw, int out, int nin) {
    int r = in[0]->cfg.rank;
    double *A = calloc((size_t)r * nin, sizeof(double)), *B = calloc((size_t)out * r, sizeof(double));
    for (int k = 0; k < T; k++) {
        int s = in[k]->slot_of[l][t];
        if (s < 0) continue;
        double ws = (double)w[k] * in[k]->scale, cb = sqrt(fabs(ws)), ca = (ws >= 0 ? 1 : -1) * cb;
        for (int i = 0; i < r * nin; i++) A[i] += ca * adapter_A(in[k], s)[i];
        for (int i = 0; i < out * r; i++) B[i] += cb * adapter_B(in[k], s)[i];
    }
    for (int o = 0; o < out; o++) for (int i = 0; i < nin; i++) {
        double d = 0;
        for (int k = 0; k < r; k++) d += B[o * r + k] * A[(size_t)k * nin + i];
        dw[(size_t)o * nin + i] += d;
    }
    free(A); free(B);
}

// The merged checkpoint (base with the merged adapter folded in, as --merge-out writes it) computes
// the model the merge method defines: its logits equal those of the base plus the EXPECTED update,
// recomputed in this test from each input's factors (not from the merge's result): Σ w_t s_t B_t A_t
// for cat and for svd at full rank, the linear formula for linear and for magnitude_prune and
// dare_linear at density 1 (they keep everything). ties and dare_ties elect signs entry by entry:
// test_ties_sign_election and test_dare_rescale check them against hand-computed results.
START_TEST(test_merged_checkpoint_logits) {
    GPT2 model;
    ck_assert_msg(gpt2_load_checkpoint(&model, "dev/ref/gpt2_tiny.bin", errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    int L = model.config.num_layers, C = model.config.channels, V = model.config.vocab_size, Vp = model.config.padded_vocab_size;
    int B = 2, T = 8;
    Adapter a[4];
    for (int t = 0; t < 4; t++) rand_adapter(&a[t], L, C, 2 + (t & 1), t < 2 ? 15 : 5, 4.0f, t == 3, 20 + t);
    float w[4] = {0.4f, 0.3f, 0.2f, -0.1f};
    int tokens[16];
    for (int i = 0; i < B * T; i++) tokens[i] = (i * 7 + 3) % V;
    float *saved = malloc(sizeof(float) * model.num_parameters);
    memcpy(saved, model.params_memory, sizeof(float) * model.num_parameters);
    float *lg_expect = malloc(sizeof(float) * B * T * Vp), *lg_merged = malloc(sizeof(float) * B * T * Vp);
    gpt2_setup_training(&model, NULL, B, T);
    gpt2_forward(&model, tokens, NULL, NULL, B, T);
    float *lg_base = malloc(sizeof(float) * B * T * Vp);
    memcpy(lg_base, model.acts.logits, sizeof(float) * B * T * Vp);
    const MergeMethod methods[5] = {MERGE_CAT, MERGE_SVD, MERGE_LINEAR, MERGE_MAGNITUDE_PRUNE, MERGE_DARE_LINEAR};
    for (int k = 0; k < 5; k++) {
        MergeMethod method = methods[k];
        int linear = method != MERGE_CAT && method != MERGE_SVD;
        const Adapter *in[4] = {&a[0], &a[1], &a[2], &a[3]};
        if (linear) { in[1] = &a[2]; in[3] = &a[2]; in[2] = &a[0]; } // equal ranks (2)
        MergeConfig mc = {method, 1.0f, 7, 2 + 3 + 2 + 3};           // density 1; svd at the full rank
        Adapter m;
        ck_assert_msg(adapter_merge(&m, in, w, 4, &mc, errbuf, sizeof(errbuf)) == 0, "%s: %s", merge_method_names[method], errbuf);
        // the expected model: base + the expected ΔW of every adapted matrix
        for (int l = 0; l < L; l++) for (int t = 0; t < NUM_TARGETS; t++) {
            int s = m.slot_of[l][t];
            if (s < 0) continue;
            int o = m.slot_out[s], ni = m.slot_in[s];
            double *dw = calloc((size_t)o * ni, sizeof(double));
            if (linear) linear_expected(in, w, 4, l, t, dw, o, ni);
            else for (int q = 0; q < 4; q++) delta_w(in[q], l, t, w[q], dw, o, ni);
            float *W = gpt2_slot_weight(&model, l, t);
            for (size_t i = 0; i < (size_t)o * ni; i++) W[i] = (float)((double)W[i] + dw[i]);
            free(dw);
        }
        gpt2_forward(&model, tokens, NULL, NULL, B, T);
        memcpy(lg_expect, model.acts.logits, sizeof(float) * B * T * Vp);
        memcpy(model.params_memory, saved, sizeof(float) * model.num_parameters);
        // the merged checkpoint: the merge's result folded into the base
        for (int s = 0; s < m.nslots; s++) adapter_fold(&m, s, gpt2_slot_weight(&model, m.slot_layer[s], m.slot_target[s]), 1.0f);
        gpt2_forward(&model, tokens, NULL, NULL, B, T);
        memcpy(lg_merged, model.acts.logits, sizeof(float) * B * T * Vp);
        memcpy(model.params_memory, saved, sizeof(float) * model.num_parameters);
        double d = 0, moved = 0;
        for (int i = 0; i < B * T; i++) for (int v = 0; v < V; v++) {
            d = fmax(d, fabs(lg_expect[i * Vp + v] - lg_merged[i * Vp + v]));
            moved = fmax(moved, fabs(lg_expect[i * Vp + v] - lg_base[i * Vp + v]));
        }
        printf("%s: merged checkpoint vs base + expected update: logits max |diff| %.3g (the update moves them by %.3g)\n",
               merge_method_names[method], d, moved);
        ck_assert_msg(moved > 1e-3, "%s: the update must move the logits for this test to mean anything", merge_method_names[method]);
        ck_assert_msg(d < 1e-6, "%s: max |logits(merged checkpoint) - logits(base + expected)| = %g", merge_method_names[method], d);
        adapter_free(&m);
    }
    free(lg_expect); free(lg_merged); free(lg_base); free(saved);
    for (int t = 0; t < 4; t++) adapter_free(&a[t]);
    gpt2_free(&model);
} END_TEST


// The CLI end to end (when ./merge_adapters is built): merged checkpoint == base + merged adapter file.
START_TEST(test_cli) {
    if (access("./merge_adapters", X_OK) != 0) { fprintf(stderr, "\n*** SKIP: test_cli did NOT run: ./merge_adapters not built ***\n\n"); return; }
    char dir[] = "/tmp/test_merge_XXXXXX", p[4][512], cmd[4096];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    GPT2 model;
    ck_assert_int_eq(gpt2_load_checkpoint(&model, "dev/ref/gpt2_tiny.bin", errbuf, sizeof(errbuf)), 0);
    int L = model.config.num_layers, C = model.config.channels, V = model.config.vocab_size, Vp = model.config.padded_vocab_size;
    Adapter a[2];
    rand_adapter(&a[0], L, C, 2, 15, 4.0f, 0, 31);
    rand_adapter(&a[1], L, C, 2, 5, 2.0f, 1, 32);
    for (int t = 0; t < 2; t++) {
        snprintf(p[t], sizeof(p[t]), "%s/in%d.bin", dir, t);
        ck_assert_int_eq(adapter_save(&a[t], p[t], "test", errbuf, sizeof(errbuf)), 0);
    }
    snprintf(p[2], sizeof(p[2]), "%s/merged_adapter.bin", dir);
    snprintf(p[3], sizeof(p[3]), "%s/merged_model.bin", dir);
    for (int method = 0; method < MERGE_NUM; method++) {
        snprintf(cmd, sizeof(cmd), "./merge_adapters -m %s -w 0.6,0.4 --density 0.7 --seed 3 -o %s --merge-base dev/ref/gpt2_tiny.bin "
                 "--merge-out %s --export-peft %s/peft %s %s > /dev/null", merge_method_names[method], p[2], p[3], dir, p[0], p[1]);
        ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
        Adapter m;
        ck_assert_msg(adapter_load(&m, p[2], L, C, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
        GPT2 merged;
        ck_assert_msg(gpt2_load_checkpoint(&merged, p[3], errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
        int B = 1, T = 16, tokens[16];
        for (int i = 0; i < T; i++) tokens[i] = (i * 5 + 1) % V;
        gpt2_setup_training(&model, &m, B, T);
        m.training = 0;
        gpt2_forward(&model, tokens, NULL, NULL, B, T);
        gpt2_setup_training(&merged, NULL, B, T);
        gpt2_forward(&merged, tokens, NULL, NULL, B, T);
        double d = 0;
        for (int i = 0; i < T; i++) for (int v = 0; v < V; v++) d = fmax(d, fabs(model.acts.logits[i * Vp + v] - merged.acts.logits[i * Vp + v]));
        ck_assert_msg(d < 1e-4, "%s: merged checkpoint vs base + merged adapter: %g", merge_method_names[method], d);
        model.adapter = NULL;
        gpt2_free(&merged);
        adapter_free(&m);
    }
    // bad input: refused with a message, non-zero exit
    snprintf(cmd, sizeof(cmd), "./merge_adapters -m linear -o %s %s dev/ref/gpt2_tiny.bin 2>/dev/null >/dev/null", p[2], p[0]);
    ck_assert(system(cmd) != 0);
    for (int t = 0; t < 2; t++) adapter_free(&a[t]);
    gpt2_free(&model);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
} END_TEST

Suite *merge_suite(void) {
    Suite *s = suite_create("merge");
    TCase *tc = tcase_create("merge");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cat_exact_sum);
    tcase_add_test(tc, test_linear_factorwise);
    tcase_add_test(tc, test_ties_sign_election);
    tcase_add_test(tc, test_dare_rescale);
    tcase_add_test(tc, test_svd);
    tcase_add_test(tc, test_jacobi_known);
    tcase_add_test(tc, test_merged_checkpoint_logits);
    tcase_add_test(tc, test_cli);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(merge_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
