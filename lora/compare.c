/*
lora/compare.c — the comparison: full fine-tuning, LoRA, LoRI-D, LoRI-S and PeriodicLoRA, each at its own
best learning rate, at equal budgets, over several seeds, on the embedded suite or on your own tasks;
then merging the task adapters, continual learning, PLoRA's rank claim, and a claims table.

    make compare && ./compare                        # the CPU profile on the embedded suite -> out/compare/
    ./compare --quick -o /tmp/cmp                    # CI: a few steps, 2 rates, 2 seeds
    ./compare --tasks DIR -e base.bin -o out/mine    # your tasks: DIR/NAME_{train,val,test}.bin (+ .lossmask)
    make comparecu && ./comparecu                    # the same through the CUDA trainer (profile full)

What runs (every training is one call of llmc/train.h's run_training_on, on the CPU backend or, in
comparecu, cuda/host.c's GPU backend; runs/.../command.txt holds the equivalent trainer command):
 1. Fine-tuning. For every task and variant, a learning-rate sweep (seed 0, each rate of the
    variant's grid) scored by exact match on the validation split; the best rate (validation exact
    match, then validation loss) is run with the other seeds; test exact match is reported at that
    rate only, as mean, standard deviation and min-max over the seeds.
    Equal budgets: every run takes the same optimizer steps of B x T tokens. LoRI-S's budget holds
    its LoRI-D stage: LoRI-D for steps/2 (at LoRI-D's chosen rate) to find the mask, then LoRI-S for
    the rest at LoRI-S's own rate (its own sweep). PLoRA unloads into the base every steps/4.
    Seeds change the data order, the adapter's A (LoRA, PLoRA: init; LoRI: the frozen draw) and
    dropout; task t of seed s draws A from seed 1000 + 100 t + s, so task adapters have different A's.
 2. Merging. Per seed, the task adapters of LoRA, LoRI-D and LoRI-S merged (lora/merge.h) with cat,
    linear, ties and dare_linear (weight 1 each, density 0.5), and with cat and linear at the LoRI
    scripts' equal weights (0.3 each for four tasks: 1.2 / tasks); each merge scored on every task.
 3. Continual learning. Per seed, the adapter of the source task (safety) trained on each other task
    for the same budget at that task's chosen rate (--adapter-in); LoRI-S takes a fresh mask from
    the new task's LoRI-D (the official scripts' recipe). Forgetting = source score before - after.
 4. PLoRA's claim. On one task, LoRA and PLoRA (2 and 4 stages) at ranks 1, 2, 4, 8 and full
    fine-tuning, same steps: how far the training loss falls (first step's loss minus the mean of
    the last tenth of the steps).
 5. The claims table: each claim of the papers against the numbers above, with a verdict computed by
    the rule printed beside it.

Outputs under -o DIR (default out/compare): report.md; sweep.csv, results.csv, merge.csv,
continual.csv, plora.csv; scores.svg, sweep_<task>.svg, loss_<task>.svg, merge.svg, forgetting.svg,
plora.svg; runs/, merge/, continual/, plora/ (every run's train.csv, adapter or model, command.txt);
base.bin (the base every run started from); log.txt (everything the runs printed).
*/
#include <dirent.h>
#include <fcntl.h>
#include "../llmc/train.h"  // run_training: the CPU trainer's (train_gpt2.c without main, linked)
#include "../llmc/embedded.h"
#ifdef COMPARE_GPU
// the GPU trainer's run (cuda/host.c, linked with the GPU model: comparecu)
int run_training_gpu(TrainConfig *cfg, int bf16, int argc, char **argv, TrainResult *res);
#endif
#include "../llmc/report.h"
#include "merge.h"

// ----------------------------------------------------------------------------
// limits, variants, merge methods

#define CMP_MAX_TASKS 8
#define CMP_MAX_LRS 8
#define CMP_MAX_SEEDS 8
#define CMP_MAX_RANKS 6
#define CMP_MAX_STAGES 4
#define CMP_ADAPTER_SEED 1000   // task t, seed s: A from CMP_ADAPTER_SEED + 100 t + s
#define CMP_DATA_SEED 1337      // seed s: --seed CMP_DATA_SEED + s (data order, dropout)
#define CMP_PLORA_STAGES 4      // PLoRA in the fine-tuning part: unload every steps / 4
#define CMP_MERGE_DENSITY 0.5f  // ties and dare: fraction of each factor kept
#define CMP_MERGE_SEED 1234     // dare's drop pattern
#define CMP_LOSS_SMOOTH 10      // loss curves: mean of the last N steps
#define CMP_TIE_EM 1e-9         // validation exact matches closer than this tie (then loss decides)

typedef struct {
    const char *name;      // directory and CSV name, --variants
    const char *label;     // in the report
    const char *adapter;   // --adapter
    const char *stage;     // --lori-stage (LoRI only)
} Variant;

enum { V_FULL, V_LORA, V_LORI_D, V_LORI_S, V_PLORA, NUM_VARIANTS };
static const Variant variants[NUM_VARIANTS] = {
    {"full", "full FT", "none", ""},
    {"lora", "LoRA", "lora", ""},
    {"lori_d", "LoRI-D", "lori", "d"},
    {"lori_s", "LoRI-S", "lori", "ds"},
    {"plora", "PLoRA", "plora", ""},
};
// the order the sweeps run in: LoRI-S needs LoRI-D's chosen rate for its D stage
static const int variant_order[NUM_VARIANTS] = {V_FULL, V_LORA, V_LORI_D, V_PLORA, V_LORI_S};

// Learning-rate grids: 4 rates spanning 30x per variant, centred (from pilot runs on the embedded
// suite) so the best rate lies inside. LoRI-S's grid is its own (the S stage's rate). LoRI-D's and
// LoRI-S's were moved up one step after the H200 study of 2026-12-01 (commit ca46bec) chose the top
// rate of the old grids (LoRI-D 3e-2 on code and safety, LoRI-S 9e-2 on three tasks).
static const float default_lrs[NUM_VARIANTS][4] = {
    {2e-4f, 6e-4f, 2e-3f, 6e-3f},      // full FT
    {5e-4f, 1.5e-3f, 4.5e-3f, 1.5e-2f}, // LoRA
    {3e-3f, 1e-2f, 3e-2f, 9e-2f},      // LoRI-D
    {1e-2f, 3e-2f, 1e-1f, 3e-1f},      // LoRI-S (the S stage)
    {5e-4f, 1.5e-3f, 4.5e-3f, 1.5e-2f}, // PLoRA
};
// The quick and cpu profiles sweep the middle two rates of each grid (a 3x span).

// merged and continual: the adapters of LoRA, LoRI-D, LoRI-S
#define NUM_KINDS 3
static const int kinds[NUM_KINDS] = {V_LORA, V_LORI_D, V_LORI_S};
typedef struct { MergeMethod method; int lori_weights; const char *label; } MergeSpec;
#define NUM_MERGES 6
static const MergeSpec merges[NUM_MERGES] = {
    {MERGE_CAT, 0, "cat"}, {MERGE_LINEAR, 0, "linear"}, {MERGE_TIES, 0, "ties"}, {MERGE_DARE_LINEAR, 0, "dare"},
    {MERGE_CAT, 1, "cat, LoRI weights"}, {MERGE_LINEAR, 1, "linear, LoRI weights"},
};
static const char *const merge_file[NUM_MERGES] = {"cat", "linear", "ties", "dare", "cat_lw", "linear_lw"};

// ----------------------------------------------------------------------------
// state

typedef struct {
    int done, tested;
    float lr;
    TrainResult r;
    EMResult val, test;
    double wall;          // seconds of the training call
    long file_bytes;      // what the run ships: adapter.bin; model.bin for full FT and PLoRA
    uint64_t key_sum;     // checksum of its resume key: its test score's key holds it
    char dir[1100];
} CmpRun;

typedef struct { double mean, sd, lo, hi; int n; } Stat;

typedef struct {
    // options
    char profile[16];
    int quick;
    char out[1024], tasks_dir[1024], base_arg[1024];
    int ntasks;
    char task_names[CMP_MAX_TASKS][64];
    int use_variant[NUM_VARIANTS];
    int nlrs[NUM_VARIANTS];
    float lrs[NUM_VARIANTS][CMP_MAX_LRS];
    int steps, nseeds, rank, B, T, eval_examples, val_examples, val_batches;
    int parts_merge, parts_continual, parts_plora;
    char continual_from[64], plora_task[64];
    int continual_max;    // continual learning: the first N other tasks (0: all)
    int nranks, ranks[CMP_MAX_RANKS], nstages, stages[CMP_MAX_STAGES];
    int bf16;
    int resume;           // --resume: units finished by an earlier invocation into -o DIR are read back
    // the base
    char base[1200];
    uint64_t base_sum;    // checksum of base.bin's bytes (part of every resumed unit's key)
    GPT2Config cfg;
    size_t base_params;
    // results
    double base_val_loss[CMP_MAX_TASKS];
    EMResult base_val[CMP_MAX_TASKS], base_test[CMP_MAX_TASKS];
    CmpRun runs[CMP_MAX_TASKS][NUM_VARIANTS][CMP_MAX_LRS][CMP_MAX_SEEDS];
    int best[CMP_MAX_TASKS][NUM_VARIANTS];  // chosen rate index
    EMResult merged[NUM_KINDS][NUM_MERGES][CMP_MAX_SEEDS][CMP_MAX_TASKS];
    int merged_ok[NUM_KINDS][NUM_MERGES], merged_rank[NUM_KINDS][NUM_MERGES];
    int src;                                 // continual: the source task's index (-1: none)
    int cont_ok[NUM_KINDS][CMP_MAX_TASKS];
    EMResult cont_src[NUM_KINDS][CMP_MAX_TASKS][CMP_MAX_SEEDS], cont_new[NUM_KINDS][CMP_MAX_TASKS][CMP_MAX_SEEDS];
    int ptask;                               // PLoRA experiment's task (-1: none)
    // plora[rank][0 LoRA, 1.. stage counts][seed]: first loss, final loss (mean of the last tenth)
    double pl_first[CMP_MAX_RANKS][1 + CMP_MAX_STAGES][CMP_MAX_SEEDS], pl_final[CMP_MAX_RANKS][1 + CMP_MAX_STAGES][CMP_MAX_SEEDS];
    double pl_full_first[CMP_MAX_SEEDS], pl_full_final[CMP_MAX_SEEDS];
    int pl_ok;
    // bookkeeping
    double t_start, t_pretrain;
    int nruns_done, nruns_total;
    int nresumed;         // units read back (--resume), and the seconds they took when they ran
    double t_resumed;
    char cmdline[2048];
    FILE *con;            // the terminal (stdout is the log while a run prints)
    int logfd, confd;
} Compare;

static EMResult em_of(int n, int correct) { EMResult e = {n, correct, 0}; return e; }
static double pct(EMResult e) { return e.n ? 100.0 * e.correct / e.n : NAN; }

static Stat stat_of(const double *x, int n) {
    Stat s = {0, 0, INFINITY, -INFINITY, 0};
    for (int i = 0; i < n; i++) if (isfinite(x[i])) { s.mean += x[i]; s.n++; s.lo = fmin(s.lo, x[i]); s.hi = fmax(s.hi, x[i]); }
    if (!s.n) return (Stat){NAN, NAN, NAN, NAN, 0};
    s.mean /= s.n;
    for (int i = 0; i < n; i++) if (isfinite(x[i])) s.sd += (x[i] - s.mean) * (x[i] - s.mean);
    s.sd = s.n > 1 ? sqrt(s.sd / (s.n - 1)) : 0;
    return s;
}
// "93.2 ± 1.4 [91.8–94.6]" (percent values)
static void fmt_stat(char *buf, size_t n, Stat s, int decimals) {
    if (!s.n) { snprintf(buf, n, "—"); return; }
    snprintf(buf, n, "%.*f ± %.*f [%.*f–%.*f]", decimals, s.mean, decimals, s.sd, decimals, s.lo, decimals, s.hi);
}

static void cmp_say(Compare *cm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cmp_say(Compare *cm, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(cm->con, fmt, ap);
    va_end(ap);
    fflush(cm->con);
}

// stdout goes to DIR/log.txt while the runs print; the progress lines go to the terminal.
static void log_begin(Compare *cm, const char *title) {
    fflush(stdout);
    dup2(cm->logfd, 1);
    printf("\n==================== %s\n", title);
}
static void log_end(Compare *cm) {
    fflush(stdout);
    dup2(cm->confd, 1);
}

// The ./train_gpt2 command line equivalent to c: every flag that differs from the defaults.
static void config_cmdline(const TrainConfig *c, char *buf, size_t n) {
    TrainConfig d;
    config_defaults(&d);
    snprintf(buf, n, "./train_gpt2");
    for (int i = 0; i < NUM_OPTIONS; i++) {
        const OptSpec *o = &options[i];
        const char *f = (const char *)c + o->offset, *g = (const char *)&d + o->offset;
        size_t l = strlen(buf);
        switch (o->type) {
            case OPT_INT: if (*(const int *)f != *(const int *)g) snprintf(buf + l, n - l, " --%s %d", o->name, *(const int *)f); break;
            case OPT_FLOAT: if (*(const float *)f != *(const float *)g) snprintf(buf + l, n - l, " --%s %g", o->name, *(const float *)f); break;
            case OPT_FLAG: if (*(const int *)f) snprintf(buf + l, n - l, " --%s", o->name); break;
            case OPT_STR:
                if (strcmp(f, g) != 0) snprintf(buf + l, n - l, strpbrk(f, " \t'\"$") || !*f ? " --%s '%s'" : " --%s %s", o->name, f);
                break;
        }
    }
}

static void write_text(const char *path, const char *text) {
    char tmp[1400];
    FILE *f = report_open(path, tmp, sizeof(tmp));
    if (!f) return;
    fputs(text, f);
    report_close(f, tmp, path);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static void mkdir_p(const char *dir) {
    char buf[1200];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') { *p = 0; if (mkdir(buf, 0755) != 0 && errno != EEXIST) die("cannot create %s: %s", buf, strerror(errno)); *p = '/'; }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) die("cannot create %s: %s", buf, strerror(errno));
}

// ----------------------------------------------------------------------------
// resuming: every finished unit (a training run with its scores, the scores of a merge, a continual
// or PLoRA run) leaves a small file: its key on the first line (the backend, the base's checksum,
// what was run: the trainer's command line or what was scored) and its numbers on the second, the
// last of them the seconds the unit took. With --resume a unit whose file holds the same key is read
// back instead of run again; a unit interrupted half-way left no file and runs again.

#define MEMO_MAX 32
static uint64_t fnv1a(const void *p, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}
#define FNV_START 1469598103934665603ull
// the key: -o DIR's own paths are written DIR/..., so `-o out` and `-o ./out` read each other back
static void memo_key(const Compare *cm, char *buf, size_t n, const char *what) {
    size_t l = (size_t)snprintf(buf, n, "compare-unit v1 | %s%s | base %016llx | ", cm->bf16 ? "" : "fp32 ",
#ifdef COMPARE_GPU
                                "gpu",
#else
                                "cpu",
#endif
                                (unsigned long long)cm->base_sum);
    size_t ol = strlen(cm->out);
    for (const char *w = what; *w && l + 8 < n;) {
        if (strncmp(w, cm->out, ol) == 0 && w[ol] == '/') { l += (size_t)snprintf(buf + l, n - l, "DIR"); w += ol; }
        else { buf[l++] = *w == '\n' ? ' ' : *w; w++; }
    }
    buf[l < n ? l : n - 1] = 0;
}

// 1 and vals[0..n) filled when path holds this unit's result (with --resume only); 0 otherwise
static int memo_load(Compare *cm, const char *path, const char *what, double *vals, int n) {
    if (!cm->resume) return 0;
    char err[256], key[9000];
    size_t len = 0;
    char *text = read_whole_file(path, &len, err, sizeof(err));
    if (!text) return 0;
    memo_key(cm, key, sizeof(key), what);
    size_t kl = strlen(key);
    int ok = len > kl && memcmp(text, key, kl) == 0 && text[kl] == '\n';
    char *p = text + kl + 1;
    for (int i = 0; ok && i < n; i++) {
        char *e;
        vals[i] = strtod(p, &e);
        ok = e != p;
        p = e;
    }
    while (ok && (*p == ' ' || *p == '\n')) p++;
    ok = ok && (size_t)(p - text) == len; // exactly n numbers: a file of another layout is not this unit's
    free(text);
    if (ok) cm->t_resumed += vals[n - 1];
    return ok;
}

static void memo_save(const Compare *cm, const char *path, const char *what, const double *vals, int n) {
    char key[9000], line[MEMO_MAX * 26 + 2], err[512];
    memo_key(cm, key, sizeof(key), what);
    size_t l = 0;
    for (int i = 0; i < n && i < MEMO_MAX; i++) l += (size_t)snprintf(line + l, sizeof(line) - l, "%s%.17g", i ? " " : "", vals[i]);
    snprintf(line + l, sizeof(line) - l, "\n");
    char head[9002];
    snprintf(head, sizeof(head), "%s\n", key);
    const void *bufs[2] = {head, line};
    size_t sizes[2] = {strlen(head), strlen(line)};
    if (write_chunks_atomic(path, bufs, sizes, 2, err, sizeof(err)) != 0) die("compare: %s", err);
}

// a run's TrainResult as numbers and back (the error text is not kept: a failed run reads back as failed)
#define TR_VALS 13
static void tr_pack(const TrainResult *r, double *v) {
    double x[TR_VALS] = {r->first_loss, r->final_train_loss, r->final_val_loss, r->seconds, r->tok_per_s, (double)r->total_params,
                         (double)r->trainable, (double)r->lora_equiv, (double)r->adapter_bytes, (double)r->lora_file_bytes,
                         r->steps, r->em_n, r->em_correct};
    memcpy(v, x, sizeof(x));
}
static void tr_unpack(TrainResult *r, const double *v) {
    memset(r, 0, sizeof(*r));
    r->first_loss = (float)v[0]; r->final_train_loss = (float)v[1]; r->final_val_loss = (float)v[2];
    r->seconds = v[3]; r->tok_per_s = v[4]; r->total_params = (size_t)v[5]; r->trainable = (size_t)v[6];
    r->lora_equiv = (size_t)v[7]; r->adapter_bytes = (long)v[8]; r->lora_file_bytes = (long)v[9];
    r->steps = (int)v[10]; r->em_n = (int)v[11]; r->em_correct = (int)v[12];
    if (r->steps < 0) snprintf(r->error, sizeof(r->error), "failed (read back by --resume)");
}

static void task_path(const Compare *cm, char *buf, size_t n, int t, const char *split) {
    snprintf(buf, n, "%s/%s_%s.bin", cm->tasks_dir, cm->task_names[t], split);
}

// One training run: validated, its command line written beside it, its output in the log.
static void cmp_train(Compare *cm, TrainConfig *c, const char *title, TrainResult *res) {
    if (validate_args(c) != 0) die("compare: internal: bad configuration for %s", title);
    char cmd[8192];
    config_cmdline(c, cmd, sizeof(cmd));
    if (c->output_dir[0]) {
        char path[1200], text[8300];
        mkdir_p(c->output_dir);
        snprintf(path, sizeof(path), "%s/command.txt", c->output_dir);
        snprintf(text, sizeof(text), "%s\n", cmd);
        write_text(path, text);
    }
    log_begin(cm, title);
    printf("%s\n", cmd);
    char *argv[] = {cmd};
    memset(res, 0, sizeof(*res));
#ifdef COMPARE_GPU
    int rc = run_training_gpu(c, cm->bf16, 1, argv, res);
#else
    int rc = run_training(c, 1, argv, res);
#endif
    log_end(cm);
    if (rc != 0) cmp_say(cm, "   FAILED: %s: %s (this run scores 0)\n", title, res->error);
    res->steps = rc == 0 ? res->steps : -1; // -1: failed (a diverged rate in a sweep, say)
    if (g_stop_requested) {
        cmp_say(cm, "interrupted during %s: every finished unit is kept in %s/; go on with the same command and --resume\n", title, cm->out);
        exit(130);
    }
}

// Exact match (greedy, on the host) of a model file with an optional adapter on one shard.
static EMResult cmp_score(Compare *cm, const char *model_path, const char *adapter_path, const char *shard, int max_examples) {
    char err[1024];
    GPT2 m;
    if (gpt2_load_checkpoint(&m, model_path, err, sizeof(err)) != 0) die("compare: %s", err);
    Adapter ad;
    if (adapter_path) {
        if (adapter_load(&ad, adapter_path, m.config.num_layers, m.config.channels, err, sizeof(err)) != 0) die("compare: %s", err);
        m.adapter = &ad;
    }
    float *scratch = NULL;
    log_begin(cm, "exact match");
    EMResult r = {0};
    if (eval_exact_match(&m, NULL, shard, max_examples, 0, &scratch, &r, err, sizeof(err)) != 0) die("compare: %s", err);
    printf("exact match of %s%s%s on %s: %d / %d\n", model_path, adapter_path ? " + " : "", adapter_path ? adapter_path : "", shard, r.correct, r.n);
    log_end(cm);
    free(scratch);
    if (adapter_path) adapter_free(&ad);
    m.adapter = NULL;
    gpt2_free(&m);
    return r;
}

// what a run ships and how it is scored: the trained model for full FT and PLoRA (PLoRA's earlier
// stages live in the base weights), the base + adapter.bin otherwise
static EMResult score_run(Compare *cm, const CmpRun *r, int v, const char *shard, int max_examples) {
    if (r->r.steps < 0) return em_of(1, 0);
    char model[1300], adapter[1300];
    snprintf(model, sizeof(model), "%s/model.bin", r->dir);
    snprintf(adapter, sizeof(adapter), "%s/adapter.bin", r->dir);
    if (v == V_FULL || v == V_PLORA) return cmp_score(cm, model, NULL, shard, max_examples);
    return cmp_score(cm, cm->base, adapter, shard, max_examples);
}

// A unit is done: its line, with the ETA from the units run by this invocation (not those read back).
// A stop (Ctrl-C, SIGTERM) ends the study here, between units: -o DIR keeps every finished unit
// for --resume.
static void progress(Compare *cm, const char *what, const char *detail, int resumed) {
    cm->nruns_done++;
    cm->nresumed += resumed;
    double el = now_s() - cm->t_start;
    int ran = cm->nruns_done - cm->nresumed;
    char eta[32], done[32];
    format_eta(el, done, sizeof(done));
    format_eta(ran > 0 ? el / ran * (cm->nruns_total - cm->nruns_done) : -1, eta, sizeof(eta));
    cmp_say(cm, "[%3d/%d] %-40s %s%s  (elapsed %s, ETA %s)\n", cm->nruns_done, cm->nruns_total, what, detail,
            resumed ? "  (resumed)" : "", done, eta);
    if (g_stop_requested) {
        cmp_say(cm, "interrupted after %d of %d units: every finished one is kept in %s/; go on with the same command and --resume\n",
                cm->nruns_done, cm->nruns_total, cm->out);
        exit(130);
    }
}

// ----------------------------------------------------------------------------
// the tasks, the base

// The tasks of a folder: every NAME with NAME_train.bin, NAME_val.bin and NAME_test.bin (each with
// its .lossmask, holding well-formed prompt/answer documents, token ids below the base's vocab).
// Any problem stops with a message naming the file.
static int find_tasks(Compare *cm, char *err, size_t errlen) {
    DIR *d = opendir(cm->tasks_dir);
    if (!d) { snprintf(err, errlen, "--tasks %s: cannot open the folder: %s", cm->tasks_dir, strerror(errno)); return -1; }
    char names[64][64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        const char *suffixes[3] = {"_train.bin", "_val.bin", "_test.bin"};
        for (int s = 0; s < 3; s++) {
            size_t k = strlen(suffixes[s]);
            if (l > k && strcmp(e->d_name + l - k, suffixes[s]) == 0 && l - k < 64) {
                char nm[64];
                memcpy(nm, e->d_name, l - k);
                nm[l - k] = 0;
                if (strcmp(nm, "pretrain") == 0) continue; // the embedded suite's corpus: no test split
                int seen = 0;
                for (int i = 0; i < n; i++) seen |= strcmp(names[i], nm) == 0;
                if (!seen && n < 64) snprintf(names[n++], 64, "%s", nm);
            }
        }
    }
    closedir(d);
    if (n == 0) { snprintf(err, errlen, "--tasks %s: no NAME_train.bin / NAME_val.bin / NAME_test.bin files in the folder", cm->tasks_dir); return -1; }
    for (int i = 1; i < n; i++) for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
        char t[64]; memcpy(t, names[j], 64); memcpy(names[j], names[j - 1], 64); memcpy(names[j - 1], t, 64);
    }
    // the embedded suite keeps its own order (classify, arith, code, safety)
    int embedded = 1;
    for (int i = 0; i < n; i++) embedded &= tasks_index(names[i]) >= 0;
    if (embedded && n == TASKS_NTASKS) for (int t = 0; t < n; t++) snprintf(names[t], 64, "%s", tasks_names[t]);
    if (n > CMP_MAX_TASKS) { snprintf(err, errlen, "--tasks %s: %d tasks, at most %d", cm->tasks_dir, n, CMP_MAX_TASKS); return -1; }
    for (int i = 0; i < n; i++) {
        for (int s = 0; s < 3; s++) {
            char path[1200], merr[1024];
            snprintf(path, sizeof(path), "%s/%s_%s.bin", cm->tasks_dir, names[i], tasks_splits[s]);
            struct stat st;
            if (stat(path, &st) != 0) { snprintf(err, errlen, "--tasks: task '%s' has no %s split: %s is missing", names[i], tasks_splits[s], path); return -1; }
            Shard sh;
            if (shard_load(&sh, path, cm->cfg.vocab_size, merr, sizeof(merr)) != 0) {
                snprintf(err, errlen, "--tasks: %s (does the base %s match these tasks' tokenizer?)", merr, cm->base);
                return -1;
            }
            if (!sh.mask) { shard_free(&sh); snprintf(err, errlen, "--tasks: %s has no .lossmask beside it (prompt/answer shards: dev/data/jsonl_to_shards.py)", path); return -1; }
            long ne = tasks_extract_examples(sh.tokens, sh.mask, sh.ntok, NULL, 0);
            shard_free(&sh);
            if (ne < 0) { snprintf(err, errlen, "--tasks: %s: not a sequence of EOT + prompt + masked answer documents", path); return -1; }
            if (ne == 0) { snprintf(err, errlen, "--tasks: %s holds no examples", path); return -1; }
        }
        snprintf(cm->task_names[i], 64, "%s", names[i]);
    }
    cm->ntasks = n;
    return 0;
}

// The embedded base: the same steps as run_default (the suite if missing, the base pretrained and
// cached if missing or its recipe changed).
static void ensure_embedded_base(Compare *cm) {
    if (!tasks_present(DEFAULT_DATA_DIR)) {
        cmp_say(cm, "== generating the task suite into %s/ (seed %d)\n", DEFAULT_DATA_DIR, TASKS_DEFAULT_SEED);
        if (tasks_generate(DEFAULT_DATA_DIR, TASKS_DEFAULT_SEED, 0) != 0) die("could not generate the task suite in %s", DEFAULT_DATA_DIR);
    }
    mkdir(DEFAULT_OUT_DIR, 0755);
    char stamp[1200], recipe[512], have[512] = "";
    snprintf(cm->base, sizeof(cm->base), "%s/base/model.bin", DEFAULT_OUT_DIR);
    snprintf(stamp, sizeof(stamp), "%s/base/RECIPE", DEFAULT_OUT_DIR);
    default_base_recipe(recipe, sizeof(recipe));
    FILE *sf = fopen(stamp, "r");
    if (sf) { if (!fgets(have, sizeof(have), sf)) have[0] = 0; fclose(sf); }
    struct stat st;
    if (stat(cm->base, &st) == 0 && strcmp(have, recipe) == 0) {
        cmp_say(cm, "== using the cached base model %s\n", cm->base);
        return;
    }
    cmp_say(cm, "== pretraining the base model (%d steps, as ./train_lori does; cached in %s)\n", DEFAULT_PRETRAIN_STEPS, cm->base);
    double t0 = now_s();
    TrainConfig bc;
    default_base_config(&bc);
    TrainResult r;
    cmp_train(cm, &bc, "pretraining the base model", &r);
    sf = fopen(stamp, "w");
    if (sf) { fputs(recipe, sf); fclose(sf); }
    cm->t_pretrain = now_s() - t0;
    cmp_say(cm, "   done in %.0f s\n", cm->t_pretrain);
}

// Every run starts from DIR/base.bin, a copy of the base taken once: the report stays consistent
// (and reproducible from DIR) even if the cached base is retrained while it runs.
static void snapshot_base(Compare *cm) {
    char err[1024], dst[1200];
    size_t n = 0;
    void *data = read_whole_file(cm->base, &n, err, sizeof(err));
    if (!data) die("compare: -e: %s", err);
    snprintf(dst, sizeof(dst), "%s/base.bin", cm->out);
    const void *bufs[1] = {data};
    size_t sizes[1] = {n};
    if (write_chunks_atomic(dst, bufs, sizes, 1, err, sizeof(err)) != 0) die("compare: %s", err);
    cm->base_sum = fnv1a(data, n, FNV_START);
    free(data);
    snprintf(cm->base, sizeof(cm->base), "%s", dst);
    GPT2 m;
    if (gpt2_load_checkpoint(&m, cm->base, err, sizeof(err)) != 0) die("compare: -e: %s", err);
    cm->cfg = m.config;
    cm->base_params = m.num_parameters;
    gpt2_free(&m);
}

// ----------------------------------------------------------------------------
// the recipe of one run, its cost

// Variant v on task t at rate lr, seed s, rank r, for cm->steps optimizer steps of B x T tokens.
static void ft_config(const Compare *cm, TrainConfig *c, int v, int t, float lr, int s, int rank, const char *outdir) {
    config_defaults(c);
    snprintf(c->model, sizeof(c->model), "%s", cm->base);
    task_path(cm, c->train_pattern, sizeof(c->train_pattern), t, "train");
    task_path(cm, c->val_pattern, sizeof(c->val_pattern), t, "val");
    snprintf(c->output_dir, sizeof(c->output_dir), "%s", outdir);
    c->B = cm->B; c->T = cm->T; c->max_steps = cm->steps; c->lr = lr;
    c->rank = rank; c->alpha = 2.0f * rank; c->warmup = cm->steps >= 100 ? 10 : 1; c->final_frac = 0.1f;
    c->val_every = 0; c->val_batches = cm->val_batches; c->sample_every = 0; c->print_every = 50;
    c->seed = CMP_DATA_SEED + s;
    c->adapter_seed = CMP_ADAPTER_SEED + 100 * t + s;
    snprintf(c->adapter, sizeof(c->adapter), "%s", variants[v].adapter);
    if (v == V_LORI_D) strcpy(c->lori_stage, "d");
    if (v == V_LORI_S) { // LoRI-D for half the budget at LoRI-D's chosen rate (the mask), LoRI-S for the rest at lr
        strcpy(c->lori_stage, "ds");
        c->max_steps = cm->steps / 2;
        c->lori_steps_s = cm->steps - cm->steps / 2;
        int bd = cm->best[t][V_LORI_D];
        c->lori_lr_d = bd >= 0 ? cm->lrs[V_LORI_D][bd] : lr / 10;
        c->lori_lr_s = lr;
    }
    if (v == V_PLORA) c->plora_every = cm->steps / CMP_PLORA_STAGES > 0 ? cm->steps / CMP_PLORA_STAGES : 1;
}

// Matrix-product FLOPs per token of one training step (analytic): a linear of n weights costs 2n
// forward; its backward 2n for the input gradient plus 2n for the weight gradient when it trains.
// Attention (causal, T/2 keys on average) 2·2·(T/2)·C per layer forward, twice that backward. The
// LM head (tied wte, Vp x C) is a linear. An adapter of rank r on a (out, in) linear: forward
// 2r(in+out); backward 2r(in+out) for the input gradient path plus 2r·out for dB and, when A trains,
// 2r·in for dA. LoRI-S's masked B costs what dense B costs (our kernels do not exploit the mask).
static double flops_per_token(const Compare *cm, int v, int rank) {
    double L = cm->cfg.num_layers, C = cm->cfg.channels, Vp = cm->cfg.padded_vocab_size, T = cm->T;
    double lin = L * 12 * C * C + Vp * C, attn = L * 2 * T * C;
    double fwd = 2 * lin + attn;
    if (v == V_FULL) return fwd + 4 * lin + 2 * attn;
    double io = L * ((C + 3 * C) + (C + C) + (C + 4 * C) + (4 * C + C)); // Σ (in + out) over the adapted linears
    double out = L * (3 * C + C + 4 * C + C), in = L * (C + C + C + 4 * C);
    double ad_fwd = 2 * rank * io, ad_bwd = 2 * rank * io + 2 * rank * out + (v == V_LORA || v == V_PLORA ? 2 * rank * in : 0);
    return fwd + ad_fwd + 2 * lin + 2 * attn + ad_bwd;
}
static double run_flops(const Compare *cm, int v, int rank, int steps) {
    double tokens = (double)steps * cm->B * cm->T;
    if (v != V_LORI_S) return tokens * flops_per_token(cm, v, rank);
    double half = (double)(steps / 2) * cm->B * cm->T;
    return half * flops_per_token(cm, V_LORI_D, rank) + (tokens - half) * flops_per_token(cm, V_LORI_D, rank);
}

// ----------------------------------------------------------------------------
// part 1: sweeps and seeds

static void train_run(Compare *cm, int t, int v, int li, int s) {
    CmpRun *run = &cm->runs[t][v][li][s];
    if (run->done) return;
    run->lr = cm->lrs[v][li];
    snprintf(run->dir, sizeof(run->dir), "%s/runs/%s/%s/lr%g_s%d", cm->out, cm->task_names[t], variants[v].name, (double)run->lr, s);
    TrainConfig c;
    ft_config(cm, &c, v, t, run->lr, s, cm->rank, run->dir);
    char title[256], detail[256], shard[1200], memo[1300], what[9000];
    snprintf(title, sizeof(title), "%s: %s lr %g seed %d", cm->task_names[t], variants[v].label, (double)run->lr, s);
    task_path(cm, shard, sizeof(shard), t, "val");
    config_cmdline(&c, what, sizeof(what));
    size_t wl = strlen(what);
    snprintf(what + wl, sizeof(what) - wl, " | val exact match %s first %d", shard, cm->val_examples);
    snprintf(memo, sizeof(memo), "%s/result.txt", run->dir);
    run->key_sum = fnv1a(what, strlen(what), FNV_START);
    double m[TR_VALS + 5];
    int resumed = memo_load(cm, memo, what, m, TR_VALS + 5);
    if (resumed) {
        tr_unpack(&run->r, m);
        run->val = em_of((int)m[TR_VALS], (int)m[TR_VALS + 1]);
        run->wall = m[TR_VALS + 2];
        run->file_bytes = (long)m[TR_VALS + 3];
    } else {
        double t0 = now_s();
        cmp_train(cm, &c, title, &run->r);
        run->wall = now_s() - t0;
        char path[1300];
        snprintf(path, sizeof(path), "%s/%s", run->dir, v == V_FULL || v == V_PLORA ? "model.bin" : "adapter.bin");
        run->file_bytes = file_size(path);
        run->val = score_run(cm, run, v, shard, cm->val_examples);
        tr_pack(&run->r, m);
        m[TR_VALS] = run->val.n; m[TR_VALS + 1] = run->val.correct; m[TR_VALS + 2] = run->wall; m[TR_VALS + 3] = run->file_bytes;
        m[TR_VALS + 4] = now_s() - t0;
        memo_save(cm, memo, what, m, TR_VALS + 5);
    }
    run->done = 1;
    snprintf(detail, sizeof(detail), "val loss %.4f  val exact match %5.1f%%  %5.1f s", run->r.final_val_loss, pct(run->val), run->wall);
    progress(cm, title, detail, resumed);
}

static void test_run(Compare *cm, int t, int v, int li, int s) {
    CmpRun *run = &cm->runs[t][v][li][s];
    if (run->tested) return;
    char shard[1200], memo[1300], what[2600];
    task_path(cm, shard, sizeof(shard), t, "test");
    snprintf(memo, sizeof(memo), "%s/test.txt", run->dir);
    snprintf(what, sizeof(what), "test exact match of %s (run %016llx) on %s first %d", run->dir, (unsigned long long)run->key_sum, shard,
             cm->eval_examples);
    double m[3];
    if (memo_load(cm, memo, what, m, 3)) run->test = em_of((int)m[0], (int)m[1]);
    else {
        double t0 = now_s();
        run->test = score_run(cm, run, v, shard, cm->eval_examples);
        m[0] = run->test.n; m[1] = run->test.correct; m[2] = now_s() - t0;
        memo_save(cm, memo, what, m, 3);
    }
    run->tested = 1;
}

// Best rate of variant v on task t: validation exact match on seed 0, then validation loss.
static int choose_rate(const Compare *cm, int t, int v) {
    int best = -1;
    for (int li = 0; li < cm->nlrs[v]; li++) {
        const CmpRun *r = &cm->runs[t][v][li][0];
        if (!r->done) continue;
        if (best < 0) { best = li; continue; }
        const CmpRun *b = &cm->runs[t][v][best][0];
        double e = pct(r->val), eb = pct(b->val);
        float l = isfinite(r->r.final_val_loss) ? r->r.final_val_loss : INFINITY, lb = isfinite(b->r.final_val_loss) ? b->r.final_val_loss : INFINITY;
        if (e > eb + CMP_TIE_EM || (fabs(e - eb) <= CMP_TIE_EM && l < lb)) best = li;
    }
    return best;
}

static void part_finetune(Compare *cm) {
    cmp_say(cm, "== 1. fine-tuning: a learning-rate sweep per task and variant (seed 0, validation exact match), then %d seeds at the best rate\n", cm->nseeds);
    for (int t = 0; t < cm->ntasks; t++) {
        // the base model before fine-tuning
        TrainConfig ec;
        config_defaults(&ec);
        snprintf(ec.model, sizeof(ec.model), "%s", cm->base);
        task_path(cm, ec.val_pattern, sizeof(ec.val_pattern), t, "val");
        strcpy(ec.adapter, "none");
        ec.B = cm->B; ec.T = cm->T; ec.max_steps = 0; ec.sample_every = 0; ec.val_batches = cm->val_batches;
        char title[256], detail[256], vshard[1200], tshard[1200], dir[1200], memo[1300], what[9000];
        snprintf(title, sizeof(title), "%s: the base model", cm->task_names[t]);
        task_path(cm, vshard, sizeof(vshard), t, "val");
        task_path(cm, tshard, sizeof(tshard), t, "test");
        snprintf(dir, sizeof(dir), "%s/runs/%s", cm->out, cm->task_names[t]);
        mkdir_p(dir);
        snprintf(memo, sizeof(memo), "%s/base.txt", dir);
        config_cmdline(&ec, what, sizeof(what));
        size_t wl = strlen(what);
        snprintf(what + wl, sizeof(what) - wl, " | exact match %s first %d, %s first %d", vshard, cm->val_examples, tshard, cm->eval_examples);
        double m[6];
        int resumed = memo_load(cm, memo, what, m, 6);
        if (resumed) {
            cm->base_val_loss[t] = m[0];
            cm->base_val[t] = em_of((int)m[1], (int)m[2]);
            cm->base_test[t] = em_of((int)m[3], (int)m[4]);
        } else {
            double t0 = now_s();
            TrainResult r;
            cmp_train(cm, &ec, title, &r);
            cm->base_val_loss[t] = r.final_val_loss;
            cm->base_val[t] = cmp_score(cm, cm->base, NULL, vshard, cm->val_examples);
            cm->base_test[t] = cmp_score(cm, cm->base, NULL, tshard, cm->eval_examples);
            double x[6] = {cm->base_val_loss[t], cm->base_val[t].n, cm->base_val[t].correct, cm->base_test[t].n, cm->base_test[t].correct, now_s() - t0};
            memo_save(cm, memo, what, x, 6);
        }
        snprintf(detail, sizeof(detail), "val loss %.4f  test exact match %5.1f%%", cm->base_val_loss[t], pct(cm->base_test[t]));
        progress(cm, title, detail, resumed);
        for (int k = 0; k < NUM_VARIANTS; k++) {
            int v = variant_order[k];
            if (!cm->use_variant[v]) continue;
            for (int li = 0; li < cm->nlrs[v]; li++) train_run(cm, t, v, li, 0);
            int b = cm->best[t][v] = choose_rate(cm, t, v);
            for (int s = 1; s < cm->nseeds; s++) train_run(cm, t, v, b, s);
            for (int s = 0; s < cm->nseeds; s++) test_run(cm, t, v, b, s);
            double em[CMP_MAX_SEEDS];
            for (int s = 0; s < cm->nseeds; s++) em[s] = pct(cm->runs[t][v][b][s].test);
            char st[96];
            fmt_stat(st, sizeof(st), stat_of(em, cm->nseeds), 1);
            cmp_say(cm, "        %s %s: best rate %g -> test exact match %s%%\n", cm->task_names[t], variants[v].label, (double)cm->lrs[v][b], st);
        }
    }
}

static const CmpRun *best_run(const Compare *cm, int t, int v, int s) {
    int b = cm->best[t][v];
    return b >= 0 ? &cm->runs[t][v][b][s] : NULL;
}
static Stat test_stat(const Compare *cm, int t, int v) {
    double x[CMP_MAX_SEEDS];
    for (int s = 0; s < cm->nseeds; s++) { const CmpRun *r = best_run(cm, t, v, s); x[s] = r && r->tested ? pct(r->test) : NAN; }
    return stat_of(x, cm->nseeds);
}

// ----------------------------------------------------------------------------
// part 2: merging

static void part_merge(Compare *cm) {
    if (cm->ntasks < 2) return;
    cmp_say(cm, "== 2. merging the %d task adapters (LoRA, LoRI-D, LoRI-S; %d seeds)\n", cm->ntasks, cm->nseeds);
    char dir[1200];
    snprintf(dir, sizeof(dir), "%s/merge", cm->out);
    mkdir_p(dir);
    for (int k = 0; k < NUM_KINDS; k++) {
        int v = kinds[k];
        if (!cm->use_variant[v]) continue;
        for (int s = 0; s < cm->nseeds; s++) {
            Adapter in[CMP_MAX_TASKS];
            const Adapter *ptr[CMP_MAX_TASKS];
            char err[1024], path[1400];
            int failed = 0;
            for (int t = 0; t < cm->ntasks; t++) failed |= best_run(cm, t, v, s)->r.steps < 0;
            if (failed) { // a task adapter of this seed failed to train: its merges score 0
                for (int mi = 0; mi < NUM_MERGES; mi++) for (int t = 0; t < cm->ntasks; t++) cm->merged[k][mi][s][t] = em_of(1, 0);
                continue;
            }
            int loaded = 0; // the task adapters, read when a merge is not read back
            for (int mi = 0; mi < NUM_MERGES; mi++) {
                float w[CMP_MAX_TASKS];
                for (int t = 0; t < cm->ntasks; t++) w[t] = merges[mi].lori_weights ? 1.2f / cm->ntasks : 1.0f;
                char desc[256];
                snprintf(desc, sizeof(desc), "./compare: %s of the %s task adapters (seed %d), weight %g, density %g", merges[mi].label,
                         variants[v].label, s, (double)w[0], (double)CMP_MERGE_DENSITY);
                snprintf(path, sizeof(path), "%s/%s_%s_s%d.bin", dir, variants[v].name, merge_file[mi], s);
                // resumable: the merge's rank and scores, keyed by the runs that made its inputs and how it is scored
                char memo[1400], key[4096];
                snprintf(memo, sizeof(memo), "%s/%s_%s_s%d.txt", dir, variants[v].name, merge_file[mi], s);
                size_t kl = (size_t)snprintf(key, sizeof(key), "%s; first %d test examples of", desc, cm->eval_examples);
                for (int t = 0; t < cm->ntasks; t++)
                    kl += (size_t)snprintf(key + kl, sizeof(key) - kl, " %s (run %016llx)", cm->task_names[t], (unsigned long long)best_run(cm, t, v, s)->key_sum);
                int nm = 2 * cm->ntasks + 2;
                double m[2 * CMP_MAX_TASKS + 2];
                int resumed = memo_load(cm, memo, key, m, nm);
                double t0 = now_s();
                if (resumed) cm->merged_rank[k][mi] = (int)m[2 * cm->ntasks];
                else {
                    for (int t = 0; t < cm->ntasks && !loaded; t++) {
                        char ap[1300];
                        snprintf(ap, sizeof(ap), "%s/adapter.bin", best_run(cm, t, v, s)->dir);
                        if (adapter_load(&in[t], ap, 0, 0, err, sizeof(err)) != 0) die("compare: %s", err);
                        ptr[t] = &in[t];
                    }
                    loaded = 1;
                    MergeConfig mc = {merges[mi].method, CMP_MERGE_DENSITY, CMP_MERGE_SEED + (uint64_t)s, 0};
                    Adapter out;
                    if (adapter_merge(&out, ptr, w, cm->ntasks, &mc, err, sizeof(err)) != 0) die("compare: merge %s: %s", merges[mi].label, err);
                    if (adapter_save(&out, path, desc, err, sizeof(err)) != 0) die("compare: %s", err);
                    cm->merged_rank[k][mi] = out.cfg.rank;
                    adapter_free(&out);
                }
                char detail[512] = "", what[160];
                for (int t = 0; t < cm->ntasks; t++) {
                    char shard[1200];
                    task_path(cm, shard, sizeof(shard), t, "test");
                    cm->merged[k][mi][s][t] = resumed ? em_of((int)m[2 * t], (int)m[2 * t + 1])
                                                      : cmp_score(cm, cm->base, path, shard, cm->eval_examples);
                    m[2 * t] = cm->merged[k][mi][s][t].n; m[2 * t + 1] = cm->merged[k][mi][s][t].correct;
                    size_t l = strlen(detail);
                    snprintf(detail + l, sizeof(detail) - l, "%s%s %.0f%%", t ? ", " : "", cm->task_names[t], pct(cm->merged[k][mi][s][t]));
                }
                if (!resumed) {
                    m[2 * cm->ntasks] = cm->merged_rank[k][mi];
                    m[2 * cm->ntasks + 1] = now_s() - t0;
                    memo_save(cm, memo, key, m, nm);
                }
                cm->merged_ok[k][mi] = 1;
                snprintf(what, sizeof(what), "merge %s %s seed %d", variants[v].label, merges[mi].label, s);
                progress(cm, what, detail, resumed);
            }
            if (loaded) for (int t = 0; t < cm->ntasks; t++) adapter_free(&in[t]);
        }
    }
}

// mean over tasks of the merged scores, per seed -> Stat over seeds
static Stat merge_mean_stat(const Compare *cm, int k, int mi) {
    double x[CMP_MAX_SEEDS];
    for (int s = 0; s < cm->nseeds; s++) {
        x[s] = 0;
        for (int t = 0; t < cm->ntasks; t++) x[s] += pct(cm->merged[k][mi][s][t]) / cm->ntasks;
    }
    return stat_of(x, cm->nseeds);
}
static Stat single_mean_stat(const Compare *cm, int v) {
    double x[CMP_MAX_SEEDS];
    for (int s = 0; s < cm->nseeds; s++) {
        x[s] = 0;
        for (int t = 0; t < cm->ntasks; t++) x[s] += pct(best_run(cm, t, v, s)->test) / cm->ntasks;
    }
    return stat_of(x, cm->nseeds);
}

// ----------------------------------------------------------------------------
// part 3: continual learning

static void part_continual(Compare *cm) {
    if (cm->src < 0 || cm->ntasks < 2) return;
    const char *src = cm->task_names[cm->src];
    cmp_say(cm, "== 3. continual learning: %s -> each other task (LoRA, LoRI-D, LoRI-S; %d seeds)\n", src, cm->nseeds);
    for (int k = 0; k < NUM_KINDS; k++) {
        int v = kinds[k];
        if (!cm->use_variant[v]) continue;
        for (int t = 0, nt = 0; t < cm->ntasks; t++) {
            if (t == cm->src || (cm->continual_max > 0 && nt >= cm->continual_max)) continue;
            nt++;
            for (int s = 0; s < cm->nseeds; s++) {
                char outdir[1200], title[256], detail[256], shard[1200], adapter[1300];
                snprintf(outdir, sizeof(outdir), "%s/continual/%s_%s_to_%s_s%d", cm->out, variants[v].name, src, cm->task_names[t], s);
                TrainConfig c;
                ft_config(cm, &c, v, t, cm->lrs[v][cm->best[t][v]], s, cm->rank, outdir);
                snprintf(c.adapter_in, sizeof(c.adapter_in), "%s/adapter.bin", best_run(cm, cm->src, v, s)->dir);
                snprintf(title, sizeof(title), "continual %s: %s -> %s seed %d", variants[v].label, src, cm->task_names[t], s);
                char memo[1300], what[9000];
                snprintf(memo, sizeof(memo), "%s/result.txt", outdir);
                config_cmdline(&c, what, sizeof(what));
                size_t wl = strlen(what);
                snprintf(what + wl, sizeof(what) - wl, " | from run %016llx | test exact match of %s and %s, first %d",
                         (unsigned long long)best_run(cm, cm->src, v, s)->key_sum, src, cm->task_names[t], cm->eval_examples);
                double m[5];
                int resumed = memo_load(cm, memo, what, m, 5);
                if (resumed) {
                    cm->cont_src[k][t][s] = em_of((int)m[0], (int)m[1]);
                    cm->cont_new[k][t][s] = em_of((int)m[2], (int)m[3]);
                } else {
                    double t0 = now_s();
                    TrainResult r;
                    cmp_train(cm, &c, title, &r);
                    snprintf(adapter, sizeof(adapter), "%s/adapter.bin", outdir);
                    task_path(cm, shard, sizeof(shard), cm->src, "test");
                    cm->cont_src[k][t][s] = r.steps < 0 ? em_of(1, 0) : cmp_score(cm, cm->base, adapter, shard, cm->eval_examples);
                    task_path(cm, shard, sizeof(shard), t, "test");
                    cm->cont_new[k][t][s] = r.steps < 0 ? em_of(1, 0) : cmp_score(cm, cm->base, adapter, shard, cm->eval_examples);
                    double x[5] = {cm->cont_src[k][t][s].n, cm->cont_src[k][t][s].correct, cm->cont_new[k][t][s].n, cm->cont_new[k][t][s].correct, now_s() - t0};
                    memo_save(cm, memo, what, x, 5);
                }
                snprintf(detail, sizeof(detail), "%s %5.1f%% -> %5.1f%%, %s %5.1f%%", src, pct(best_run(cm, cm->src, v, s)->test),
                         pct(cm->cont_src[k][t][s]), cm->task_names[t], pct(cm->cont_new[k][t][s]));
                progress(cm, title, detail, resumed);
            }
            cm->cont_ok[k][t] = 1;
        }
    }
}

// forgetting (source before - after), per seed averaged over the new tasks -> Stat over seeds
static Stat forgetting_stat(const Compare *cm, int k, int only_t) {
    double x[CMP_MAX_SEEDS];
    for (int s = 0; s < cm->nseeds; s++) {
        double sum = 0;
        int n = 0;
        for (int t = 0; t < cm->ntasks; t++) {
            if (!cm->cont_ok[k][t] || (only_t >= 0 && t != only_t)) continue;
            sum += pct(best_run(cm, cm->src, kinds[k], s)->test) - pct(cm->cont_src[k][t][s]);
            n++;
        }
        x[s] = n ? sum / n : NAN;
    }
    return stat_of(x, cm->nseeds);
}

// ----------------------------------------------------------------------------
// part 4: PLoRA's claim — how far the training loss falls at low rank

// first step's loss and the mean of the last tenth of the steps, from a run's train.csv
static int loss_fall(const char *dir, double *first, double *final) {
    char path[1300];
    snprintf(path, sizeof(path), "%s/train.csv", dir);
    double *xs = NULL, *ys = NULL;
    int n = read_train_csv(path, &xs, &ys);
    if (n <= 0) { free(xs); free(ys); return -1; }
    int k = n / 10 > 0 ? n / 10 : 1;
    double sum = 0;
    for (int i = n - k; i < n; i++) sum += ys[i];
    *first = ys[0];
    *final = sum / k;
    free(xs); free(ys);
    return 0;
}

static void part_plora(Compare *cm) {
    int t = cm->ptask;
    if (t < 0 || !cm->use_variant[V_LORA] || !cm->use_variant[V_PLORA]) return;
    cmp_say(cm, "== 4. PLoRA's claim on '%s': LoRA vs PLoRA (stages", cm->task_names[t]);
    for (int j = 0; j < cm->nstages; j++) cmp_say(cm, " %d", cm->stages[j]);
    cmp_say(cm, ") at ranks");
    for (int i = 0; i < cm->nranks; i++) cmp_say(cm, " %d", cm->ranks[i]);
    cmp_say(cm, ", %d steps, %d seeds\n", cm->steps, cm->nseeds);
    for (int i = 0; i < cm->nranks; i++) {
        for (int j = 0; j <= cm->nstages; j++) {
            int v = j == 0 ? V_LORA : V_PLORA;
            for (int s = 0; s < cm->nseeds; s++) {
                char outdir[1200], title[256], detail[256];
                snprintf(outdir, sizeof(outdir), "%s/plora/r%d_%s_s%d", cm->out, cm->ranks[i], j == 0 ? "lora" : "plora", s);
                if (j > 0) { size_t l = strlen(outdir); snprintf(outdir + l - 3, sizeof(outdir) - l + 3, "%d_s%d", cm->stages[j - 1], s); }
                TrainConfig c;
                ft_config(cm, &c, v, t, cm->lrs[v][cm->best[t][v]], s, cm->ranks[i], outdir);
                if (j > 0) c.plora_every = cm->steps / cm->stages[j - 1] > 0 ? cm->steps / cm->stages[j - 1] : 1;
                c.val_batches = 0;
                snprintf(title, sizeof(title), "plora claim: %s rank %d%s%.0d seed %d", j == 0 ? "LoRA" : "PLoRA", cm->ranks[i],
                         j ? " stages " : "", j ? cm->stages[j - 1] : 0, s);
                char memo[1300], what[9000];
                snprintf(memo, sizeof(memo), "%s/result.txt", outdir);
                config_cmdline(&c, what, sizeof(what));
                double m[3];
                int resumed = memo_load(cm, memo, what, m, 3);
                if (resumed) { cm->pl_first[i][j][s] = m[0]; cm->pl_final[i][j][s] = m[1]; }
                else {
                    double t0 = now_s();
                    TrainResult r;
                    cmp_train(cm, &c, title, &r);
                    if (loss_fall(outdir, &cm->pl_first[i][j][s], &cm->pl_final[i][j][s]) != 0) die("compare: no train.csv in %s", outdir);
                    double x[3] = {cm->pl_first[i][j][s], cm->pl_final[i][j][s], now_s() - t0};
                    memo_save(cm, memo, what, x, 3);
                }
                snprintf(detail, sizeof(detail), "loss %.4f -> %.4f", cm->pl_first[i][j][s], cm->pl_final[i][j][s]);
                progress(cm, title, detail, resumed);
            }
        }
    }
    for (int s = 0; s < cm->nseeds; s++) {
        const CmpRun *r = cm->use_variant[V_FULL] ? best_run(cm, t, V_FULL, s) : NULL;
        if (!r || loss_fall(r->dir, &cm->pl_full_first[s], &cm->pl_full_final[s]) != 0) cm->pl_full_first[s] = cm->pl_full_final[s] = NAN;
    }
    cm->pl_ok = 1;
}

static Stat fall_stat(const Compare *cm, int i, int j) {
    double x[CMP_MAX_SEEDS];
    for (int s = 0; s < cm->nseeds; s++) x[s] = j < 0 ? cm->pl_full_first[s] - cm->pl_full_final[s] : cm->pl_first[i][j][s] - cm->pl_final[i][j][s];
    return stat_of(x, cm->nseeds);
}
// per seed, PLoRA's fall over LoRA's at rank i
static Stat ratio_stat(const Compare *cm, int i, int j) {
    double x[CMP_MAX_SEEDS];
    for (int s = 0; s < cm->nseeds; s++) {
        double lora = cm->pl_first[i][0][s] - cm->pl_final[i][0][s];
        x[s] = (cm->pl_first[i][j][s] - cm->pl_final[i][j][s]) / lora;
    }
    return stat_of(x, cm->nseeds);
}

// ----------------------------------------------------------------------------
// CSV files

static void write_csvs(Compare *cm) {
    char path[1200], tmp[1300];
    snprintf(path, sizeof(path), "%s/sweep.csv", cm->out);
    FILE *f = report_open(path, tmp, sizeof(tmp));
    if (f) {
        fprintf(f, "task,variant,lr,seed,chosen,val_loss,val_em_correct,val_em_n,val_exact_match,train_seconds\n");
        for (int t = 0; t < cm->ntasks; t++) for (int v = 0; v < NUM_VARIANTS; v++) for (int li = 0; li < cm->nlrs[v]; li++) {
            const CmpRun *r = &cm->runs[t][v][li][0];
            if (!r->done) continue;
            fprintf(f, "%s,%s,%g,0,%d,%.6f,%d,%d,%.4f,%.2f\n", cm->task_names[t], variants[v].name, (double)r->lr, li == cm->best[t][v],
                    r->r.final_val_loss, r->val.correct, r->val.n, pct(r->val) / 100, r->r.seconds);
        }
        report_close(f, tmp, path);
    }
    snprintf(path, sizeof(path), "%s/results.csv", cm->out);
    f = report_open(path, tmp, sizeof(tmp));
    if (f) {
        fprintf(f, "task,variant,lr,seed,steps,tokens,flops,trainable_params,total_params,lora_equal_rank_params,file_bytes,val_loss,"
                   "val_exact_match,em_correct,em_n,exact_match,train_seconds,wall_seconds,tokens_per_s\n");
        for (int t = 0; t < cm->ntasks; t++) {
            fprintf(f, "%s,base,,,0,0,0,0,%zu,,,%.6f,%.4f,%d,%d,%.4f,0,,\n", cm->task_names[t], cm->base_params, cm->base_val_loss[t],
                    pct(cm->base_val[t]) / 100, cm->base_test[t].correct, cm->base_test[t].n, pct(cm->base_test[t]) / 100);
            for (int v = 0; v < NUM_VARIANTS; v++) for (int s = 0; s < cm->nseeds; s++) {
                const CmpRun *r = cm->use_variant[v] ? best_run(cm, t, v, s) : NULL;
                if (!r || !r->tested) continue;
                fprintf(f, "%s,%s,%g,%d,%d,%lld,%.4g,%zu,%zu,%zu,%ld,%.6f,%.4f,%d,%d,%.4f,%.2f,%.2f,%.0f\n", cm->task_names[t], variants[v].name,
                        (double)r->lr, s, r->r.steps, (long long)r->r.steps * cm->B * cm->T, run_flops(cm, v, cm->rank, r->r.steps),
                        r->r.trainable, r->r.total_params, r->r.lora_equiv, r->file_bytes, r->r.final_val_loss, pct(r->val) / 100,
                        r->test.correct, r->test.n, pct(r->test) / 100, r->r.seconds, r->wall, r->r.tok_per_s);
            }
        }
        report_close(f, tmp, path);
    }
    snprintf(path, sizeof(path), "%s/merge.csv", cm->out);
    f = report_open(path, tmp, sizeof(tmp));
    if (f) {
        fprintf(f, "adapter,method,weight,rank,seed,task,em_correct,em_n,exact_match,single_task_exact_match\n");
        for (int k = 0; k < NUM_KINDS; k++) for (int mi = 0; mi < NUM_MERGES; mi++) {
            if (!cm->merged_ok[k][mi]) continue;
            for (int s = 0; s < cm->nseeds; s++) for (int t = 0; t < cm->ntasks; t++) {
                EMResult e = cm->merged[k][mi][s][t];
                fprintf(f, "%s,%s,%g,%d,%d,%s,%d,%d,%.4f,%.4f\n", variants[kinds[k]].name, merge_file[mi], merges[mi].lori_weights ? 1.2 / cm->ntasks : 1.0,
                        cm->merged_rank[k][mi], s, cm->task_names[t], e.correct, e.n, pct(e) / 100, pct(best_run(cm, t, kinds[k], s)->test) / 100);
            }
        }
        report_close(f, tmp, path);
    }
    snprintf(path, sizeof(path), "%s/continual.csv", cm->out);
    f = report_open(path, tmp, sizeof(tmp));
    if (f) {
        fprintf(f, "adapter,source_task,new_task,seed,source_before,source_after,forgetting,new_task_exact_match,new_task_own_adapter\n");
        for (int k = 0; k < NUM_KINDS; k++) for (int t = 0; t < cm->ntasks; t++) {
            if (!cm->cont_ok[k][t]) continue;
            for (int s = 0; s < cm->nseeds; s++) {
                double before = pct(best_run(cm, cm->src, kinds[k], s)->test), after = pct(cm->cont_src[k][t][s]);
                fprintf(f, "%s,%s,%s,%d,%.4f,%.4f,%.4f,%.4f,%.4f\n", variants[kinds[k]].name, cm->task_names[cm->src], cm->task_names[t], s,
                        before / 100, after / 100, (before - after) / 100, pct(cm->cont_new[k][t][s]) / 100, pct(best_run(cm, t, kinds[k], s)->test) / 100);
            }
        }
        report_close(f, tmp, path);
    }
    if (cm->pl_ok) {
        snprintf(path, sizeof(path), "%s/plora.csv", cm->out);
        f = report_open(path, tmp, sizeof(tmp));
        if (f) {
            fprintf(f, "task,variant,stages,rank,seed,lr,first_loss,final_loss,loss_fall\n");
            int t = cm->ptask;
            for (int i = 0; i < cm->nranks; i++) for (int j = 0; j <= cm->nstages; j++) for (int s = 0; s < cm->nseeds; s++) {
                int v = j ? V_PLORA : V_LORA;
                fprintf(f, "%s,%s,%d,%d,%d,%g,%.6f,%.6f,%.6f\n", cm->task_names[t], variants[v].name, j ? cm->stages[j - 1] : 1, cm->ranks[i], s,
                        (double)cm->lrs[v][cm->best[t][v]], cm->pl_first[i][j][s], cm->pl_final[i][j][s], cm->pl_first[i][j][s] - cm->pl_final[i][j][s]);
            }
            for (int s = 0; s < cm->nseeds; s++)
                if (isfinite(cm->pl_full_first[s]))
                    fprintf(f, "%s,full,1,0,%d,%g,%.6f,%.6f,%.6f\n", cm->task_names[t], s, (double)cm->lrs[V_FULL][cm->best[t][V_FULL]], cm->pl_full_first[s],
                            cm->pl_full_final[s], cm->pl_full_first[s] - cm->pl_full_final[s]);
            report_close(f, tmp, path);
        }
    }
}

// ----------------------------------------------------------------------------
// charts

static void write_charts(Compare *cm) {
    char path[1300], title[256];
    // training loss at the chosen rate, mean over seeds, one chart per task
    for (int t = 0; t < cm->ntasks; t++) {
        SvgSeries ser[NUM_VARIANTS];
        double *xs[NUM_VARIANTS] = {0}, *ys[NUM_VARIANTS] = {0};
        int ns = 0;
        for (int v = 0; v < NUM_VARIANTS; v++) {
            if (!cm->use_variant[v]) continue;
            int n = -1;
            double *acc = NULL;
            int seeds = 0;
            for (int s = 0; s < cm->nseeds; s++) {
                double *x = NULL, *y = NULL;
                snprintf(path, sizeof(path), "%s/train.csv", best_run(cm, t, v, s)->dir);
                int m = read_train_csv(path, &x, &y);
                if (m > 0 && (n < 0 || m == n)) {
                    if (!acc) { acc = calloc((size_t)m, sizeof(double)); xs[v] = x; x = NULL; n = m; }
                    for (int i = 0; i < m; i++) acc[i] += y[i];
                    seeds++;
                }
                free(x); free(y);
            }
            if (!acc) continue;
            ys[v] = malloc(sizeof(double) * n);
            double run = 0;
            for (int i = 0; i < n; i++) { // mean over seeds, then of the last CMP_LOSS_SMOOTH steps
                run += acc[i] / seeds;
                if (i >= CMP_LOSS_SMOOTH) run -= acc[i - CMP_LOSS_SMOOTH] / seeds;
                ys[v][i] = run / (i + 1 < CMP_LOSS_SMOOTH ? i + 1 : CMP_LOSS_SMOOTH);
            }
            free(acc);
            ser[ns++] = (SvgSeries){variants[v].label, xs[v], ys[v], n};
        }
        snprintf(path, sizeof(path), "%s/loss_%s.svg", cm->out, cm->task_names[t]);
        snprintf(title, sizeof(title), "'%s': training loss at each variant's chosen rate (mean of %d seeds, %d steps)", cm->task_names[t], cm->nseeds, CMP_LOSS_SMOOTH);
        svg_line_chart(path, title, "step (LoRI-S: LoRI-D, then LoRI-S from the middle)", "loss", ser, ns);
        for (int v = 0; v < NUM_VARIANTS; v++) { free(xs[v]); free(ys[v]); }
        // the sweep: validation exact match against log10(rate)
        SvgSeries sw[NUM_VARIANTS];
        double sx[NUM_VARIANTS][CMP_MAX_LRS], sy[NUM_VARIANTS][CMP_MAX_LRS];
        int nsw = 0;
        for (int v = 0; v < NUM_VARIANTS; v++) {
            if (!cm->use_variant[v]) continue;
            int n = 0;
            for (int li = 0; li < cm->nlrs[v]; li++) if (cm->runs[t][v][li][0].done) { sx[v][n] = log10(cm->lrs[v][li]); sy[v][n] = pct(cm->runs[t][v][li][0].val); n++; }
            sw[nsw++] = (SvgSeries){variants[v].label, sx[v], sy[v], n};
        }
        snprintf(path, sizeof(path), "%s/sweep_%s.svg", cm->out, cm->task_names[t]);
        snprintf(title, sizeof(title), "'%s': learning-rate sweep (seed 0), validation exact match (%%)", cm->task_names[t]);
        svg_line_chart(path, title, "log10(learning rate) (LoRI-S: its S stage's)", "validation exact match (%)", sw, nsw);
    }
    // test exact match per task and variant, mean with min-max over seeds
    const char *names[NUM_VARIANTS + 1] = {"base"};
    int nv = 1, vmap[NUM_VARIANTS];
    for (int v = 0; v < NUM_VARIANTS; v++) if (cm->use_variant[v]) { vmap[nv - 1] = v; names[nv++] = variants[v].label; }
    const char *groups[CMP_MAX_TASKS];
    double vals[CMP_MAX_TASKS * (NUM_VARIANTS + 1)], lo[CMP_MAX_TASKS * (NUM_VARIANTS + 1)], hi[CMP_MAX_TASKS * (NUM_VARIANTS + 1)];
    for (int t = 0; t < cm->ntasks; t++) {
        groups[t] = cm->task_names[t];
        vals[t * nv] = lo[t * nv] = hi[t * nv] = pct(cm->base_test[t]);
        for (int j = 1; j < nv; j++) { Stat s = test_stat(cm, t, vmap[j - 1]); vals[t * nv + j] = s.mean; lo[t * nv + j] = s.lo; hi[t * nv + j] = s.hi; }
    }
    snprintf(path, sizeof(path), "%s/scores.svg", cm->out);
    snprintf(title, sizeof(title), "test exact match (%%): mean of %d seeds, bars min-max", cm->nseeds);
    svg_bar_chart_err(path, title, "exact match (%)", groups, cm->ntasks, names, nv, vals, lo, hi);
    // merging: groups = merge methods (+ single-task), series = kinds; mean over tasks, min-max over seeds
    if (cm->ntasks >= 2) {
        const char *mg[NUM_MERGES + 1] = {"single-task"}, *kn[NUM_KINDS];
        for (int mi = 0; mi < NUM_MERGES; mi++) mg[mi + 1] = merges[mi].label;
        double mv[(NUM_MERGES + 1) * NUM_KINDS], ml[(NUM_MERGES + 1) * NUM_KINDS], mh[(NUM_MERGES + 1) * NUM_KINDS];
        for (int k = 0; k < NUM_KINDS; k++) {
            kn[k] = variants[kinds[k]].label;
            for (int j = 0; j <= NUM_MERGES; j++) {
                Stat s = {NAN, NAN, NAN, NAN, 0};
                if (cm->use_variant[kinds[k]]) s = j == 0 ? single_mean_stat(cm, kinds[k]) : cm->merged_ok[k][j - 1] ? merge_mean_stat(cm, k, j - 1) : s;
                mv[j * NUM_KINDS + k] = s.mean; ml[j * NUM_KINDS + k] = s.lo; mh[j * NUM_KINDS + k] = s.hi;
            }
        }
        snprintf(path, sizeof(path), "%s/merge.svg", cm->out);
        svg_bar_chart_err(path, "merged task adapters: mean test exact match over the tasks (%), bars min-max over seeds", "exact match (%)",
                          mg, NUM_MERGES + 1, kn, NUM_KINDS, mv, ml, mh);
    }
    // forgetting: groups = new tasks, series = kind before / after
    if (cm->src >= 0 && cm->ntasks >= 2) {
        const char *g[CMP_MAX_TASKS];
        char labels[2 * NUM_KINDS][64];
        const char *fn[2 * NUM_KINDS];
        double fv[CMP_MAX_TASKS * 2 * NUM_KINDS], fl[CMP_MAX_TASKS * 2 * NUM_KINDS], fh[CMP_MAX_TASKS * 2 * NUM_KINDS];
        for (int k = 0; k < NUM_KINDS; k++) {
            snprintf(labels[2 * k], 64, "%s: before", variants[kinds[k]].label);
            snprintf(labels[2 * k + 1], 64, "%s: after", variants[kinds[k]].label);
            fn[2 * k] = labels[2 * k]; fn[2 * k + 1] = labels[2 * k + 1];
        }
        int ng = 0;
        for (int t = 0; t < cm->ntasks; t++) {
            if (t == cm->src) continue;
            g[ng] = cm->task_names[t];
            for (int k = 0; k < NUM_KINDS; k++) {
                double b[CMP_MAX_SEEDS], a[CMP_MAX_SEEDS];
                for (int s = 0; s < cm->nseeds; s++) {
                    b[s] = cm->use_variant[kinds[k]] ? pct(best_run(cm, cm->src, kinds[k], s)->test) : NAN;
                    a[s] = cm->cont_ok[k][t] ? pct(cm->cont_src[k][t][s]) : NAN;
                }
                Stat sb = stat_of(b, cm->nseeds), sa = stat_of(a, cm->nseeds);
                int i = ng * 2 * NUM_KINDS + 2 * k;
                fv[i] = sb.mean; fl[i] = sb.lo; fh[i] = sb.hi;
                fv[i + 1] = sa.mean; fl[i + 1] = sa.lo; fh[i + 1] = sa.hi;
            }
            ng++;
        }
        snprintf(path, sizeof(path), "%s/forgetting.svg", cm->out);
        snprintf(title, sizeof(title), "continual learning: '%s' test exact match before and after a new task (%%)", cm->task_names[cm->src]);
        svg_bar_chart_err(path, title, "exact match (%)", g, ng, fn, 2 * NUM_KINDS, fv, fl, fh);
    }
    // PLoRA's claim: loss fall against rank
    if (cm->pl_ok) {
        SvgSeries ser[2 + CMP_MAX_STAGES];
        double x[2 + CMP_MAX_STAGES][CMP_MAX_RANKS], y[2 + CMP_MAX_STAGES][CMP_MAX_RANKS];
        char lab[2 + CMP_MAX_STAGES][64];
        int ns = 0;
        for (int j = 0; j <= cm->nstages; j++) {
            for (int i = 0; i < cm->nranks; i++) { x[j][i] = log2(cm->ranks[i]); y[j][i] = fall_stat(cm, i, j).mean; }
            if (j == 0) snprintf(lab[j], 64, "LoRA");
            else snprintf(lab[j], 64, "PLoRA, %d stages", cm->stages[j - 1]);
            ser[ns++] = (SvgSeries){lab[j], x[j], y[j], cm->nranks};
        }
        Stat full = fall_stat(cm, 0, -1);
        if (full.n) {
            int j = cm->nstages + 1;
            x[j][0] = log2(cm->ranks[0]); x[j][1] = log2(cm->ranks[cm->nranks - 1]); y[j][0] = y[j][1] = full.mean;
            snprintf(lab[j], 64, "full FT");
            ser[ns++] = (SvgSeries){lab[j], x[j], y[j], 2};
        }
        snprintf(path, sizeof(path), "%s/plora.svg", cm->out);
        snprintf(title, sizeof(title), "'%s': training-loss fall in %d steps (mean of %d seeds)", cm->task_names[cm->ptask], cm->steps, cm->nseeds);
        svg_line_chart(path, title, "log2(rank)", "first loss - final loss", ser, ns);
    }
}

// ----------------------------------------------------------------------------
// the report

static void machine_line(char *buf, size_t n, int bf16) {
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *p = strchr(line, ':');
                if (p) { p++; while (*p == ' ') p++; snprintf(model, sizeof(model), "%s", p); model[strcspn(model, "\n")] = 0; }
                break;
            }
        }
        fclose(f);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef OMP
    int threads = omp_get_max_threads();
#else
    int threads = 1;
#endif
#ifdef COMPARE_GPU
    snprintf(buf, n, "GPU trainer (cuda/host.c's backend, %s); host: %s, %ld cores online, %d OpenMP threads", bf16 ? "bf16" : "fp32", model, cores, threads);
#else
    (void)bf16;
    snprintf(buf, n, "CPU trainer: %s, %ld cores online, %d OpenMP threads, gemm %s", model, cores, threads, gemm_isa());
#endif
}

static void load_average(char *buf, size_t n) {
    FILE *f = fopen("/proc/loadavg", "r");
    double a = NAN;
    if (f) { if (fscanf(f, "%lf", &a) != 1) a = NAN; fclose(f); }
    snprintf(buf, n, "%.2f", a);
}

static int is_edge(const Compare *cm, int t, int v) { int b = cm->best[t][v]; return cm->nlrs[v] > 2 && (b == 0 || b == cm->nlrs[v] - 1); }

// the best adapter on task t (highest mean test exact match among the adapters), or -1
static int best_adapter(const Compare *cm, int t) {
    int bv = -1;
    for (int v = 0; v < NUM_VARIANTS; v++) {
        if (v == V_FULL || !cm->use_variant[v]) continue;
        if (bv < 0 || test_stat(cm, t, v).mean > test_stat(cm, t, bv).mean) bv = v;
    }
    return bv;
}

#define CMP_LEARNED 50  // a claim about merging or forgetting needs adapters that learned their tasks (mean exact match, %)
static const char *verdict_name(int v) {
    return v == 2 ? "**not testable here**" : v > 0 ? "**reproduced**" : v < 0 ? "**not reproduced**" : "**mixed**";
}

static void write_claims(Compare *cm, FILE *f) {
    fprintf(f, "\n## 6. The claims\n\n");
    fprintf(f, "| claim | measured here | rule | verdict |\n|---|---|---|---|\n");
    char buf[2048];
    // 1. parameters
    const CmpRun *ls = cm->use_variant[V_LORI_S] ? best_run(cm, 0, V_LORI_S, 0) : NULL, *ld = cm->use_variant[V_LORI_D] ? best_run(cm, 0, V_LORI_D, 0) : NULL;
    const CmpRun *lo = cm->use_variant[V_LORA] ? best_run(cm, 0, V_LORA, 0) : NULL;
    if (ls && lo && ls->done && lo->done) {
        double red = 1.0 - (double)ls->r.trainable / lo->r.trainable;
        snprintf(buf, sizeof(buf), "LoRI-S trains %zu parameters, LoRA %zu at rank %d: **%.1f%% fewer**", ls->r.trainable, lo->r.trainable, cm->rank, 100 * red);
        if (ld && ld->done) { size_t l = strlen(buf); snprintf(buf + l, sizeof(buf) - l, " (LoRI-D: %.1f%% fewer); files %ld vs %ld bytes", 100.0 - 100.0 * ld->r.trainable / lo->r.trainable, ls->file_bytes, lo->file_bytes); }
        fprintf(f, "| LoRI trains ~95%% fewer parameters than LoRA | %s | reproduced if LoRI-S's reduction is 93–97%% | %s |\n", buf,
                verdict_name(red >= 0.93 && red <= 0.97 ? 1 : -1));
    }
    // 2. merging
    int have_merge = 0;
    for (int mi = 0; mi < NUM_MERGES; mi++) have_merge |= cm->merged_ok[0][mi];
    for (int k = 1; k < NUM_KINDS && have_merge; k++) {
        if (!cm->merged_ok[k][0]) continue;
        int better = 0, worse = 0, nm = 0;
        buf[0] = 0;
        Stat s0 = single_mean_stat(cm, V_LORA), sk = single_mean_stat(cm, kinds[k]);
        for (int mi = 0; mi < NUM_MERGES; mi++) {
            if (!cm->merged_ok[0][mi] || !cm->merged_ok[k][mi]) continue;
            // retention: the share of the single-task mean the merge keeps (an adapter weak on its own
            // has less to lose, so the absolute drop would favour it); spread: the seeds' sd, relative
            Stat a = merge_mean_stat(cm, 0, mi), b = merge_mean_stat(cm, k, mi);
            double keep_a = 100 * a.mean / s0.mean, keep_b = 100 * b.mean / sk.mean, tol = 100 * fmax(a.sd / s0.mean, b.sd / sk.mean);
            if (keep_b > keep_a + tol) better++;
            else if (keep_b < keep_a - tol) worse++;
            nm++;
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof(buf) - l, "%s%s: %.1f%% vs %.1f%%", l ? "; " : "", merges[mi].label, keep_b, keep_a);
        }
        int v = better * 2 >= nm && worse == 0 ? 1 : better == 0 ? -1 : 0;
        if (!(s0.mean >= CMP_LEARNED && sk.mean >= CMP_LEARNED)) v = 2;
        fprintf(f, "| LoRI merges with less interference than LoRA (%s) | retention = merged mean / single-task mean (mean over tasks), %s vs LoRA: %s "
                   "(merged means: see section 3) | reproduced if %s keeps more, by more than the seed spread, for at least half the methods "
                   "and less for none; not reproduced if more for none; not testable if either kind's single-task mean is below %d%% | %s |\n",
                variants[kinds[k]].label, variants[kinds[k]].label, buf, variants[kinds[k]].label, CMP_LEARNED, verdict_name(v));
    }
    // 3. forgetting
    if (cm->src >= 0 && cm->cont_ok[0][cm->src == 0 ? 1 : 0]) {
        for (int k = 1; k < NUM_KINDS; k++) {
            int any = 0;
            for (int t = 0; t < cm->ntasks; t++) any |= cm->cont_ok[k][t];
            if (!any) continue;
            Stat fa = forgetting_stat(cm, 0, -1), fb = forgetting_stat(cm, k, -1);
            double na = 0, nb = 0;
            int n = 0;
            for (int t = 0; t < cm->ntasks; t++) {
                if (!cm->cont_ok[0][t] || !cm->cont_ok[k][t]) continue;
                for (int s = 0; s < cm->nseeds; s++) { na += pct(cm->cont_new[0][t][s]); nb += pct(cm->cont_new[k][t][s]); n++; }
            }
            na /= n; nb /= n;
            double tol = fmax(fa.sd, fb.sd);
            int v = fb.mean < fa.mean - tol ? (nb >= na - 10 ? 1 : 0) : fb.mean > fa.mean + tol ? -1 : 0;
            if (v == 0 && fb.mean >= fa.mean) v = -1;
            if (!(test_stat(cm, cm->src, V_LORA).mean >= CMP_LEARNED && test_stat(cm, cm->src, kinds[k]).mean >= CMP_LEARNED)) v = 2;
            fprintf(f, "| %s forgets less in continual learning than LoRA | forgetting of '%s' (points, mean over new tasks): %s %.1f ± %.1f, LoRA %.1f ± %.1f; "
                       "new tasks' score after stage 2: %.1f%% vs %.1f%% | reproduced if it forgets less by more than the seed spread while scoring the new "
                       "tasks within 10 points of LoRA; mixed if it forgets less within the spread, or by learning the new tasks worse; not reproduced if "
                       "it forgets as much or more; not testable if either's stage-1 score is below %d%% | %s |\n",
                    kinds[k] == V_LORI_S ? "LoRI-S" : "LoRI-D (not a claim of the paper; for reference)", cm->task_names[cm->src], variants[kinds[k]].label, fb.mean, fb.sd, fa.mean, fa.sd, nb, na, CMP_LEARNED, verdict_name(v));
        }
    }
    // 4. PLoRA
    if (cm->pl_ok) {
        int above = 0, below = 0;
        double best_ratio = 0;
        buf[0] = 0;
        for (int i = 0; i < cm->nranks; i++) {
            int bj = 1;
            for (int j = 2; j <= cm->nstages; j++) if (ratio_stat(cm, i, j).mean > ratio_stat(cm, i, bj).mean) bj = j;
            Stat r = ratio_stat(cm, i, bj);
            best_ratio = fmax(best_ratio, r.mean);
            if (r.lo > 1.05) above++;
            if (r.mean < 0.95) below++;
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof(buf) - l, "%srank %d: %.2fx [%.2f–%.2f] (%d stages)", l ? "; " : "", cm->ranks[i], r.mean, r.lo, r.hi, cm->stages[bj - 1]);
        }
        int v = above * 2 >= cm->nranks && below == 0 ? 1 : above == 0 ? -1 : 0;
        fprintf(f, "| PLoRA learns more than LoRA at the same rank (up to 1.8x) | training-loss fall, PLoRA over LoRA, best stage count per rank, "
                   "'%s': %s; largest %.2fx | reproduced if the ratio's minimum over seeds exceeds 1.05 at half the ranks or more and the mean is "
                   "below 0.95 at none; not reproduced if the minimum exceeds 1.05 at no rank | %s |\n",
                cm->task_names[cm->ptask], buf, best_ratio, verdict_name(v));
    }
    // 5. LoRA vs full FT on simple tasks
    if (cm->use_variant[V_LORA] && cm->use_variant[V_FULL]) {
        int simple = 0, close = 0;
        buf[0] = 0;
        for (int t = 0; t < cm->ntasks; t++) {
            Stat a = test_stat(cm, t, V_FULL), b = test_stat(cm, t, V_LORA);
            if (!(a.mean >= 90)) continue;
            simple++;
            close += b.mean >= a.mean - 5;
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof(buf) - l, "%s%s: LoRA %.1f vs full %.1f", l ? "; " : "", cm->task_names[t], b.mean, a.mean);
        }
        int v = simple == 0 ? 2 : close == simple ? 1 : close == 0 ? -1 : 0;
        fprintf(f, "| LoRA roughly matches full fine-tuning on simple tasks | test exact match (mean of seeds) on the tasks full FT learns (>= 90%%): %s "
                   "| reproduced if LoRA is within 5 points of full FT on every such task; not reproduced if on none; not testable without such a task | %s |\n",
                simple ? buf : "no such task", verdict_name(v));
    }
}

// Report sections 3 and 4: the merged adapters scored on every task, and continual learning.
static void write_report_merging_continual(Compare *cm, FILE *f) {
    // 3. merging
    int have_merge = 0;
    for (int k = 0; k < NUM_KINDS; k++) for (int mi = 0; mi < NUM_MERGES; mi++) have_merge |= cm->merged_ok[k][mi];
    if (have_merge) {
        fprintf(f, "\n## 3. Merging the %d task adapters (interference)\n\n", cm->ntasks);
        fprintf(f, "Per seed, the task adapters at their chosen rates merged into one (`lora/merge.h`): weight 1 each (ties and dare keep %.0f%% "
                   "of each factor; dare = `dare_linear`, rescaled by 1/density), or the LoRI scripts' equal weights (%.2g each); each merge scored "
                   "on every task's test split. Cells: mean over seeds (%%); *mean*: over tasks, ± sd [min–max] over seeds. *single-task*: each "
                   "task's own adapter: the drop from it is the cross-task interference.\n\n", 100.0 * CMP_MERGE_DENSITY, 1.2 / cm->ntasks);
        fprintf(f, "| adapter | method | rank |");
        for (int t = 0; t < cm->ntasks; t++) fprintf(f, " %s |", cm->task_names[t]);
        fprintf(f, " mean |\n|---|---|---:|");
        for (int t = 0; t <= cm->ntasks; t++) fprintf(f, "---:|");
        fprintf(f, "\n");
        for (int k = 0; k < NUM_KINDS; k++) {
            int v = kinds[k];
            if (!cm->use_variant[v]) continue;
            char st[96];
            fprintf(f, "| %s | single-task | %d |", variants[v].label, cm->rank);
            for (int t = 0; t < cm->ntasks; t++) fprintf(f, " %.1f |", test_stat(cm, t, v).mean);
            fmt_stat(st, sizeof(st), single_mean_stat(cm, v), 1);
            fprintf(f, " %s |\n", st);
            for (int mi = 0; mi < NUM_MERGES; mi++) {
                if (!cm->merged_ok[k][mi]) continue;
                fprintf(f, "| %s | %s | %d |", variants[v].label, merges[mi].label, cm->merged_rank[k][mi]);
                for (int t = 0; t < cm->ntasks; t++) {
                    double x[CMP_MAX_SEEDS];
                    for (int s = 0; s < cm->nseeds; s++) x[s] = pct(cm->merged[k][mi][s][t]);
                    fprintf(f, " %.1f |", stat_of(x, cm->nseeds).mean);
                }
                fmt_stat(st, sizeof(st), merge_mean_stat(cm, k, mi), 1);
                fprintf(f, " **%s** |\n", st);
            }
        }
        fprintf(f, "\n![merged adapters](merge.svg)\n");
    }

    // 4. continual
    int have_cont = 0;
    for (int k = 0; k < NUM_KINDS; k++) for (int t = 0; t < cm->ntasks; t++) have_cont |= cm->cont_ok[k][t];
    if (have_cont) {
        const char *src = cm->task_names[cm->src];
        fprintf(f, "\n## 4. Continual learning: %s, then another task\n\n", src);
        fprintf(f, "Stage 1 is the %s adapter of section 2 (per seed); stage 2 trains it %d more steps on the new task at that task's chosen rate "
                   "(`--adapter-in`). LoRA trains all of A and B again; LoRI-D trains all of B (A stays frozen); LoRI-S trains a fresh LoRI-D on the "
                   "new task for its mask (%d steps), then only the new mask's entries of the loaded B (%d steps): the other entries stay bit-identical. "
                   "*forgetting* = %s before − after (points). Mean ± sd over seeds.%s\n\n", src, cm->steps, cm->steps / 2, cm->steps - cm->steps / 2, src,
                cm->continual_max > 0 && cm->continual_max < cm->ntasks - 1 ? " This profile continues to the first other tasks only (--continual-tasks)." : "");
        fprintf(f, "| adapter | new task | %s, stage 1 | %s after stage 2 | forgetting | new task after stage 2 | new task, own adapter |\n", src, src);
        fprintf(f, "|---|---|---:|---:|---:|---:|---:|\n");
        for (int k = 0; k < NUM_KINDS; k++) for (int t = 0; t < cm->ntasks; t++) {
            if (!cm->cont_ok[k][t]) continue;
            int v = kinds[k];
            double a[CMP_MAX_SEEDS], nw[CMP_MAX_SEEDS];
            for (int s = 0; s < cm->nseeds; s++) { a[s] = pct(cm->cont_src[k][t][s]); nw[s] = pct(cm->cont_new[k][t][s]); }
            Stat sa = stat_of(a, cm->nseeds), fg = forgetting_stat(cm, k, t), sn = stat_of(nw, cm->nseeds);
            fprintf(f, "| %s | %s | %.1f | %.1f ± %.1f | **%+.1f ± %.1f** | %.1f ± %.1f | %.1f |\n", variants[v].label, cm->task_names[t],
                    test_stat(cm, cm->src, v).mean, sa.mean, sa.sd, fg.mean, fg.sd, sn.mean, sn.sd, test_stat(cm, t, v).mean);
        }
        fprintf(f, "\n![forgetting](forgetting.svg)\n");
    }
}

// Report section 5: PLoRA against LoRA at low rank.
static void write_report_plora(Compare *cm, FILE *f) {
    // 5. PLoRA
    if (cm->pl_ok) {
        int t = cm->ptask;
        fprintf(f, "\n## 5. PLoRA's claim: learning ability at low rank ('%s')\n\n", cm->task_names[t]);
        fprintf(f, "The same %d steps for every run; *loss fall* = the first step's training loss − the mean of the last tenth of the steps "
                   "(answer tokens); PLoRA with S stages unloads into the base every %d/S steps; rates: LoRA's and PLoRA's chosen rates on '%s' "
                   "(%g, %g; alpha = 2r keeps the scale fixed across ranks). Mean ± sd over %d seeds; *ratio*: PLoRA's fall over LoRA's, per seed.\n\n",
                cm->steps, cm->steps, cm->task_names[t], (double)cm->lrs[V_LORA][cm->best[t][V_LORA]], (double)cm->lrs[V_PLORA][cm->best[t][V_PLORA]], cm->nseeds);
        fprintf(f, "| rank | LoRA |");
        for (int j = 1; j <= cm->nstages; j++) fprintf(f, " PLoRA %d stages | ratio |", cm->stages[j - 1]);
        fprintf(f, "\n|---:|---:|");
        for (int j = 1; j <= cm->nstages; j++) fprintf(f, "---:|---:|");
        fprintf(f, "\n");
        for (int i = 0; i < cm->nranks; i++) {
            Stat l = fall_stat(cm, i, 0);
            fprintf(f, "| %d | %.3f ± %.3f |", cm->ranks[i], l.mean, l.sd);
            for (int j = 1; j <= cm->nstages; j++) {
                Stat p = fall_stat(cm, i, j), r = ratio_stat(cm, i, j);
                fprintf(f, " %.3f ± %.3f | %.2fx [%.2f–%.2f] |", p.mean, p.sd, r.mean, r.lo, r.hi);
            }
            fprintf(f, "\n");
        }
        Stat full = fall_stat(cm, 0, -1);
        if (full.n) fprintf(f, "\nFull fine-tuning (section 2's runs, same steps): loss fall %.3f ± %.3f.\n", full.mean, full.sd);
        fprintf(f, "\n![PLoRA vs LoRA](plora.svg)\n");
    }
}

static void write_report(Compare *cm, const char *load_start) {
    char path[1200], tmp[1300];
    snprintf(path, sizeof(path), "%s/report.md", cm->out);
    FILE *f = report_open(path, tmp, sizeof(tmp));
    if (!f) return;
    char machine[512], load_end[32], total[32], commit[64] = "unknown";
    machine_line(machine, sizeof(machine), cm->bf16);
    load_average(load_end, sizeof(load_end));
    format_eta(now_s() - cm->t_start, total, sizeof(total));
    const char *ce = getenv("COMPARE_COMMIT"); // where the sources are not a git checkout (a copy on a GPU machine)
    FILE *g = ce ? NULL : popen("git rev-parse --short HEAD 2>/dev/null", "r");
    if (ce) snprintf(commit, sizeof(commit), "%s", ce);
    if (g) { if (fgets(commit, sizeof(commit), g)) commit[strcspn(commit, "\n")] = 0; else snprintf(commit, sizeof(commit), "unknown"); pclose(g); }
    fprintf(f, "# Comparison: full fine-tuning, LoRA, LoRI-D, LoRI-S, PeriodicLoRA\n\n");
    fprintf(f, "`%s` (profile **%s**, commit %s)  \n", cm->cmdline, cm->profile, commit);
    fprintf(f, "Base: `%s` (a copy of %s), GPT-2 L=%d C=%d H=%d V=%d T=%d, %zu parameters. Tasks (`%s`):", cm->base,
            cm->base_arg[0] ? cm->base_arg : DEFAULT_OUT_DIR "/base/model.bin", cm->cfg.num_layers, cm->cfg.channels, cm->cfg.num_heads,
            cm->cfg.vocab_size, cm->cfg.max_seq_len, cm->base_params, cm->tasks_dir);
    for (int t = 0; t < cm->ntasks; t++) fprintf(f, " %s", cm->task_names[t]);
    fprintf(f, ".  \nMachine: %s; load average %s at the start, %s at the end. **Total wall time %s**", machine, load_start, load_end, total);
    if (cm->t_pretrain > 0) fprintf(f, " (of which %.0f s pretraining the base)", cm->t_pretrain);
    if (cm->nresumed) {
        char prev[32], sum[32];
        format_eta(cm->t_resumed, prev, sizeof(prev));
        format_eta(now_s() - cm->t_start + cm->t_resumed, sum, sizeof(sum));
        fprintf(f, " in this invocation, which read back %d of the %d units (--resume) from an earlier one; those units took %s "
                   "when they ran, so the study's units took **%s** in all", cm->nresumed, cm->nruns_total, prev, sum);
    }
    fprintf(f, ".\n\n");

    // 0. the budget
    char vex[32] = "all", tex[32] = "all";
    if (cm->val_examples) snprintf(vex, sizeof(vex), "the first %d", cm->val_examples);
    if (cm->eval_examples) snprintf(tex, sizeof(tex), "the first %d", cm->eval_examples);
    fprintf(f, "## 0. The budget\n\n");
    fprintf(f, "Every run: **%d optimizer steps of B=%d x T=%d = %d tokens (%lld tokens per run)**, rank %d, alpha %d (scale 2), all four linears, "
               "AdamW (weight decay 0), gradient clip 1.0, %d warmup steps, cosine to 0.1x. LoRI-S's budget includes its LoRI-D stage: LoRI-D %d steps "
               "(at LoRI-D's chosen rate) -> mask (top 10%% of |B|, model-wise) -> LoRI-S %d steps from B = 0 at its own rate. PLoRA unloads into the "
               "base every %d steps. Exact match: greedy, on %s validation and %s test examples per task. FLOPs: matrix products of the training steps, "
               "analytic (forward 2n per linear of n weights; backward 2n for the input gradient, +2n for a trained weight; adapters and attention "
               "included), mean over the runs at the chosen rates.\n\n",
            cm->steps, cm->B, cm->T, cm->B * cm->T, (long long)cm->steps * cm->B * cm->T, cm->rank, 2 * cm->rank, cm->steps >= 100 ? 10 : 1,
            cm->steps / 2, cm->steps - cm->steps / 2, cm->steps / CMP_PLORA_STAGES > 0 ? cm->steps / CMP_PLORA_STAGES : 1, vex, tex);
    fprintf(f, "| variant | steps | tokens | FLOPs per run | train seconds per run (mean) | tokens/s (mean) |\n|---|---:|---:|---:|---:|---:|\n");
    for (int v = 0; v < NUM_VARIANTS; v++) {
        if (!cm->use_variant[v]) continue;
        double sec = 0, tps = 0;
        int n = 0;
        for (int t = 0; t < cm->ntasks; t++) for (int s = 0; s < cm->nseeds; s++) { const CmpRun *r = best_run(cm, t, v, s); if (r && r->done) { sec += r->r.seconds; tps += r->r.tok_per_s; n++; } }
        char steps[64];
        if (v == V_LORI_S) snprintf(steps, sizeof(steps), "%d (D %d + S %d)", cm->steps, cm->steps / 2, cm->steps - cm->steps / 2);
        else snprintf(steps, sizeof(steps), "%d", cm->steps);
        fprintf(f, "| %s | %s | %lld | %.3g | %.1f | %.0f |\n", variants[v].label, steps, (long long)cm->steps * cm->B * cm->T,
                run_flops(cm, v, cm->rank, cm->steps), n ? sec / n : NAN, n ? tps / n : NAN);
    }

    // 1. the sweep
    fprintf(f, "\n## 1. Learning-rate sweeps (validation split, seed 0)\n\n");
    fprintf(f, "Validation exact match at each rate; **bold**: the chosen rate (best validation exact match, then validation loss), run with "
               "all %d seeds; *edge*: the best rate is at the end of the grid (widen it with --lrs-NAME).\n\n", cm->nseeds);
    fprintf(f, "| task | variant | rates: validation exact match | chosen |\n|---|---|---|---:|\n");
    for (int t = 0; t < cm->ntasks; t++) for (int k = 0; k < NUM_VARIANTS; k++) {
        int v = variant_order[k];
        if (!cm->use_variant[v]) continue;
        fprintf(f, "| %s | %s |", cm->task_names[t], variants[v].label);
        for (int li = 0; li < cm->nlrs[v]; li++) {
            const CmpRun *r = &cm->runs[t][v][li][0];
            if (li == cm->best[t][v]) fprintf(f, " **%g: %.1f%%**", (double)cm->lrs[v][li], pct(r->val));
            else fprintf(f, " %g: %.1f%%", (double)cm->lrs[v][li], pct(r->val));
            if (li + 1 < cm->nlrs[v]) fprintf(f, " ·");
        }
        fprintf(f, " | %g%s |\n", (double)cm->lrs[v][cm->best[t][v]], is_edge(cm, t, v) ? " *edge*" : "");
    }
    for (int t = 0; t < cm->ntasks; t++) fprintf(f, "%s![sweep on %s](sweep_%s.svg)", t ? " " : "\n", cm->task_names[t], cm->task_names[t]);
    fprintf(f, "\n");

    // 2. results
    fprintf(f, "\n## 2. Fine-tuning: test exact match at the chosen rates\n\n");
    fprintf(f, "Mean ± standard deviation [min–max] over %d seeds (%%). *bytes*: the file the run ships — `adapter.bin`, or the whole "
               "checkpoint for full FT and PLoRA (PLoRA's earlier stages live in the base weights).\n\n", cm->nseeds);
    fprintf(f, "| task | variant | rate | test exact match | val loss | trainable params | %% of LoRA | bytes |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int t = 0; t < cm->ntasks; t++) {
        fprintf(f, "| %s | base | — | %.1f | %.4f | — | — | — |\n", cm->task_names[t], pct(cm->base_test[t]), cm->base_val_loss[t]);
        for (int v = 0; v < NUM_VARIANTS; v++) {
            if (!cm->use_variant[v]) continue;
            const CmpRun *r = best_run(cm, t, v, 0);
            double vl[CMP_MAX_SEEDS];
            for (int s = 0; s < cm->nseeds; s++) vl[s] = best_run(cm, t, v, s)->r.final_val_loss;
            char st[96], lora[32] = "—";
            fmt_stat(st, sizeof(st), test_stat(cm, t, v), 1);
            if (r->r.lora_equiv) snprintf(lora, sizeof(lora), "%.1f%%", 100.0 * r->r.trainable / r->r.lora_equiv);
            fprintf(f, "| %s | %s | %g | **%s** | %.4f | %zu | %s | %ld |\n", cm->task_names[t], variants[v].label, (double)r->lr, st,
                    stat_of(vl, cm->nseeds).mean, r->r.trainable, lora, r->file_bytes);
        }
    }
    fprintf(f, "\n![test exact match](scores.svg)\n\n");
    for (int t = 0; t < cm->ntasks; t++) fprintf(f, "![loss on %s](loss_%s.svg)\n", cm->task_names[t], cm->task_names[t]);
    fprintf(f, "\n**Is every task learnable in this budget?** (full FT >= 90%%, the best adapter >= 80%%: means over seeds)\n\n");
    fprintf(f, "| task | full FT | best adapter | bar |\n|---|---:|---:|---|\n");
    for (int t = 0; t < cm->ntasks; t++) {
        Stat a = cm->use_variant[V_FULL] ? test_stat(cm, t, V_FULL) : (Stat){NAN, NAN, NAN, NAN, 0};
        int bv = best_adapter(cm, t);
        Stat b = bv >= 0 ? test_stat(cm, t, bv) : (Stat){NAN, NAN, NAN, NAN, 0};
        fprintf(f, "| %s | %.1f%% | %s %.1f%% | %s |\n", cm->task_names[t], a.mean, bv >= 0 ? variants[bv].label : "—", b.mean,
                a.mean >= 90 && b.mean >= 80 ? "met" : "**not met**");
    }

    write_report_merging_continual(cm, f);
    write_report_plora(cm, f);
    write_claims(cm, f);
    fprintf(f, "\nRaw numbers: `sweep.csv`, `results.csv`, `merge.csv`, `continual.csv`, `plora.csv`; every run's `train.csv`, adapter or model and "
               "equivalent trainer command (`command.txt`) under `runs/`, `continual/`, `plora/`; everything the runs printed: `log.txt`.\n");
    report_close(f, tmp, path);
}

// ----------------------------------------------------------------------------
// main: profiles and flags

#define CMP_STEPS 600           // optimizer steps per run (cpu and full profiles)
#define CMP_QUICK_STEPS 24
static const int full_ranks[] = {1, 2, 4, 8}, full_stages[] = {2, 4};
static const int cpu_ranks[] = {1, 4}, cpu_stages[] = {4};
static const int quick_ranks[] = {1, 2}, quick_stages[] = {2};

static void usage(const char *prog) {
    printf("usage: %s [--quick | --profile quick|cpu|full] [--tasks DIR] [-e BASE] [-o DIR] [flags]\n\n", prog);
    printf("Compares full fine-tuning, LoRA, LoRI-D, LoRI-S and PeriodicLoRA: a learning-rate sweep per task and variant on the\n"
           "validation split, seeds at the best rate, test exact match; merging the task adapters; continual learning; PLoRA's\n"
           "rank claim; the claims table. Writes report.md, CSV and SVG files into DIR.\n\n");
    printf("  --profile P        quick (CI: %d steps, 2 rates, 2 seeds, 24 examples; embedded suite: arith and safety only) |\n"
           "                     cpu (all tasks, %d steps, the middle 2 rates of each grid, 3 seeds, 250 validation and test examples,\n"
           "                     continual learning to 2 tasks, PLoRA ranks 1,4, stages 4: under 30 minutes on 2 idle cores) |\n"
           "                     full (all tasks, 4 rates spanning 30x, 3 seeds, every example, PLoRA ranks 1,2,4,8, stages 2,4)\n"
           "                     [default: %s]\n", CMP_QUICK_STEPS, CMP_STEPS,
#ifdef COMPARE_GPU
           "full"
#else
           "cpu"
#endif
    );
    printf("  --quick            --profile quick\n");
    printf("  --tasks DIR        a folder of NAME_train.bin, NAME_val.bin, NAME_test.bin (+ .lossmask; dev/data/jsonl_to_shards.py)\n"
           "                     [default: the embedded suite %s/, generated if missing]\n", DEFAULT_DATA_DIR);
    printf("  -e BASE            the base checkpoint [default: the embedded base %s/base/model.bin, pretrained if missing]\n", DEFAULT_OUT_DIR);
    printf("  -o DIR             output directory [default: %s/compare]\n", DEFAULT_OUT_DIR);
    printf("  --variants LIST    any of full,lora,lori_d,lori_s,plora [default: all]\n");
    printf("  --steps N          optimizer steps per run [profile]\n");
    printf("  --seeds N          seeds (1..%d) [profile]\n", CMP_MAX_SEEDS);
    printf("  --rank N           adapter rank [default: %d]\n", DEFAULT_RANK);
    printf("  -b N, -t N         micro-batch and sequence length [default: %d, %d]\n", DEFAULT_B, DEFAULT_T);
    printf("  --lrs-full LIST, --lrs-lora LIST, --lrs-lori-d LIST, --lrs-lori-s LIST, --lrs-plora LIST\n"
           "                     comma-separated rates of each variant's sweep (LoRI-S: its S stage's) [profile]\n");
    printf("  --eval-examples N  test examples scored per task (0: all) [profile]\n");
    printf("  --val-examples N   validation examples scored per task in the sweep (0: all) [profile]\n");
    printf("  --parts LIST       any of merge,continual,plora (fine-tuning always runs) [default: all]\n");
    printf("  --continual-from T the continual-learning source task [default: safety if present, else the first task]\n");
    printf("  --continual-tasks N  continual learning to the first N other tasks (0: all) [profile: cpu 2, else all]\n");
    printf("  --plora-task T     PLoRA's rank experiment on this task [default: code if present, else the last task]\n");
    printf("  --plora-ranks LIST, --plora-stages LIST   [profile]\n");
    printf("  --threads N        OpenMP threads for every run (0: all cores) [default: 0]\n");
    printf("  --resume           go on with a study that -o DIR holds from an interrupted invocation (Ctrl-C, a time limit):\n"
           "                     every unit it finished with the same settings and base is read back, the rest runs\n");
#ifdef COMPARE_GPU
    printf("  --precision P      bf16 | fp32 [default: bf16]\n");
#endif
    printf("  -h, --help         print this help\n");
}

static int parse_list(const char *s, double *out, int max) {
    int n = 0;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *sp = NULL, *tok = strtok_r(buf, ",", &sp); tok; tok = strtok_r(NULL, ",", &sp)) {
        char *end;
        double v = strtod(tok, &end);
        if (end == tok || *end || !isfinite(v) || v <= 0 || n == max) return -1;
        out[n++] = v;
    }
    return n;
}

// What the command line gave for the settings a profile also sets (-1 / NULL: the profile's).
typedef struct {
    int steps, seeds, rank, B, T, eval_ex, val_ex, threads, cont_max;
    const char *lrs[NUM_VARIANTS], *ranks, *stages;
} CmpFlags;

// The profile's values where the flags gave none. 0, or 1 after an error message.
static int compare_apply_profile(Compare *cm, const CmpFlags *fl) {
    int quick = cm->quick = strcmp(cm->profile, "quick") == 0, full = strcmp(cm->profile, "full") == 0;
    cm->steps = fl->steps > 0 ? fl->steps : quick ? CMP_QUICK_STEPS : CMP_STEPS;
    cm->nseeds = fl->seeds > 0 ? fl->seeds : quick ? 2 : 3;
    if (cm->nseeds > CMP_MAX_SEEDS) { fprintf(stderr, "error: --seeds: at most %d\n", CMP_MAX_SEEDS); return 1; }
    cm->rank = fl->rank; cm->B = fl->B; cm->T = fl->T;
    cm->eval_examples = fl->eval_ex >= 0 ? fl->eval_ex : quick ? 24 : full ? 0 : 250;
    cm->val_examples = fl->val_ex >= 0 ? fl->val_ex : quick ? 24 : full ? 0 : 250;
    cm->val_batches = quick ? 4 : 20;
    cm->continual_max = fl->cont_max >= 0 ? fl->cont_max : quick || full ? 0 : 2;
    for (int v = 0; v < NUM_VARIANTS; v++) {
        if (fl->lrs[v]) {
            double x[CMP_MAX_LRS];
            int n = parse_list(fl->lrs[v], x, CMP_MAX_LRS);
            if (n <= 0) { fprintf(stderr, "error: --lrs-%s: expects 1 to %d positive rates, comma-separated, got '%s'\n", variants[v].name, CMP_MAX_LRS, fl->lrs[v]); return 1; }
            cm->nlrs[v] = n;
            for (int i = 0; i < n; i++) cm->lrs[v][i] = (float)x[i];
        } else if (!full) {
            cm->nlrs[v] = 2;
            for (int i = 0; i < 2; i++) cm->lrs[v][i] = default_lrs[v][1 + i];
        } else {
            cm->nlrs[v] = 4;
            for (int i = 0; i < 4; i++) cm->lrs[v][i] = default_lrs[v][i];
        }
    }
    const int *pr = quick ? quick_ranks : full ? full_ranks : cpu_ranks, *ps = quick ? quick_stages : full ? full_stages : cpu_stages;
    cm->nranks = quick ? 2 : full ? 4 : 2;
    cm->nstages = quick ? 1 : full ? 2 : 1;
    for (int i = 0; i < cm->nranks; i++) cm->ranks[i] = pr[i];
    for (int j = 0; j < cm->nstages; j++) cm->stages[j] = ps[j];
    if (fl->ranks) {
        double x[CMP_MAX_RANKS];
        int n = parse_list(fl->ranks, x, CMP_MAX_RANKS);
        if (n <= 0) { fprintf(stderr, "error: --plora-ranks: 1 to %d positive integers\n", CMP_MAX_RANKS); return 1; }
        cm->nranks = n;
        for (int i = 0; i < n; i++) cm->ranks[i] = (int)x[i];
    }
    if (fl->stages) {
        double x[CMP_MAX_STAGES];
        int n = parse_list(fl->stages, x, CMP_MAX_STAGES);
        if (n <= 0) { fprintf(stderr, "error: --plora-stages: 1 to %d positive integers\n", CMP_MAX_STAGES); return 1; }
        cm->nstages = n;
        for (int j = 0; j < n; j++) cm->stages[j] = (int)x[j];
    }
    if (cm->use_variant[V_LORI_S]) cm->use_variant[V_LORI_D] = 1; // LoRI-S's D stage runs at LoRI-D's chosen rate
    for (int t = 0; t < CMP_MAX_TASKS; t++) for (int v = 0; v < NUM_VARIANTS; v++) cm->best[t][v] = -1;
    return 0;
}

// The command line into cm: the profile, then every flag over it. 0: go on; 1: a bad flag (said);
// 2: help printed. *threads and *quick are what the rest of compare_main needs besides cm.
static int compare_parse_args(Compare *cm, int argc, char **argv, int *threads_out, int *quick_out) {
    g_stop_requested = 0;
#ifdef COMPARE_GPU
    snprintf(cm->profile, sizeof(cm->profile), "full");
#else
    snprintf(cm->profile, sizeof(cm->profile), "cpu");
#endif
    snprintf(cm->out, sizeof(cm->out), "%s/compare", DEFAULT_OUT_DIR);
    cm->bf16 = 1;
    for (int v = 0; v < NUM_VARIANTS; v++) cm->use_variant[v] = 1;
    cm->parts_merge = cm->parts_continual = cm->parts_plora = 1;
    CmpFlags fl = {-1, -1, DEFAULT_RANK, DEFAULT_B, DEFAULT_T, -1, -1, 0, -1, {0}, NULL, NULL};
    for (int i = 0; i < (int)(sizeof(cm->cmdline) - 1) && i < argc; i++) {
        size_t l = strlen(cm->cmdline);
#ifdef COMPARE_GPU
        snprintf(cm->cmdline + l, sizeof(cm->cmdline) - l, "%s%s", i ? " " : "", i ? argv[i] : "./comparecu");
#else
        snprintf(cm->cmdline + l, sizeof(cm->cmdline) - l, "%s%s", i ? " " : "", i ? argv[i] : "./compare");
#endif
    }
#define NEED() do { if (i + 1 >= argc || !argv[i + 1][0]) { fprintf(stderr, "error: %s needs a value (see -h)\n", a); return 1; } } while (0)
#define INTARG(dst, lo) do { NEED(); char *e_; long x_ = strtol(argv[++i], &e_, 10); \
        if (*e_ || x_ < (lo) || x_ > 1000000) { fprintf(stderr, "error: %s expects an integer >= %d, got '%s'\n", a, (lo), argv[i]); return 1; } (dst) = (int)x_; } while (0)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) snprintf(cm->profile, sizeof(cm->profile), "quick");
        else if (strcmp(a, "--profile") == 0) {
            NEED();
            const char *p = argv[++i];
            if (strcmp(p, "quick") && strcmp(p, "cpu") && strcmp(p, "full")) { fprintf(stderr, "error: --profile must be quick, cpu or full\n"); return 1; }
            snprintf(cm->profile, sizeof(cm->profile), "%s", p);
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            NEED();
            if (strlen(argv[i + 1]) > 900) { fprintf(stderr, "error: output directory name too long\n"); return 1; }
            snprintf(cm->out, sizeof(cm->out), "%s", argv[++i]);
        } else if (strcmp(a, "--tasks") == 0) {
            NEED();
            if (strlen(argv[i + 1]) > 900) { fprintf(stderr, "error: --tasks: folder name too long\n"); return 1; }
            snprintf(cm->tasks_dir, sizeof(cm->tasks_dir), "%s", argv[++i]);
        } else if (strcmp(a, "-e") == 0 || strcmp(a, "--model") == 0) {
            NEED();
            if (strlen(argv[i + 1]) > 900) { fprintf(stderr, "error: -e: file name too long\n"); return 1; }
            snprintf(cm->base_arg, sizeof(cm->base_arg), "%s", argv[++i]);
        } else if (strcmp(a, "--variants") == 0) {
            NEED();
            for (int v = 0; v < NUM_VARIANTS; v++) cm->use_variant[v] = 0;
            char buf[256];
            snprintf(buf, sizeof(buf), "%s", argv[++i]);
            for (char *sp = NULL, *tok = strtok_r(buf, ",", &sp); tok; tok = strtok_r(NULL, ",", &sp)) {
                int found = -1;
                for (int v = 0; v < NUM_VARIANTS; v++) if (strcmp(tok, variants[v].name) == 0) found = v;
                if (found < 0) { fprintf(stderr, "error: --variants: unknown '%s' (full,lora,lori_d,lori_s,plora)\n", tok); return 1; }
                cm->use_variant[found] = 1;
            }
        } else if (strcmp(a, "--steps") == 0) INTARG(fl.steps, 2);
        else if (strcmp(a, "--seeds") == 0) INTARG(fl.seeds, 1);
        else if (strcmp(a, "--rank") == 0) INTARG(fl.rank, 1);
        else if (strcmp(a, "-b") == 0) INTARG(fl.B, 1);
        else if (strcmp(a, "-t") == 0) INTARG(fl.T, 2);
        else if (strcmp(a, "--eval-examples") == 0) INTARG(fl.eval_ex, 0);
        else if (strcmp(a, "--val-examples") == 0) INTARG(fl.val_ex, 0);
        else if (strcmp(a, "--threads") == 0) INTARG(fl.threads, 0);
        else if (strcmp(a, "--resume") == 0) cm->resume = 1;
        else if (strcmp(a, "--continual-tasks") == 0) INTARG(fl.cont_max, 0);
        else if (strncmp(a, "--lrs-", 6) == 0) {
            const char *nm = a + 6;
            int found = -1;
            for (int v = 0; v < NUM_VARIANTS; v++) {
                char dashed[32];
                snprintf(dashed, sizeof(dashed), "%s", variants[v].name);
                for (char *c = dashed; *c; c++) if (*c == '_') *c = '-';
                if (strcmp(nm, dashed) == 0 || strcmp(nm, variants[v].name) == 0) found = v;
            }
            if (found < 0) { fprintf(stderr, "error: unknown flag '%s' (--lrs-full, --lrs-lora, --lrs-lori-d, --lrs-lori-s, --lrs-plora)\n", a); return 1; }
            NEED();
            fl.lrs[found] = argv[++i];
        } else if (strcmp(a, "--parts") == 0) {
            NEED();
            cm->parts_merge = cm->parts_continual = cm->parts_plora = 0;
            char buf[256];
            snprintf(buf, sizeof(buf), "%s", argv[++i]);
            for (char *sp = NULL, *tok = strtok_r(buf, ",", &sp); tok; tok = strtok_r(NULL, ",", &sp)) {
                if (strcmp(tok, "merge") == 0) cm->parts_merge = 1;
                else if (strcmp(tok, "continual") == 0) cm->parts_continual = 1;
                else if (strcmp(tok, "plora") == 0) cm->parts_plora = 1;
                else if (strcmp(tok, "finetune") != 0) { fprintf(stderr, "error: --parts: unknown '%s' (merge,continual,plora)\n", tok); return 1; }
            }
        } else if (strcmp(a, "--continual-from") == 0) { NEED(); snprintf(cm->continual_from, sizeof(cm->continual_from), "%s", argv[++i]); }
        else if (strcmp(a, "--plora-task") == 0) { NEED(); snprintf(cm->plora_task, sizeof(cm->plora_task), "%s", argv[++i]); }
        else if (strcmp(a, "--plora-ranks") == 0) { NEED(); fl.ranks = argv[++i]; }
        else if (strcmp(a, "--plora-stages") == 0) { NEED(); fl.stages = argv[++i]; }
#ifdef COMPARE_GPU
        else if (strcmp(a, "--precision") == 0) {
            NEED();
            const char *p = argv[++i];
            if (strcmp(p, "bf16") == 0) cm->bf16 = 1; else if (strcmp(p, "fp32") == 0) cm->bf16 = 0;
            else { fprintf(stderr, "error: --precision must be bf16 or fp32\n"); return 1; }
        }
#endif
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(argv[0]); return 2; }
        else { fprintf(stderr, "error: unknown argument '%s' (see -h)\n", a); return 1; }
    }
#undef INTARG
#undef NEED
    if (compare_apply_profile(cm, &fl) != 0) return 1;
    *threads_out = fl.threads;
    *quick_out = cm->quick;
    return 0;
}

static int compare_main(int argc, char **argv) {
    static Compare cm;
    memset(&cm, 0, sizeof(cm));
    int threads = 0, quick = 0;
    int rc = compare_parse_args(&cm, argc, argv, &threads, &quick);
    if (rc != 0) return rc == 2 ? 0 : rc;
    mkdir_p(cm.out);
    char logpath[1200];
    snprintf(logpath, sizeof(logpath), "%s/log.txt", cm.out);
    fflush(stdout);
    cm.logfd = open(logpath, O_WRONLY | O_CREAT | (cm.resume ? O_APPEND : O_TRUNC), 0644);
    if (cm.logfd < 0) { fprintf(stderr, "error: cannot write %s: %s\n", logpath, strerror(errno)); return 1; }
    cm.confd = dup(1);
    cm.con = fdopen(dup(1), "w");
    if (cm.confd < 0 || !cm.con) die("cannot duplicate stdout");
    if (threads > 0) {
#ifdef OMP
        omp_set_num_threads(threads);
#endif
    }
    signal(SIGINT, on_signal); // a stop ends the study between units (progress) or after a run's step (cmp_train)
    signal(SIGTERM, on_signal);
    cm.t_start = now_s();
    char load_start[32], machine[512];
    load_average(load_start, sizeof(load_start));
    machine_line(machine, sizeof(machine), cm.bf16);
    cmp_say(&cm, "== %s (profile %s) -> %s/ (run output in %s)\n   %s, load average %s\n", cm.cmdline, cm.profile, cm.out, logpath, machine, load_start);
    // the base and the tasks
    int embedded = !cm.tasks_dir[0];
    if (embedded) snprintf(cm.tasks_dir, sizeof(cm.tasks_dir), "%s", DEFAULT_DATA_DIR);
    if (cm.base_arg[0]) snprintf(cm.base, sizeof(cm.base), "%s", cm.base_arg);
    else ensure_embedded_base(&cm);
    snapshot_base(&cm);
    char err[2048];
    if (find_tasks(&cm, err, sizeof(err)) != 0) { fprintf(stderr, "error: %s\n", err); return 1; }
    if (embedded && quick) { // CI: two tasks of the suite, safety for the continual part
        cm.ntasks = 2;
        snprintf(cm.task_names[0], 64, "arith");
        snprintf(cm.task_names[1], 64, "safety");
    }
    cm.src = cm.ptask = -1;
    for (int t = 0; t < cm.ntasks; t++) {
        if (strcmp(cm.task_names[t], cm.continual_from[0] ? cm.continual_from : "safety") == 0) cm.src = t;
        if (strcmp(cm.task_names[t], cm.plora_task[0] ? cm.plora_task : "code") == 0) cm.ptask = t;
    }
    if (cm.continual_from[0] && cm.src < 0) { fprintf(stderr, "error: --continual-from: no task '%s' in %s\n", cm.continual_from, cm.tasks_dir); return 1; }
    if (cm.plora_task[0] && cm.ptask < 0) { fprintf(stderr, "error: --plora-task: no task '%s' in %s\n", cm.plora_task, cm.tasks_dir); return 1; }
    if (cm.src < 0) cm.src = 0;
    if (cm.ptask < 0) cm.ptask = cm.ntasks - 1;
    if (!cm.parts_continual) cm.src = -1;
    if (!cm.parts_plora) cm.ptask = -1;
    for (int t = 0; t < cm.ntasks; t++) cmp_say(&cm, "   task %s: %s/%s_{train,val,test}.bin\n", cm.task_names[t], cm.tasks_dir, cm.task_names[t]);
    // how many progress lines: base + sweep + seeds per task and variant; merges; continual; plora
    int nv = 0, nl = 0, nk = 0;
    for (int v = 0; v < NUM_VARIANTS; v++) if (cm.use_variant[v]) { nv++; nl += cm.nlrs[v]; }
    for (int k = 0; k < NUM_KINDS; k++) nk += cm.use_variant[kinds[k]];
    cm.nruns_total = cm.ntasks * (1 + nl + nv * (cm.nseeds - 1));
    if (cm.parts_merge && cm.ntasks >= 2) cm.nruns_total += nk * cm.nseeds * NUM_MERGES;
    int ncont = cm.continual_max > 0 && cm.continual_max < cm.ntasks - 1 ? cm.continual_max : cm.ntasks - 1;
    if (cm.src >= 0 && cm.ntasks >= 2) cm.nruns_total += nk * ncont * cm.nseeds;
    if (cm.ptask >= 0 && cm.use_variant[V_LORA] && cm.use_variant[V_PLORA]) cm.nruns_total += cm.nranks * (1 + cm.nstages) * cm.nseeds;
    cm.t_start = now_s() - cm.t_pretrain;
    part_finetune(&cm);
    if (cm.parts_merge) part_merge(&cm);
    part_continual(&cm);
    part_plora(&cm);
    write_csvs(&cm);
    write_charts(&cm);
    write_report(&cm, load_start);
    char total[32];
    format_eta(now_s() - cm.t_start, total, sizeof(total));
    if (cm.nresumed) cmp_say(&cm, "   (%d units read back by --resume; they took %.0f s when they ran)\n", cm.nresumed, cm.t_resumed);
    cmp_say(&cm, "== done in %s: %s/report.md (+ sweep.csv, results.csv, merge.csv, continual.csv, plora.csv, *.svg)\n", total, cm.out);
    fclose(cm.con);
    close(cm.confd);
    close(cm.logfd);
    return 0;
}

#ifndef COMPARE_NO_MAIN
int main(int argc, char **argv) { return compare_main(argc, argv); }
#endif
