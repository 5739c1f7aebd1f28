/*
compare.c — the comparison report: full fine-tuning, LoRA, LoRI-D, LoRI-S and PeriodicLoRA at equal
rank on every task of the embedded suite; merging the four task adapters (cat, linear, ties, dare)
for LoRA vs LoRI-S; continual learning safety -> each other task for LoRA vs LoRI-S (forgetting).

    make compare && ./compare              # the full report into out/compare/ (see CMP_* below)
    ./compare --quick -o /tmp/cmp          # CI: two tasks, few steps, few test examples

Every training run is one call of train_gpt2.c's run_training on the embedded default's recipe
(the DEFAULT_* constants there): the same cached base out/base/model.bin (pretrained here through
the same code path as `./train_lori` if it is missing or its RECIPE differs), the same task suite
data/tasks/ (generated if missing), B, T, rank, alpha, learning rates and schedule. What differs
from the default, and why: every variant gets the same number of optimizer steps (CMP_STEPS), so
the comparison is at equal steps; LoRI-S is the ds pipeline with half of them for LoRI-D (to find
the mask) and half for LoRI-S; and each task draws its own A (adapter seed per task), as LoRI's
unseeded draws do — the near-orthogonality of the A's across tasks is what LoRI's merging relies on.

Scores are exact match under greedy decoding on the task's test split (data/tasks.h's scorer).
A merged adapter is scored on every task: the drop from each task's own adapter is the cross-task
interference. Continual learning trains the safety adapter further on one other task
(run_training with adapter_in; LoRI-S: a fresh LoRI-D on the new task gives the new mask, then
the loaded B trains under it, entries outside it untouched): the safety score after stage 2,
against stage 1's, is the forgetting.

Outputs under -o DIR (default out/compare):
    report.md                    the tables, the machine, the charts
    base.bin                     the base model every run started from (a copy of out/base/model.bin)
    results.csv                  one row per (task, variant): steps, parameters, bytes, loss, score, time
    merge.csv, continual.csv     the merged adapters' per-task scores; continual learning
    loss_<task>.svg              training loss of every variant on the task
    scores.svg                   exact match per task and variant
    merge_lora.svg, merge_lori_s.svg, merge_mean.svg    interference: merged vs single-task scores
    forgetting.svg               the safety score before and after stage 2
    runs/<task>/<variant>/       each run's train.csv, adapter.bin (or model.bin), command.txt:
                                 the equivalent ./train_gpt2 command line
    merge/<kind>_<method>.bin    the merged adapters; continual/<kind>_<task>/ the stage-2 runs
    log.txt                      everything the runs printed
*/
#include <fcntl.h>
#include "../llmc/train.h"
#include "../llmc/embedded.h"
#include "../llmc/report.h"
#include "merge.h"

// ----------------------------------------------------------------------------
// what runs, and how long. Full mode: 4 base evaluations, 4 tasks x 5 variants = 20 fine-tuning
// runs, 2 kinds x 4 methods = 8 merges scored on 4 tasks, 2 kinds x 3 tasks = 6 continual runs.
// About 7,800 optimizer steps of B x T = 1,024 tokens and 64 exact-match evaluations in all.

#define CMP_STEPS (2 * DEFAULT_FT_STEPS) // optimizer steps of every fine-tuning run (300: what ./train_lora and ./train_plora run)
#define CMP_PLORA_STAGES 4       // PLoRA unloads into the base every CMP_STEPS / 4 steps (./train_plora's)
#define CMP_FULL_LR 1e-3f        // full fine-tuning's learning rate (./train_gpt2's default recipe); adapters: DEFAULT_FT_LR
#define CMP_EVAL_EXAMPLES 0      // test examples scored per task (0: all, 500 per task)
#define CMP_VAL_BATCHES 20       // validation batches (B x T tokens each) for the val loss
#define CMP_MERGE_WEIGHT 1.0f    // every task's weight w_t in the merge (cat: ΔW = Σ w_t s_t B_t A_t)
#define CMP_MERGE_DENSITY 0.5f   // ties and dare: fraction of each factor kept
#define CMP_MERGE_SEED 1234      // dare's drop pattern
#define CMP_ADAPTER_SEED 1000    // task t draws A from seed CMP_ADAPTER_SEED + t
#define CMP_LOSS_SMOOTH 10       // loss curves: mean of the last N steps
#define CMP_LEARNED_PCT 50       // the report flags single-task adapters below this exact match (%) as "not learned"

// --quick (CI): two tasks (safety is needed for the continual part), a few steps, a few examples
#define CMP_QUICK_STEPS 24
#define CMP_QUICK_EVAL_EXAMPLES 24
#define CMP_QUICK_VAL_BATCHES 4
static const char *const cmp_quick_tasks[] = {"arith", "safety"};

// ----------------------------------------------------------------------------
// the variants, the merge methods

typedef struct {
    const char *name;      // directory and CSV name
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

// merged and continual: LoRA vs LoRI-S
static const int kinds[2] = {V_LORA, V_LORI_S};
#define NUM_METHODS 4
static const MergeMethod methods[NUM_METHODS] = {MERGE_CAT, MERGE_LINEAR, MERGE_TIES, MERGE_DARE_LINEAR};
static const char *const method_labels[NUM_METHODS] = {"cat", "linear", "ties", "dare"};

// ----------------------------------------------------------------------------
// state of one comparison

typedef struct {
    int ok;
    TrainResult r;
    double wall;          // seconds of the whole call (training, val loss, exact match)
    long file_bytes;      // what the run ships: adapter.bin; model.bin for full FT and PLoRA
} RunRow;

typedef struct {
    int quick;
    char out[1024];
    int ntasks;
    const char *tasks[TASKS_NTASKS];
    int steps, eval_examples, val_batches;
    char base[1200];
    // results
    double base_val[TASKS_NTASKS];
    EMResult base_em[TASKS_NTASKS];
    RunRow runs[TASKS_NTASKS][NUM_VARIANTS];
    EMResult merged[2][NUM_METHODS][TASKS_NTASKS];
    int merged_ok[2][NUM_METHODS];
    int merged_rank[2][NUM_METHODS];
    // continual: per kind, per new task
    int cont_ok[2][TASKS_NTASKS];
    EMResult cont_safety[2][TASKS_NTASKS], cont_new[2][TASKS_NTASKS];
    double cont_wall[2][TASKS_NTASKS];
    double t_start, t_pretrain;
    int nruns_done, nruns_total;
    FILE *con;            // the terminal (stdout is the log while a run prints)
    int logfd, confd;
} Compare;

static double pct(EMResult e) { return e.n ? 100.0 * e.correct / e.n : NAN; }

static void cmp_say(Compare *cm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cmp_say(Compare *cm, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(cm->con, fmt, ap);
    va_end(ap);
    fflush(cm->con);
}

// stdout goes to DIR/log.txt while run_training prints; the progress lines go to the terminal.
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

static void task_path(char *buf, size_t n, const char *task, const char *split) {
    snprintf(buf, n, "%s/%s_%s.bin", DEFAULT_DATA_DIR, task, split);
}

// Validates c, writes its command line beside the run, runs it with the output in the log.
static void run_logged(Compare *cm, TrainConfig *c, const char *title, TrainResult *res) {
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
    int rc = run_training(c, 1, argv, res);
    log_end(cm);
    if (rc != 0) cmp_say(cm, "   FAILED: %s: %s (the comparison goes on; this run scores as failed)\n", title, res->error);
    if (g_stop_requested) { cmp_say(cm, "interrupted: stopping the comparison (partial outputs in %s)\n", cm->out); exit(130); }
}

// ----------------------------------------------------------------------------
// the base model, the recipe of each variant

// The same steps as run_default: the suite if missing, the base pretrained and cached if missing.
static void ensure_base(Compare *cm) {
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
    run_logged(cm, &bc, "pretraining the base model", &r);
    sf = fopen(stamp, "w");
    if (sf) { fputs(recipe, sf); fclose(sf); }
    cm->t_pretrain = now_s() - t0;
    cmp_say(cm, "   done in %.0f s\n", cm->t_pretrain);
}

// Every run starts from DIR/base.bin, a copy of the cached base taken once: the report stays
// consistent (and reproducible from DIR) even if out/base is retrained while it runs.
static void snapshot_base(Compare *cm) {
    char err[1024], dst[1200];
    size_t n = 0;
    void *data = read_whole_file(cm->base, &n, err, sizeof(err));
    if (!data) die("compare: %s", err);
    snprintf(dst, sizeof(dst), "%s/base.bin", cm->out);
    const void *bufs[1] = {data};
    size_t sizes[1] = {n};
    if (write_chunks_atomic(dst, bufs, sizes, 1, err, sizeof(err)) != 0) die("compare: %s", err);
    free(data);
    snprintf(cm->base, sizeof(cm->base), "%s", dst);
}

// The embedded default's fine-tuning recipe (run_default), at CMP_STEPS for every variant.
static void ft_config(const Compare *cm, TrainConfig *c, int v, int task_i, const char *outdir) {
    const char *task = cm->tasks[task_i];
    config_defaults(c);
    snprintf(c->model, sizeof(c->model), "%s", cm->base);
    task_path(c->train_pattern, sizeof(c->train_pattern), task, "train");
    task_path(c->val_pattern, sizeof(c->val_pattern), task, "val");
    task_path(c->eval_em, sizeof(c->eval_em), task, "test");
    snprintf(c->output_dir, sizeof(c->output_dir), "%s", outdir);
    c->B = DEFAULT_B; c->T = DEFAULT_T; c->max_steps = cm->steps; c->lr = DEFAULT_FT_LR;
    c->rank = DEFAULT_RANK; c->alpha = 2.0f * DEFAULT_RANK; c->warmup = 10; c->final_frac = 0.1f;
    c->val_every = 0; c->val_batches = cm->val_batches; c->sample_every = 0; c->print_every = 50;
    c->eval_examples = cm->eval_examples; c->eval_show = 3;
    c->adapter_seed = CMP_ADAPTER_SEED + tasks_index(task);
    snprintf(c->adapter, sizeof(c->adapter), "%s", variants[v].adapter);
    switch (v) {
        case V_FULL: c->lr = CMP_FULL_LR; break;
        case V_LORI_D: strcpy(c->lori_stage, "d"); break;
        case V_LORI_S: // LoRI-D for the mask, then LoRI-S at 10x the learning rate (the official scripts')
            strcpy(c->lori_stage, "ds"); c->max_steps = cm->steps / 2; c->lori_steps_s = cm->steps - cm->steps / 2; break;
        case V_PLORA: c->plora_every = cm->steps / CMP_PLORA_STAGES > 0 ? cm->steps / CMP_PLORA_STAGES : 1; break;
        default: break;
    }
}

// Exact match of the base with an adapter file (NULL: the base alone) on the given tasks' test splits.
static void score_adapter(Compare *cm, const char *adapter_path, EMResult *out, int only_task) {
    char err[1024], title[1400];
    snprintf(title, sizeof(title), "exact match of %s", adapter_path ? adapter_path : "the base model");
    log_begin(cm, title);
    GPT2 m;
    if (gpt2_load_checkpoint(&m, cm->base, err, sizeof(err)) != 0) die("compare: %s", err);
    Adapter ad;
    if (adapter_path) {
        if (adapter_load(&ad, adapter_path, m.config.num_layers, m.config.channels, err, sizeof(err)) != 0) die("compare: %s", err);
        m.adapter = &ad;
    }
    float *scratch = NULL;
    for (int t = 0; t < cm->ntasks; t++) {
        if (only_task >= 0 && t != only_task) continue;
        char test[1200];
        task_path(test, sizeof(test), cm->tasks[t], "test");
        if (eval_exact_match(&m, NULL, test, cm->eval_examples, 2, &scratch, &out[t], err, sizeof(err)) != 0) die("compare: %s", err); // the suite's byte-level tokenizer
        printf("exact match %s: %d / %d = %.1f%%\n", test, out[t].correct, out[t].n, pct(out[t]));
    }
    free(scratch);
    if (adapter_path) adapter_free(&ad);
    m.adapter = NULL;
    gpt2_free(&m);
    log_end(cm);
}

static void progress(Compare *cm, const char *what, const char *detail) {
    cm->nruns_done++;
    double el = now_s() - cm->t_start;
    char eta[32], done[32];
    format_eta(el, done, sizeof(done));
    format_eta(cm->nruns_done ? el / cm->nruns_done * (cm->nruns_total - cm->nruns_done) : -1, eta, sizeof(eta));
    cmp_say(cm, "[%2d/%d] %-34s %s  (elapsed %s, ETA %s)\n", cm->nruns_done, cm->nruns_total, what, detail, done, eta);
}

// ----------------------------------------------------------------------------
// the three parts

static void part_finetune(Compare *cm) {
    cmp_say(cm, "== 1. fine-tuning every variant on every task (%d steps each, rank %d)\n", cm->steps, DEFAULT_RANK);
    for (int t = 0; t < cm->ntasks; t++) {
        // before: the base model's val loss and exact match
        TrainConfig ec;
        config_defaults(&ec);
        snprintf(ec.model, sizeof(ec.model), "%s", cm->base);
        task_path(ec.val_pattern, sizeof(ec.val_pattern), cm->tasks[t], "val");
        task_path(ec.eval_em, sizeof(ec.eval_em), cm->tasks[t], "test");
        strcpy(ec.adapter, "none");
        ec.B = DEFAULT_B; ec.T = DEFAULT_T; ec.max_steps = 0; ec.sample_every = 0; ec.val_batches = cm->val_batches;
        ec.eval_examples = cm->eval_examples; ec.eval_show = 3;
        char title[256], detail[256];
        snprintf(title, sizeof(title), "%s: the base model", cm->tasks[t]);
        TrainResult r;
        run_logged(cm, &ec, title, &r);
        cm->base_val[t] = r.final_val_loss;
        cm->base_em[t] = (EMResult){r.em_n, r.em_correct};
        snprintf(detail, sizeof(detail), "val loss %.4f  exact match %5.1f%%", r.final_val_loss, pct(cm->base_em[t]));
        progress(cm, title, detail);
        for (int v = 0; v < NUM_VARIANTS; v++) {
            char outdir[1200];
            snprintf(outdir, sizeof(outdir), "%s/runs/%s/%s", cm->out, cm->tasks[t], variants[v].name);
            TrainConfig c;
            ft_config(cm, &c, v, t, outdir);
            snprintf(title, sizeof(title), "%s: %s", cm->tasks[t], variants[v].label);
            RunRow *row = &cm->runs[t][v];
            double t0 = now_s();
            run_logged(cm, &c, title, &row->r);
            row->wall = now_s() - t0;
            row->ok = 1;
            char path[1300];
            snprintf(path, sizeof(path), "%s/%s", outdir, v == V_FULL || v == V_PLORA ? "model.bin" : "adapter.bin");
            row->file_bytes = file_size(path);
            snprintf(detail, sizeof(detail), "val loss %.4f  exact match %5.1f%%  %5.1f s", row->r.final_val_loss,
                     pct((EMResult){row->r.em_n, row->r.em_correct}), row->wall);
            progress(cm, title, detail);
        }
    }
}

static void part_merge(Compare *cm) {
    cmp_say(cm, "== 2. merging the %d task adapters (weight %g each), LoRA vs LoRI-S\n", cm->ntasks, (double)CMP_MERGE_WEIGHT);
    char dir[1200];
    snprintf(dir, sizeof(dir), "%s/merge", cm->out);
    mkdir_p(dir);
    for (int k = 0; k < 2; k++) {
        int v = kinds[k];
        Adapter in[TASKS_NTASKS];
        const Adapter *ptr[TASKS_NTASKS];
        float w[TASKS_NTASKS];
        char err[1024], path[1400];
        for (int t = 0; t < cm->ntasks; t++) {
            snprintf(path, sizeof(path), "%s/runs/%s/%s/adapter.bin", cm->out, cm->tasks[t], variants[v].name);
            if (adapter_load(&in[t], path, 0, 0, err, sizeof(err)) != 0) die("compare: %s", err);
            ptr[t] = &in[t];
            w[t] = CMP_MERGE_WEIGHT;
        }
        for (int mi = 0; mi < NUM_METHODS; mi++) {
            MergeConfig mc = {methods[mi], CMP_MERGE_DENSITY, CMP_MERGE_SEED, 0};
            Adapter out;
            if (adapter_merge(&out, ptr, w, cm->ntasks, &mc, err, sizeof(err)) != 0) die("compare: merge %s: %s", method_labels[mi], err);
            char desc[256];
            snprintf(desc, sizeof(desc), "./compare: %s of the %s task adapters, weight %g, density %g", method_labels[mi],
                     variants[v].label, (double)CMP_MERGE_WEIGHT, (double)CMP_MERGE_DENSITY);
            snprintf(path, sizeof(path), "%s/%s_%s.bin", dir, variants[v].name, method_labels[mi]);
            if (adapter_save(&out, path, desc, err, sizeof(err)) != 0) die("compare: %s", err);
            cm->merged_rank[k][mi] = out.cfg.rank;
            adapter_free(&out);
            score_adapter(cm, path, cm->merged[k][mi], -1);
            cm->merged_ok[k][mi] = 1;
            char what[128], detail[512] = "";
            snprintf(what, sizeof(what), "merge %s %s (rank %d)", variants[v].label, method_labels[mi], cm->merged_rank[k][mi]);
            for (int t = 0; t < cm->ntasks; t++) {
                size_t l = strlen(detail);
                snprintf(detail + l, sizeof(detail) - l, "%s %.1f%%", cm->tasks[t], pct(cm->merged[k][mi][t]));
                if (t + 1 < cm->ntasks) strcat(detail, ", ");
            }
            progress(cm, what, detail);
        }
        for (int t = 0; t < cm->ntasks; t++) adapter_free(&in[t]);
    }
}

static void part_continual(Compare *cm) {
    int s = -1;
    for (int t = 0; t < cm->ntasks; t++) if (strcmp(cm->tasks[t], "safety") == 0) s = t;
    if (s < 0) return;
    cmp_say(cm, "== 3. continual learning: safety -> each other task, LoRA vs LoRI-S\n");
    for (int k = 0; k < 2; k++) {
        int v = kinds[k];
        for (int t = 0; t < cm->ntasks; t++) {
            if (t == s) continue;
            char outdir[1200], adapter_in[1300], title[256], detail[256];
            snprintf(outdir, sizeof(outdir), "%s/continual/%s_safety_to_%s", cm->out, variants[v].name, cm->tasks[t]);
            snprintf(adapter_in, sizeof(adapter_in), "%s/runs/safety/%s/adapter.bin", cm->out, variants[v].name);
            TrainConfig c;
            ft_config(cm, &c, v, t, outdir);
            snprintf(c.adapter_in, sizeof(c.adapter_in), "%s", adapter_in);
            snprintf(title, sizeof(title), "continual %s: safety -> %s", variants[v].label, cm->tasks[t]);
            TrainResult r;
            double t0 = now_s();
            run_logged(cm, &c, title, &r);
            cm->cont_new[k][t] = (EMResult){r.em_n, r.em_correct};
            char path[1300];
            snprintf(path, sizeof(path), "%s/adapter.bin", outdir);
            EMResult sc[TASKS_NTASKS];
            score_adapter(cm, path, sc, s);
            cm->cont_safety[k][t] = sc[s];
            cm->cont_wall[k][t] = now_s() - t0;
            cm->cont_ok[k][t] = 1;
            snprintf(detail, sizeof(detail), "safety %5.1f%% -> %5.1f%%, %s %5.1f%%", pct((EMResult){cm->runs[s][v].r.em_n, cm->runs[s][v].r.em_correct}),
                     pct(sc[s]), cm->tasks[t], pct(cm->cont_new[k][t]));
            progress(cm, title, detail);
        }
    }
}

// ----------------------------------------------------------------------------
// the report: CSV, SVG, Markdown

static EMResult run_em(const RunRow *r) { return (EMResult){r->r.em_n, r->r.em_correct}; }

static void fmt_em(char *buf, size_t n, EMResult e) {
    if (e.n) snprintf(buf, n, "%.1f%% (%d/%d)", pct(e), e.correct, e.n);
    else snprintf(buf, n, "—");
}

static void write_csvs(Compare *cm) {
    char path[1200], tmp[1300];
    snprintf(path, sizeof(path), "%s/results.csv", cm->out);
    FILE *f = report_open(path, tmp, sizeof(tmp));
    if (f) {
        fprintf(f, "task,variant,steps,trainable_params,total_params,lora_equal_rank_params,file_bytes,val_loss,em_correct,em_n,exact_match,train_seconds,wall_seconds,tokens_per_s\n");
        for (int t = 0; t < cm->ntasks; t++) {
            fprintf(f, "%s,base,0,0,,,,%.6f,%d,%d,%.4f,0,,\n", cm->tasks[t], cm->base_val[t], cm->base_em[t].correct, cm->base_em[t].n, pct(cm->base_em[t]) / 100);
            for (int v = 0; v < NUM_VARIANTS; v++) {
                const RunRow *r = &cm->runs[t][v];
                if (!r->ok) continue;
                fprintf(f, "%s,%s,%d,%zu,%zu,%zu,%ld,%.6f,%d,%d,%.4f,%.2f,%.2f,%.0f\n", cm->tasks[t], variants[v].name, r->r.steps, r->r.trainable,
                        r->r.total_params, r->r.lora_equiv, r->file_bytes, r->r.final_val_loss, r->r.em_correct, r->r.em_n,
                        pct(run_em(r)) / 100, r->r.seconds, r->wall, r->r.tok_per_s);
            }
        }
        report_close(f, tmp, path);
    }
    snprintf(path, sizeof(path), "%s/merge.csv", cm->out);
    f = report_open(path, tmp, sizeof(tmp));
    if (f) {
        fprintf(f, "adapter,method,rank,task,em_correct,em_n,exact_match,single_task_exact_match\n");
        for (int k = 0; k < 2; k++) for (int mi = 0; mi < NUM_METHODS; mi++) {
            if (!cm->merged_ok[k][mi]) continue;
            for (int t = 0; t < cm->ntasks; t++) {
                EMResult e = cm->merged[k][mi][t];
                fprintf(f, "%s,%s,%d,%s,%d,%d,%.4f,%.4f\n", variants[kinds[k]].name, method_labels[mi], cm->merged_rank[k][mi], cm->tasks[t],
                        e.correct, e.n, pct(e) / 100, pct(run_em(&cm->runs[t][kinds[k]])) / 100);
            }
        }
        report_close(f, tmp, path);
    }
    snprintf(path, sizeof(path), "%s/continual.csv", cm->out);
    f = report_open(path, tmp, sizeof(tmp));
    if (f) {
        fprintf(f, "adapter,new_task,safety_before,safety_after,safety_n,new_task_exact_match,new_task_single_exact_match,new_task_n,wall_seconds\n");
        int s = tasks_index("safety");
        for (int k = 0; k < 2; k++) for (int t = 0; t < cm->ntasks; t++) {
            if (!cm->cont_ok[k][t]) continue;
            int si = -1;
            for (int u = 0; u < cm->ntasks; u++) if (tasks_index(cm->tasks[u]) == s) si = u;
            fprintf(f, "%s,%s,%.4f,%.4f,%d,%.4f,%.4f,%d,%.1f\n", variants[kinds[k]].name, cm->tasks[t], pct(run_em(&cm->runs[si][kinds[k]])) / 100,
                    pct(cm->cont_safety[k][t]) / 100, cm->cont_safety[k][t].n, pct(cm->cont_new[k][t]) / 100,
                    pct(run_em(&cm->runs[t][kinds[k]])) / 100, cm->cont_new[k][t].n, cm->cont_wall[k][t]);
        }
        report_close(f, tmp, path);
    }
}

static void write_charts(Compare *cm) {
    char path[1300], title[256];
    // loss curves, one chart per task
    for (int t = 0; t < cm->ntasks; t++) {
        SvgSeries ser[NUM_VARIANTS];
        double *xs[NUM_VARIANTS] = {0}, *ys[NUM_VARIANTS] = {0};
        int ns = 0;
        for (int v = 0; v < NUM_VARIANTS; v++) {
            snprintf(path, sizeof(path), "%s/runs/%s/%s/train.csv", cm->out, cm->tasks[t], variants[v].name);
            int n = read_train_csv(path, &xs[v], &ys[v]);
            if (n <= 0) continue;
            double *sm = malloc(sizeof(double) * n), acc = 0;
            for (int i = 0; i < n; i++) {   // mean of the last CMP_LOSS_SMOOTH steps
                acc += ys[v][i];
                if (i >= CMP_LOSS_SMOOTH) acc -= ys[v][i - CMP_LOSS_SMOOTH];
                sm[i] = acc / (i + 1 < CMP_LOSS_SMOOTH ? i + 1 : CMP_LOSS_SMOOTH);
            }
            free(ys[v]);
            ys[v] = sm;
            ser[ns++] = (SvgSeries){variants[v].label, xs[v], ys[v], n};
        }
        snprintf(path, sizeof(path), "%s/loss_%s.svg", cm->out, cm->tasks[t]);
        snprintf(title, sizeof(title), "'%s': training loss on answer tokens (mean of %d steps)", cm->tasks[t], CMP_LOSS_SMOOTH);
        svg_line_chart(path, title, "step (LoRI-S: LoRI-D, then LoRI-S from the middle)", "loss", ser, ns);
        for (int v = 0; v < NUM_VARIANTS; v++) { free(xs[v]); free(ys[v]); }
    }
    // exact match per task and variant
    const char *names[NUM_VARIANTS + 1] = {"base"};
    for (int v = 0; v < NUM_VARIANTS; v++) names[v + 1] = variants[v].label;
    double vals[TASKS_NTASKS * (NUM_VARIANTS + 1)];
    for (int t = 0; t < cm->ntasks; t++) {
        vals[t * (NUM_VARIANTS + 1)] = pct(cm->base_em[t]);
        for (int v = 0; v < NUM_VARIANTS; v++) vals[t * (NUM_VARIANTS + 1) + v + 1] = cm->runs[t][v].ok ? pct(run_em(&cm->runs[t][v])) : NAN;
    }
    snprintf(path, sizeof(path), "%s/scores.svg", cm->out);
    svg_bar_chart(path, "exact match on the test split (%)", "exact match (%)", cm->tasks, cm->ntasks, names, NUM_VARIANTS + 1, vals);
    // interference: per kind, groups = tasks, series = single-task adapter and each merge
    const char *mnames[NUM_METHODS + 1] = {"single-task"};
    for (int mi = 0; mi < NUM_METHODS; mi++) mnames[mi + 1] = method_labels[mi];
    double mean[NUM_METHODS + 1][2];
    for (int k = 0; k < 2; k++) {
        double mv[TASKS_NTASKS * (NUM_METHODS + 1)];
        for (int j = 0; j <= NUM_METHODS; j++) mean[j][k] = 0;
        for (int t = 0; t < cm->ntasks; t++) {
            mv[t * (NUM_METHODS + 1)] = pct(run_em(&cm->runs[t][kinds[k]]));
            for (int mi = 0; mi < NUM_METHODS; mi++) mv[t * (NUM_METHODS + 1) + mi + 1] = cm->merged_ok[k][mi] ? pct(cm->merged[k][mi][t]) : NAN;
            for (int j = 0; j <= NUM_METHODS; j++) mean[j][k] += mv[t * (NUM_METHODS + 1) + j] / cm->ntasks;
        }
        snprintf(path, sizeof(path), "%s/merge_%s.svg", cm->out, variants[kinds[k]].name);
        snprintf(title, sizeof(title), "%s: the %d task adapters merged, scored on every task (%%)", variants[kinds[k]].label, cm->ntasks);
        svg_bar_chart(path, title, "exact match (%)", cm->tasks, cm->ntasks, mnames, NUM_METHODS + 1, mv);
    }
    const char *knames[2] = {variants[kinds[0]].label, variants[kinds[1]].label};
    double mm[(NUM_METHODS + 1) * 2];
    for (int j = 0; j <= NUM_METHODS; j++) for (int k = 0; k < 2; k++) mm[j * 2 + k] = mean[j][k];
    snprintf(path, sizeof(path), "%s/merge_mean.svg", cm->out);
    svg_bar_chart(path, "merged adapters: mean exact match over the tasks (%)", "exact match (%)", mnames, NUM_METHODS + 1, knames, 2, mm);
    // forgetting: groups = new tasks, series = safety before / after for each kind
    int s = -1;
    for (int t = 0; t < cm->ntasks; t++) if (strcmp(cm->tasks[t], "safety") == 0) s = t;
    if (s >= 0) {
        const char *groups[TASKS_NTASKS];
        double fv[TASKS_NTASKS * 4];
        int ng = 0;
        char labels[4][64];
        const char *fnames[4];
        for (int k = 0; k < 2; k++) {
            snprintf(labels[2 * k], 64, "%s: stage 1", variants[kinds[k]].label);
            snprintf(labels[2 * k + 1], 64, "%s: after stage 2", variants[kinds[k]].label);
            fnames[2 * k] = labels[2 * k]; fnames[2 * k + 1] = labels[2 * k + 1];
        }
        for (int t = 0; t < cm->ntasks; t++) {
            if (t == s) continue;
            groups[ng] = cm->tasks[t];
            for (int k = 0; k < 2; k++) {
                fv[ng * 4 + 2 * k] = pct(run_em(&cm->runs[s][kinds[k]]));
                fv[ng * 4 + 2 * k + 1] = cm->cont_ok[k][t] ? pct(cm->cont_safety[k][t]) : NAN;
            }
            ng++;
        }
        snprintf(path, sizeof(path), "%s/forgetting.svg", cm->out);
        svg_bar_chart(path, "continual learning: safety score after training on a new task (%)", "exact match on safety (%)", groups, ng, fnames, 4, fv);
    }
}

static void machine_line(char *buf, size_t n) {
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
    snprintf(buf, n, "%s, %ld cores online, %d OpenMP threads, gemm %s", model, cores, threads, gemm_isa());
}

static void load_average(char *buf, size_t n) {
    FILE *f = fopen("/proc/loadavg", "r");
    double a = NAN;
    if (f) { if (fscanf(f, "%lf", &a) != 1) a = NAN; fclose(f); }
    snprintf(buf, n, "%.2f", a);
}

static void write_report(Compare *cm, const char *load_start) {
    char path[1200], tmp[1300];
    snprintf(path, sizeof(path), "%s/report.md", cm->out);
    FILE *f = report_open(path, tmp, sizeof(tmp));
    if (!f) return;
    char machine[512], load_end[32], total[32];
    machine_line(machine, sizeof(machine));
    load_average(load_end, sizeof(load_end));
    format_eta(now_s() - cm->t_start, total, sizeof(total));
    int nex = cm->base_em[0].n;
    fprintf(f, "# Comparison: full fine-tuning, LoRA, LoRI-D, LoRI-S, PeriodicLoRA\n\n");
    fprintf(f, "`./compare%s` — tiny GPT-2 `%s` (%zu parameters) pretrained %d steps (`%s/base/model.bin`, copied to `base.bin`), "
               "rank %d, alpha %d, B=%d T=%d, %d optimizer steps per run, exact match (greedy) on %d test examples per task.  \n",
            cm->quick ? " --quick" : "", DEFAULT_MODEL, cm->runs[0][V_FULL].r.total_params, DEFAULT_PRETRAIN_STEPS, DEFAULT_OUT_DIR,
            DEFAULT_RANK, 2 * DEFAULT_RANK, DEFAULT_B, DEFAULT_T, cm->steps, nex);
    fprintf(f, "Machine: %s; load average %s at the start, %s at the end. Total wall time %s", machine, load_start, load_end, total);
    if (cm->t_pretrain > 0) fprintf(f, " (of which %.0f s pretraining the base)", cm->t_pretrain);
    fprintf(f, ".\n\n");

    fprintf(f, "## 1. Fine-tuning on each task\n\n");
    fprintf(f, "Every variant: %d steps of %d tokens from the same base. LoRI-S = LoRI-D for %d steps (the mask: top %.0f%% of |B|, "
               "model-wise), then LoRI-S for %d steps at 10x the learning rate. PLoRA unloads into the base every %d steps. "
               "*bytes*: the file the run ships — `adapter.bin`, or the whole checkpoint `model.bin` for full FT and PLoRA "
               "(PLoRA's earlier stages live in the base weights). *%% of LoRA*: trainable parameters against an equal-rank LoRA.\n\n",
            cm->steps, DEFAULT_B * DEFAULT_T, cm->steps / 2, 100.0 * (1 - 0.9), cm->steps - cm->steps / 2,
            cm->steps / CMP_PLORA_STAGES > 0 ? cm->steps / CMP_PLORA_STAGES : 1);
    fprintf(f, "| task | variant | trainable params | %% of full | %% of LoRA | bytes | val loss | exact match | train s | tokens/s |\n");
    fprintf(f, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int t = 0; t < cm->ntasks; t++) {
        char em[64];
        fmt_em(em, sizeof(em), cm->base_em[t]);
        fprintf(f, "| %s | base (before) | — | — | — | — | %.4f | %s | — | — |\n", cm->tasks[t], cm->base_val[t], em);
        for (int v = 0; v < NUM_VARIANTS; v++) {
            const RunRow *r = &cm->runs[t][v];
            if (!r->ok) continue;
            fmt_em(em, sizeof(em), run_em(r));
            char lora[32] = "—";
            if (r->r.lora_equiv) snprintf(lora, sizeof(lora), "%.1f%%", 100.0 * r->r.trainable / r->r.lora_equiv);
            fprintf(f, "| %s | %s | %zu | %.2f%% | %s | %ld | %.4f | **%s** | %.1f | %.0f |\n", cm->tasks[t], variants[v].label, r->r.trainable,
                    100.0 * r->r.trainable / r->r.total_params, lora, r->file_bytes, r->r.final_val_loss, em, r->r.seconds, r->r.tok_per_s);
        }
    }
    fprintf(f, "\n![exact match per task](scores.svg)\n\n");
    for (int t = 0; t < cm->ntasks; t++) fprintf(f, "![loss curves on %s](loss_%s.svg)\n", cm->tasks[t], cm->tasks[t]);

    fprintf(f, "\n## 2. Merging the %d task adapters (interference)\n\n", cm->ntasks);
    fprintf(f, "The task adapters of section 1 merged into one (`lora/merge.h`, weight %g each; ties and dare keep %.0f%% of each factor; "
               "dare = `dare_linear`, rescaled by 1/density), then scored on every task. *single-task*: each task's own adapter "
               "(no merge). The drop from it is the cross-task interference.\n\n",
            (double)CMP_MERGE_WEIGHT, 100.0 * CMP_MERGE_DENSITY);
    fprintf(f, "| adapter | method | rank |");
    for (int t = 0; t < cm->ntasks; t++) fprintf(f, " %s |", cm->tasks[t]);
    fprintf(f, " mean |\n|---|---|---:|");
    for (int t = 0; t <= cm->ntasks; t++) fprintf(f, "---:|");
    fprintf(f, "\n");
    for (int k = 0; k < 2; k++) {
        int v = kinds[k];
        double mean = 0;
        fprintf(f, "| %s | single-task | %d |", variants[v].label, DEFAULT_RANK);
        for (int t = 0; t < cm->ntasks; t++) { double p = pct(run_em(&cm->runs[t][v])); mean += p / cm->ntasks; fprintf(f, " %.1f%% |", p); }
        fprintf(f, " %.1f%% |\n", mean);
        for (int mi = 0; mi < NUM_METHODS; mi++) {
            if (!cm->merged_ok[k][mi]) continue;
            mean = 0;
            fprintf(f, "| %s | %s | %d |", variants[v].label, method_labels[mi], cm->merged_rank[k][mi]);
            for (int t = 0; t < cm->ntasks; t++) { double p = pct(cm->merged[k][mi][t]); mean += p / cm->ntasks; fprintf(f, " %.1f%% |", p); }
            fprintf(f, " **%.1f%%** |\n", mean);
        }
    }
    // a merge of adapters that did not learn their task measures noise: say so
    char unlearned[256] = "";
    for (int t = 0; t < cm->ntasks; t++) {
        int weak = 0;
        for (int k = 0; k < 2; k++) weak |= !(pct(run_em(&cm->runs[t][kinds[k]])) >= CMP_LEARNED_PCT);
        if (weak) { size_t l = strlen(unlearned); snprintf(unlearned + l, sizeof(unlearned) - l, "%s%s", l ? ", " : "", cm->tasks[t]); }
    }
    if (unlearned[0])
        fprintf(f, "\nNote: the single-task LoRA or LoRI-S adapter of %s scores below %d%%: that task is not learned in this budget, "
                   "so its update enters every merge as noise, and the merged scores measure that as much as interference.\n",
                unlearned, CMP_LEARNED_PCT);
    fprintf(f, "\n![merged adapters, mean over tasks](merge_mean.svg)\n![LoRA merged](merge_lora.svg)\n![LoRI-S merged](merge_lori_s.svg)\n");

    int s = -1;
    for (int t = 0; t < cm->ntasks; t++) if (strcmp(cm->tasks[t], "safety") == 0) s = t;
    if (s >= 0) {
        fprintf(f, "\n## 3. Continual learning: safety, then another task\n\n");
        fprintf(f, "Stage 1 is the safety adapter of section 1; stage 2 trains it %d more steps on the new task (`--adapter-in`). "
                   "LoRA trains all of A and B again; LoRI-S trains a fresh LoRI-D on the new task for its mask (%d steps), then only "
                   "the new mask's entries of the loaded B (%d steps): safety's other entries stay bit-identical. "
                   "*forgetting* = safety before − after.\n\n",
                cm->steps, cm->steps / 2, cm->steps - cm->steps / 2);
        fprintf(f, "| adapter | new task | safety, stage 1 | safety after stage 2 | forgetting | new task after stage 2 | new task, own adapter |\n");
        fprintf(f, "|---|---|---:|---:|---:|---:|---:|\n");
        for (int k = 0; k < 2; k++) for (int t = 0; t < cm->ntasks; t++) {
            if (!cm->cont_ok[k][t]) continue;
            int v = kinds[k];
            double before = pct(run_em(&cm->runs[s][v])), after = pct(cm->cont_safety[k][t]);
            fprintf(f, "| %s | %s | %.1f%% | %.1f%% | **%+.1f** | %.1f%% | %.1f%% |\n", variants[v].label, cm->tasks[t], before, after,
                    before - after, pct(cm->cont_new[k][t]), pct(run_em(&cm->runs[t][v])));
        }
        fprintf(f, "\n![forgetting](forgetting.svg)\n");
    }
    fprintf(f, "\nRaw numbers: `results.csv`, `merge.csv`, `continual.csv`; loss curves: `runs/<task>/<variant>/train.csv`; "
               "each run's equivalent trainer command: `runs/<task>/<variant>/command.txt`; everything the runs printed: `log.txt`.\n");
    report_close(f, tmp, path);
}

// ----------------------------------------------------------------------------
// main

static void usage(const char *prog) {
    printf("usage: %s [--quick] [-o DIR]\n", prog);
    printf("Compares full fine-tuning, LoRA, LoRI-D, LoRI-S and PeriodicLoRA (rank %d) on every task of the suite in %s/,\n"
           "merges the task adapters (cat, linear, ties, dare) for LoRA vs LoRI-S, and runs continual learning safety -> each\n"
           "other task. Writes report.md, CSV and SVG files into DIR. Runs on the cached base %s/base/model.bin (pretrained\n"
           "first if missing, as ./train_lori does).\n\n", DEFAULT_RANK, DEFAULT_DATA_DIR, DEFAULT_OUT_DIR);
    printf("  --quick     CI mode: tasks %s,%s, %d steps per run, %d test examples per task [default: full: all tasks, %d steps, %s]\n",
           cmp_quick_tasks[0], cmp_quick_tasks[1], CMP_QUICK_STEPS, CMP_QUICK_EVAL_EXAMPLES, CMP_STEPS,
           CMP_EVAL_EXAMPLES ? "some" : "every test example");
    printf("  -o DIR      output directory [default: %s/compare]\n", DEFAULT_OUT_DIR);
    printf("  -h, --help  print this help\n");
}

static int compare_main(int argc, char **argv) {
    static Compare cm;
    memset(&cm, 0, sizeof(cm));
    snprintf(cm.out, sizeof(cm.out), "%s/compare", DEFAULT_OUT_DIR);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) cm.quick = 1;
        else if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (i + 1 >= argc || !argv[i + 1][0]) { fprintf(stderr, "error: %s needs a directory\n", argv[i]); return 1; }
            if (strlen(argv[i + 1]) > 900) { fprintf(stderr, "error: output directory name too long\n"); return 1; }
            snprintf(cm.out, sizeof(cm.out), "%s", argv[++i]);
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) { usage(argv[0]); return 0; }
        else { fprintf(stderr, "error: unknown argument '%s' (see -h)\n", argv[i]); return 1; }
    }
    if (cm.quick) {
        cm.ntasks = 2;
        for (int t = 0; t < 2; t++) cm.tasks[t] = cmp_quick_tasks[t];
        cm.steps = CMP_QUICK_STEPS; cm.eval_examples = CMP_QUICK_EVAL_EXAMPLES; cm.val_batches = CMP_QUICK_VAL_BATCHES;
    } else {
        cm.ntasks = TASKS_NTASKS;
        for (int t = 0; t < TASKS_NTASKS; t++) cm.tasks[t] = tasks_names[t];
        cm.steps = CMP_STEPS; cm.eval_examples = CMP_EVAL_EXAMPLES; cm.val_batches = CMP_VAL_BATCHES;
    }
    mkdir_p(cm.out);
    char logpath[1200];
    snprintf(logpath, sizeof(logpath), "%s/log.txt", cm.out);
    fflush(stdout);
    cm.logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (cm.logfd < 0) die("cannot write %s: %s", logpath, strerror(errno));
    cm.confd = dup(1);
    cm.con = fdopen(dup(1), "w");
    if (cm.confd < 0 || !cm.con) die("cannot duplicate stdout");
    cm.t_start = now_s();
    int ncont = 0;
    for (int t = 0; t < cm.ntasks; t++) ncont += strcmp(cm.tasks[t], "safety") != 0;
    cm.nruns_total = cm.ntasks * (1 + NUM_VARIANTS) + 2 * NUM_METHODS + 2 * ncont;
    char load_start[32], machine[512];
    load_average(load_start, sizeof(load_start));
    machine_line(machine, sizeof(machine));
    cmp_say(&cm, "== ./compare%s: %d tasks, %d variants, %d steps per run -> %s/ (run output in %s)\n   %s, load average %s\n",
            cm.quick ? " --quick" : "", cm.ntasks, NUM_VARIANTS, cm.steps, cm.out, logpath, machine, load_start);
    ensure_base(&cm);
    snapshot_base(&cm);
    cm.t_start = now_s() - cm.t_pretrain;
    part_finetune(&cm);
    part_merge(&cm);
    part_continual(&cm);
    write_csvs(&cm);
    write_charts(&cm);
    write_report(&cm, load_start);
    char total[32];
    format_eta(now_s() - cm.t_start, total, sizeof(total));
    cmp_say(&cm, "== done in %s: %s/report.md (+ results.csv, merge.csv, continual.csv, *.svg)\n", total, cm.out);
    fclose(cm.con);
    close(cm.confd);
    close(cm.logfd);
    return 0;
}

#ifndef COMPARE_NO_MAIN
int main(int argc, char **argv) { return compare_main(argc, argv); }
#endif
