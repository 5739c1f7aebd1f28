/*
tests/dist_compare.h — does a run match another? The criteria of the data-parallel tests
(tests/test_dist.c on the CPU, tests/test_dist_gpu.sh through tests/dist_compare.c on a GPU):
  losses:     every train.csv row (step, train loss, val loss) within 1e-6 relative, + 1e-6
              absolute for the file's 6-decimal rounding, and as many rows;
  parameters: model.bin (full fine-tuning, PLoRA) or adapter.bin's A and B: max |a - b| within
              1e-6 of max |b|. In model.bin the key bias (qkvb's middle third in each layer) is
              left out: its gradient is exactly zero (the softmax over j of q.(k_j + b) does not
              depend on b), so its float gradient is rounding, which AdamW scales up to steps of lr.
Each returns 0 or -1, and writes what it found (or what differs) into msg. Needs train_gpt2.c's
readers (include it first).
*/
#ifndef TESTS_DIST_COMPARE_H
#define TESTS_DIST_COMPARE_H

typedef struct { int n; int step[1024]; double train[1024], val[1024]; } DistLosses;

static int dist_read_losses(const char *dir, DistLosses *L, char *msg, size_t mn) {
    char path[1024], err[512];
    snprintf(path, sizeof(path), "%s/train.csv", dir);
    size_t n;
    char *s = read_whole_file(path, &n, err, sizeof(err));
    if (!s) { snprintf(msg, mn, "%s", err); return -1; }
    s = realloc(s, n + 1);
    s[n] = 0;
    memset(L, 0, sizeof(*L));
    char *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!isdigit((unsigned char)line[0]) || L->n == 1024) continue;
        char *f[3] = {line, NULL, NULL};
        for (int k = 1; k < 3; k++) {
            if (!(f[k] = strchr(f[k - 1], ','))) { snprintf(msg, mn, "%s: malformed row", path); free(s); return -1; }
            *f[k]++ = 0;
        }
        char *c = strchr(f[2], ',');
        if (c) *c = 0;
        L->step[L->n] = atoi(f[0]);
        L->train[L->n] = *f[1] ? atof(f[1]) : NAN;
        L->val[L->n] = *f[2] ? atof(f[2]) : NAN;
        L->n++;
    }
    free(s);
    return 0;
}

static int dist_close(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-6 * fabs(b) + 1e-6; // 1e-6 relative, + the csv's 6-decimal rounding
}

static int dist_compare_losses(const char *a, const char *b, char *msg, size_t mn) {
    DistLosses A, B;
    if (dist_read_losses(a, &A, msg, mn) != 0 || dist_read_losses(b, &B, msg, mn) != 0) return -1;
    if (A.n != B.n || A.n < 3) { snprintf(msg, mn, "%s has %d loss rows, %s %d", a, A.n, b, B.n); return -1; }
    double worst = 0;
    for (int i = 0; i < A.n; i++) {
        if (A.step[i] != B.step[i]) { snprintf(msg, mn, "row %d: step %d in %s, %d in %s", i, A.step[i], a, B.step[i], b); return -1; }
        if (!dist_close(A.train[i], B.train[i]) || !dist_close(A.val[i], B.val[i])) {
            snprintf(msg, mn, "step %d: train loss %.6f, val loss %.6f (%s) vs %.6f, %.6f (%s)", A.step[i], A.train[i], A.val[i], a,
                     B.train[i], B.val[i], b);
            return -1;
        }
        if (isfinite(A.train[i])) worst = fmax(worst, fabs(A.train[i] - B.train[i]) / fabs(B.train[i]));
    }
    snprintf(msg, mn, "%s vs %s: %d loss rows, largest train-loss difference %.2e relative", a, b, A.n, worst);
    return 0;
}

// max |a - b| / max |b|
static double dist_rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) { d = fmax(d, fabs((double)a[i] - b[i])); m = fmax(m, fabs((double)b[i])); }
    return m > 0 ? d / m : d;
}

// model_file: compare DIR/model.bin, else DIR/adapter.bin
static int dist_compare_params(const char *a, const char *b, int model_file, char *msg, size_t mn) {
    char pa[1024], pb[1024], err[1024];
    double r;
    snprintf(pa, sizeof(pa), "%s/%s", a, model_file ? "model.bin" : "adapter.bin");
    snprintf(pb, sizeof(pb), "%s/%s", b, model_file ? "model.bin" : "adapter.bin");
    if (model_file) {
        GPT2 ma, mb;
        if (gpt2_load_checkpoint(&ma, pa, err, sizeof(err)) != 0) { snprintf(msg, mn, "%s", err); return -1; }
        if (gpt2_load_checkpoint(&mb, pb, err, sizeof(err)) != 0) { snprintf(msg, mn, "%s", err); gpt2_free(&ma); return -1; }
        if (ma.num_parameters != mb.num_parameters) { snprintf(msg, mn, "%s and %s: different models", pa, pb); gpt2_free(&ma); gpt2_free(&mb); return -1; }
        int L = ma.config.num_layers, C = ma.config.channels;
        size_t off = 0;
        for (int i = 0; i < 5; i++) off += ma.param_sizes[i]; // qkvb
        for (int l = 0; l < L; l++)
            for (int c = C; c < 2 * C; c++) ma.params_memory[off + (size_t)l * 3 * C + c] = mb.params_memory[off + (size_t)l * 3 * C + c];
        r = dist_rel_diff(ma.params_memory, mb.params_memory, ma.num_parameters);
        gpt2_free(&ma); gpt2_free(&mb);
    } else {
        Adapter aa, ab;
        if (adapter_load(&aa, pa, 0, 0, err, sizeof(err)) != 0) { snprintf(msg, mn, "%s", err); return -1; }
        if (adapter_load(&ab, pb, 0, 0, err, sizeof(err)) != 0) { snprintf(msg, mn, "%s", err); adapter_free(&aa); return -1; }
        if (aa.nA != ab.nA || aa.nB != ab.nB) { snprintf(msg, mn, "%s and %s: different shapes", pa, pb); adapter_free(&aa); adapter_free(&ab); return -1; }
        r = fmax(dist_rel_diff(aa.params, ab.params, aa.nA), dist_rel_diff(aa.params + aa.nA, ab.params + ab.nA, aa.nB));
        adapter_free(&aa); adapter_free(&ab);
    }
    snprintf(msg, mn, "%s vs %s: final parameters differ by %.2e of the largest entry", pa, pb, r);
    return r <= 1e-6 ? 0 : -1;
}

#endif // TESTS_DIST_COMPARE_H
