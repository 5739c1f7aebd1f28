/*
test_compare.c — tests of the comparison tool and the real-data scripts (libcheck):
  - `./compare --quick` end to end into a temporary directory (compare_main in-process): every
    table and chart exists and is non-empty, the CSVs have their rows and sane numbers;
  - each run's command.txt parses back (parse_args) into exactly the configuration that ran;
  - dev/data/jsonl_to_shards.py --bytes writes a shard + loss mask that data/dataloader.h loads and
    data/tasks.h's example extractor reads back, and refuses malformed input;
  - dev/data/tinyshakespeare.py --bytes: the llm.c layout (EOT before each section, val = first 32,768).
The Python tests use the byte-level tokenizer (no tiktoken, offline); they are skipped without python3.
Run from the repository root (the base model and the suite live in out/ and data/tasks/).
*/
#define TESTING
#include "train_gpt2.c"
#define COMPARE_NO_MAIN
#include "lora/compare.c"

#include <check.h>

static int nonempty(const char *dir, const char *name) {
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return file_size(path) > 0;
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) { if (c == '\n') n++; last = c; }
    if (last != '\n') n++;
    fclose(f);
    return n;
}

static char *slurp(const char *path) {
    size_t n;
    char err[256];
    char *s = read_whole_file(path, &n, err, sizeof(err));
    if (!s) return NULL;
    s = realloc(s, n + 1);
    s[n] = 0;
    return s;
}

static int have_python(void) { return system("python3 -c 'import json, struct' >/dev/null 2>&1") == 0; }

// ----------------------------------------------------------------------------

// the number of data rows of a CSV file whose first column is `first` (NULL: all rows)
static int csv_rows(const char *path, const char *first) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[2048];
    int n = 0;
    if (!fgets(line, sizeof(line), f)) { fclose(f); return 0; }
    while (fgets(line, sizeof(line), f)) if (!first || (strncmp(line, first, strlen(first)) == 0 && line[strlen(first)] == ',')) n++;
    fclose(f);
    return n;
}

// The checks every --quick report passes, whatever the tasks: files, rows, equal budgets, charts.
// full_costs_most: the base is large against the rank (C = 128, r = 16), so full FT's step costs the most FLOPs
static void check_quick_outputs(const char *dir, int ntasks, const char *const *tasks, int nseeds, int steps, int full_costs_most) {
    const char *files[] = {"report.md", "sweep.csv", "results.csv", "merge.csv", "continual.csv", "plora.csv", "scores.svg",
                           "merge.svg", "forgetting.svg", "plora.svg", "log.txt", "base.bin"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) ck_assert_msg(nonempty(dir, files[i]), "%s/%s missing or empty", dir, files[i]);
    char path[2048], name[256];
    for (int t = 0; t < ntasks; t++) {
        snprintf(name, sizeof(name), "loss_%s.svg", tasks[t]);
        ck_assert_msg(nonempty(dir, name), "%s missing", name);
        snprintf(name, sizeof(name), "sweep_%s.svg", tasks[t]);
        ck_assert_msg(nonempty(dir, name), "%s missing", name);
        snprintf(path, sizeof(path), "%s/loss_%s.svg", dir, tasks[t]);
        char *svg = slurp(path);
        ck_assert_ptr_nonnull(svg);
        ck_assert(strncmp(svg, "<svg", 4) == 0);
        int polylines = 0;
        for (char *p = svg; (p = strstr(p, "<polyline")); p++) polylines++;
        ck_assert_int_eq(polylines, NUM_VARIANTS);
        free(svg);
    }
    // the sweep: 2 rates per variant and task (the quick grid); results: base + every variant x seed per task
    snprintf(path, sizeof(path), "%s/sweep.csv", dir);
    ck_assert_int_eq(csv_rows(path, NULL), ntasks * NUM_VARIANTS * 2);
    snprintf(path, sizeof(path), "%s/results.csv", dir);
    ck_assert_int_eq(csv_rows(path, NULL), ntasks * (1 + NUM_VARIANTS * nseeds));
    // merge: 3 kinds x 6 methods x seeds x tasks; continual: 3 kinds x (tasks - 1) x seeds; plora: 2 ranks x 2 x seeds (+ full)
    snprintf(path, sizeof(path), "%s/merge.csv", dir);
    ck_assert_int_eq(csv_rows(path, NULL), NUM_KINDS * NUM_MERGES * nseeds * ntasks);
    snprintf(path, sizeof(path), "%s/continual.csv", dir);
    ck_assert_int_eq(csv_rows(path, NULL), NUM_KINDS * (ntasks - 1) * nseeds);
    snprintf(path, sizeof(path), "%s/plora.csv", dir);
    ck_assert_int_eq(csv_rows(path, NULL), 2 * 2 * nseeds + nseeds);
    // equal budgets: every run took `steps` steps (LoRI-S: D + S); trainable LoRI-S < LoRI-D < LoRA < full; scores in [0, 1]
    snprintf(path, sizeof(path), "%s/results.csv", dir);
    FILE *f = fopen(path, "r");
    char line[2048];
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    long trainable[NUM_VARIANTS] = {0};
    double flops[NUM_VARIANTS] = {0};
    while (fgets(line, sizeof(line), f)) {
        char task[64], variant[64];
        int seed, st;
        long long tokens;
        double lr, fl;
        long tp;
        if (sscanf(line, "%63[^,],%63[^,],,", task, variant) == 2 && strcmp(variant, "base") == 0) continue;
        ck_assert_int_eq(sscanf(line, "%63[^,],%63[^,],%lf,%d,%d,%lld,%lf,%ld", task, variant, &lr, &seed, &st, &tokens, &fl, &tp), 8);
        ck_assert_msg(st == steps, "%s %s seed %d: %d steps, not %d", task, variant, seed, st, steps);
        ck_assert_int_eq(tokens, (long long)steps * DEFAULT_B * DEFAULT_T);
        for (int v = 0; v < NUM_VARIANTS; v++) if (strcmp(variant, variants[v].name) == 0) { trainable[v] = tp; flops[v] = fl; }
        char *p = line;
        for (int k = 0; k < 15; k++) { p = strchr(p, ','); ck_assert_ptr_nonnull(p); p++; }
        double em = strtod(p, NULL);
        ck_assert_msg(em >= 0 && em <= 1, "exact match %g out of [0,1] in: %s", em, line);
    }
    fclose(f);
    ck_assert(trainable[V_LORI_S] > 0 && trainable[V_LORI_S] < trainable[V_LORI_D]);
    ck_assert(trainable[V_LORI_D] < trainable[V_LORA] && trainable[V_LORA] < trainable[V_FULL]);
    ck_assert_int_eq(trainable[V_PLORA], trainable[V_LORA]);
    ck_assert(flops[V_LORA] > flops[V_LORI_D] && flops[V_LORI_D] == flops[V_LORI_S] && flops[V_PLORA] == flops[V_LORA]); // LoRI: no dA
    if (full_costs_most) ck_assert(flops[V_FULL] > flops[V_LORA]);
    // the report: every section, the bar check, the claims table, every chart linked
    snprintf(path, sizeof(path), "%s/report.md", dir);
    char *md = slurp(path);
    ck_assert_ptr_nonnull(md);
    const char *must[] = {"## 0. The budget", "## 1. Learning-rate sweeps", "## 2. Fine-tuning", "## 3. Merging", "## 4. Continual",
                          "## 5. PLoRA's claim", "## 6. The claims", "| LoRI-S | cat |", "| LoRI-D | ties |", "| LoRA | dare |",
                          "LoRI weights", "Is every task learnable", "~95% fewer parameters", "less interference", "forgets less",
                          "learns more than LoRA", "roughly matches full fine-tuning", "(scores.svg)", "(merge.svg)", "(forgetting.svg)",
                          "(plora.svg)", "Machine:", "Total wall time", " ± "};
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++) ck_assert_msg(strstr(md, must[i]), "report.md lacks '%s'", must[i]);
    for (int t = 0; t < ntasks; t++) { snprintf(name, sizeof(name), "(loss_%s.svg)", tasks[t]); ck_assert_msg(strstr(md, name), "report.md lacks %s", name); }
    free(md);
    // error bars on the scores chart
    snprintf(path, sizeof(path), "%s/scores.svg", dir);
    char *svg = slurp(path);
    ck_assert_ptr_nonnull(svg);
    ck_assert(strstr(svg, "<path d=\"M"));
    free(svg);
    // the merged adapters load, with the expected ranks (cat: the sum)
    Adapter ad;
    char err[512];
    snprintf(path, sizeof(path), "%s/merge/lori_s_cat_s0.bin", dir);
    ck_assert_msg(adapter_load(&ad, path, 0, 0, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(ad.cfg.rank, ntasks * DEFAULT_RANK);
    adapter_free(&ad);
    snprintf(path, sizeof(path), "%s/merge/lora_ties_s1.bin", dir);
    ck_assert_msg(adapter_load(&ad, path, 0, 0, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(ad.cfg.rank, DEFAULT_RANK);
    adapter_free(&ad);
}

START_TEST(test_compare_quick) {
    char dir[] = "/tmp/test_compare_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *argv[] = {"compare", "--quick", "-o", dir};
    ck_assert_int_eq(compare_main(4, argv), 0);
    const char *tasks[2] = {"arith", "safety"};
    check_quick_outputs(dir, 2, tasks, 2, CMP_QUICK_STEPS, 1);
    char cmd[2100];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

// A tiny random base (L=1, C=32) with vocab V written as an llm.c checkpoint.
static void write_tiny_base(const char *path, int V) {
    GPT2 m;
    GPT2Config c;
    char desc[128], err[512];
    snprintf(desc, sizeof(desc), "L=1,C=32,H=2,V=%d,T=64", V);
    ck_assert_int_eq(parse_descriptor(desc, &c), 0);
    gpt2_init_random(&m, c, 7);
    ck_assert_msg(gpt2_write_checkpoint(&m.config, m.params_memory, m.num_parameters, path, err, sizeof(err)) == 0, "%s", err);
    gpt2_free(&m);
}

// Two prompt/answer tasks as JSONL files, through dev/data/jsonl_to_shards.py --bytes, into dir/.
static void write_jsonl_tasks(const char *dir) {
    const char *names[2] = {"echo", "swap"};
    const char *splits[3] = {"train", "val", "test"};
    const int counts[3] = {300, 30, 30};
    char path[2048], cmd[4200];
    for (int k = 0; k < 2; k++) for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof(path), "%s/src_%s_%s.jsonl", dir, names[k], splits[s]);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < counts[s]; i++) {
            int x = 100 * s + i; // disjoint prompts per split
            if (k == 0) fprintf(f, "{\"prompt\": \"say %d:\", \"answer\": \" %d\"}\n", x, x);
            else fprintf(f, "{\"prompt\": \"swap %d %d:\", \"answer\": \" %d %d\"}\n", x, x + 1, x + 1, x);
        }
        fclose(f);
        snprintf(cmd, sizeof(cmd), "python3 dev/data/jsonl_to_shards.py --bytes %s %s/tasks/%s_%s.bin >/dev/null", path, dir, names[k], splits[s]);
        ck_assert_int_eq(system(cmd), 0);
    }
}

// ./compare --quick --tasks DIR -e BASE on a folder built from JSONL files
START_TEST(test_compare_quick_tasks_folder) {
    if (!have_python()) { printf("skipped: no python3\n"); return; }
    char dir[] = "/tmp/test_compare_tasks_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_jsonl_tasks(dir);
    char base[2048], tasks[2048], out[2048];
    snprintf(base, sizeof(base), "%s/base.bin", dir);
    snprintf(tasks, sizeof(tasks), "%s/tasks", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    write_tiny_base(base, TASKS_VOCAB);
    char *argv[] = {"compare", "--quick", "--tasks", tasks, "-e", base, "-o", out, "--continual-from", "swap", "--plora-task", "echo"};
    ck_assert_int_eq(compare_main(12, argv), 0);
    const char *names[2] = {"echo", "swap"};
    check_quick_outputs(out, 2, names, 2, CMP_QUICK_STEPS, 0);
    // the flags change what runs: one variant pair, 3 steps, 1 seed, one rate each, no merge
    char out2[2100];
    snprintf(out2, sizeof(out2), "%s/out2", dir);
    char *argv2[] = {"compare", "--quick", "--tasks", tasks, "-e", base, "-o", out2, "--variants", "lora,plora", "--steps", "3",
                     "--seeds", "1", "--lrs-lora", "2e-3", "--lrs-plora", "2e-3", "--parts", "plora", "--plora-ranks", "1", "--plora-stages", "3"};
    ck_assert_int_eq(compare_main(24, argv2), 0);
    char path[2200];
    snprintf(path, sizeof(path), "%s/sweep.csv", out2);
    ck_assert_int_eq(csv_rows(path, NULL), 2 * 2);
    snprintf(path, sizeof(path), "%s/results.csv", out2);
    ck_assert_int_eq(csv_rows(path, "echo"), 1 + 2);
    snprintf(path, sizeof(path), "%s/plora.csv", out2);
    ck_assert_int_eq(csv_rows(path, NULL), 2);
    snprintf(path, sizeof(path), "%s/runs/echo/plora/lr0.002_s0/train.csv", out2);
    ck_assert_int_eq(count_lines(path), 1 + 3 + 1);
    snprintf(path, sizeof(path), "%s/merge.csv", out2);
    ck_assert_int_eq(csv_rows(path, NULL), 0);
    char cmd[2100];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

// lines of path holding needle (and not `without`, when given)
static int count_lines_with(const char *path, const char *needle, const char *without) {
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f)) n += strstr(line, needle) != NULL && !(without && strstr(line, without));
    fclose(f);
    return n;
}
static int count_matches(const char *path, const char *needle) { return count_lines_with(path, needle, NULL); }

// the numbers of two studies' CSVs equal (the timing columns aside)
static void same_numbers(const char *a, const char *b) {
    static const char *const csv[] = {"sweep", "merge", "continual", "plora", "results"};
    for (int i = 0; i < 5; i++) {
        char cmd[8192];
        // results: up to exact_match, without file_bytes (an adapter file holds its path); sweep: up to val_exact_match
        const char *cols = i == 4 ? "1-10,12-16" : "1-9";
        snprintf(cmd, sizeof(cmd), "cut -d, -f%s '%s/%s.csv' > '%s/a.cut' && cut -d, -f%s '%s/%s.csv' > '%s/b.cut' && cmp -s '%s/a.cut' '%s/b.cut'",
                 cols, a, csv[i], b, cols, b, csv[i], b, b, b);
        ck_assert_msg(system(cmd) == 0, "%s.csv differs between %s and %s", csv[i], a, b);
    }
}

// --resume: a study stopped by a signal goes on where it stopped and gives the numbers of an
// uninterrupted one; a finished study reads every unit back; a changed setting is not read back.
START_TEST(test_compare_resume) {
    if (!have_python()) { printf("skipped: no python3\n"); return; }
    char dir[] = "/tmp/test_compare_resume_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_jsonl_tasks(dir);
    char base[2048], args[4096], cmd[8192], a[2200], b[2200], log[2300];
    snprintf(base, sizeof(base), "%s/base.bin", dir);
    write_tiny_base(base, TASKS_VOCAB);
    snprintf(args, sizeof(args), "--quick --steps 60 --tasks %s/tasks -e %s --continual-from swap --plora-task echo", dir, base);
    snprintf(a, sizeof(a), "%s/whole", dir);
    snprintf(b, sizeof(b), "%s/stopped", dir);
    snprintf(cmd, sizeof(cmd), "./compare %s -o %s > %s.log 2>&1", args, a, a);
    ck_assert_int_eq(system(cmd), 0);
    const int units = 82; // 2 tasks x (base + 5 variants x 2 rates + 5 x 1 more seed) + 3 x 2 x 6 merges + 3 x 2 continual + 2 x 2 x 2 PLoRA
    snprintf(log, sizeof(log), "%s.log", a);
    ck_assert_int_eq(count_matches(log, "] "), units);
    // stopped by SIGINT after 2 s (wherever that falls; on a fast machine it may have finished: status 0)
    snprintf(cmd, sizeof(cmd), "timeout --preserve-status -s INT 2 ./compare %s -o %s > %s.log1 2>&1", args, b, b);
    int rc = system(cmd);
    ck_assert(WIFEXITED(rc));
    rc = WEXITSTATUS(rc);
    snprintf(log, sizeof(log), "%s.log1", b);
    ck_assert_msg(rc == 0 || (rc == 130 && count_matches(log, "--resume") == 1), "interrupted study: status %d", rc);
    int before = count_matches(log, "] ");
    printf("resume: stopped after %d of %d units (status %d)\n", before, units, rc);
    snprintf(cmd, sizeof(cmd), "./compare %s -o %s --resume > %s.log2 2>&1", args, b, b);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(log, sizeof(log), "%s.log2", b);
    ck_assert_int_eq(count_matches(log, "] "), units);
    ck_assert_int_eq(count_matches(log, "(resumed)"), before);
    same_numbers(a, b);
    // finished: everything reads back
    snprintf(cmd, sizeof(cmd), "./compare %s -o %s --resume > %s.log3 2>&1", args, b, b);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(log, sizeof(log), "%s.log3", b);
    ck_assert_int_eq(count_matches(log, "(resumed)"), units);
    same_numbers(a, b);
    // another LoRA grid: LoRA's runs (and what depends on them) run again, the rest reads back
    snprintf(cmd, sizeof(cmd), "./compare %s --lrs-lora 1e-3,3e-3 -o %s --resume > %s.log4 2>&1", args, b, b);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(log, sizeof(log), "%s.log4", b);
    int again = units - count_matches(log, "(resumed)");
    ck_assert_int_eq(count_lines_with(log, ": LoRA lr 0.001 seed 0", "(resumed)"), 2); // one per task, trained
    ck_assert_msg(again >= 2 * 3 && again < units, "%d of %d units ran again after changing LoRA's rates", again, units);
    // other steps (not in any folder's name): only the base model's two evaluations read back
    snprintf(cmd, sizeof(cmd), "./compare %s --steps 40 -o %s --resume > %s.log5 2>&1", args, b, b);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(log, sizeof(log), "%s.log5", b);
    ck_assert_int_eq(count_matches(log, "(resumed)"), 2);
    ck_assert_int_eq(count_lines_with(log, "the base model", "(resumed)"), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

// compare run as a program: exit status and stderr
static int run_compare_cli(const char *args, char *errbuf, size_t n) {
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "./compare %s 2>&1 >/dev/null", args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t got = fread(errbuf, 1, n - 1, p);
    errbuf[got] = 0;
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// --tasks folders that cannot be compared: a clear error naming the task or the file
START_TEST(test_compare_tasks_errors) {
    if (!have_python()) { printf("skipped: no python3\n"); return; }
    char dir[] = "/tmp/test_compare_errors_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_jsonl_tasks(dir);
    char base[2048], small[2048], args[4096], err[8192], path[2048], cmd[4200];
    snprintf(base, sizeof(base), "%s/base.bin", dir);
    snprintf(small, sizeof(small), "%s/base_v100.bin", dir);
    write_tiny_base(base, TASKS_VOCAB);
    write_tiny_base(small, 100);
    // a vocab that does not match the base: the offending shard is named
    snprintf(args, sizeof(args), "--quick --tasks %s/tasks -e %s -o %s/o1", dir, small, dir);
    ck_assert_int_eq(run_compare_cli(args, err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "echo_train.bin") && strstr(err, "vocab"), "no vocab error naming the shard: %s", err);
    // a missing split
    snprintf(path, sizeof(path), "%s/tasks/swap_val.bin", dir);
    ck_assert_int_eq(remove(path), 0);
    snprintf(args, sizeof(args), "--quick --tasks %s/tasks -e %s -o %s/o2", dir, base, dir);
    ck_assert_int_eq(run_compare_cli(args, err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "'swap'") && strstr(err, "val") && strstr(err, "swap_val.bin"), "no error naming the missing split: %s", err);
    // a split with no examples (an empty shard with its mask)
    snprintf(cmd, sizeof(cmd), "cp %s/tasks/echo_val.bin %s/tasks/swap_val.bin", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    {
        FILE *f = fopen(path, "wb");
        int32_t h[256] = {20240520, 1, 0};
        fwrite(h, sizeof(h), 1, f);
        fclose(f);
        snprintf(path, sizeof(path), "%s/tasks/swap_val.lossmask", dir);
        f = fopen(path, "wb");
        int32_t m[256] = {20240522, 1, 0};
        fwrite(m, sizeof(m), 1, f);
        fclose(f);
    }
    ck_assert_int_eq(run_compare_cli(args, err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "swap_val.bin") && strstr(err, "no examples"), "no error naming the empty split: %s", err);
    // a folder without tasks, a folder that does not exist
    snprintf(args, sizeof(args), "--quick --tasks %s -e %s -o %s/o3", "/tmp", base, dir);
    ck_assert_int_eq(run_compare_cli(args, err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "no NAME_train.bin"), "%s", err);
    snprintf(args, sizeof(args), "--quick --tasks %s/nowhere -e %s -o %s/o4", dir, base, dir);
    ck_assert_int_eq(run_compare_cli(args, err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "nowhere") && strstr(err, "cannot open"), "%s", err);
    // bad flags
    ck_assert_int_eq(run_compare_cli("--lrs-lora x", err, sizeof(err)), 1);
    ck_assert_int_eq(run_compare_cli("--variants lora,bogus", err, sizeof(err)), 1);
    ck_assert(strstr(err, "bogus"));
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

// the rate chosen is the best validation exact match; equal scores: the lower validation loss
START_TEST(test_choose_rate) {
    static Compare cm;
    memset(&cm, 0, sizeof(cm));
    cm.nlrs[V_LORA] = 4;
    const int correct[4] = {10, 40, 40, 30};
    const float loss[4] = {0.5f, 0.9f, 0.7f, 0.1f};
    for (int li = 0; li < 4; li++) {
        CmpRun *r = &cm.runs[0][V_LORA][li][0];
        r->done = 1;
        r->val = em_of(50, correct[li]);
        r->r.final_val_loss = loss[li];
    }
    ck_assert_int_eq(choose_rate(&cm, 0, V_LORA), 2);
    cm.runs[0][V_LORA][1][0].r.final_val_loss = 0.6f;
    ck_assert_int_eq(choose_rate(&cm, 0, V_LORA), 1);
    cm.runs[0][V_LORA][3][0].val.correct = 41;
    ck_assert_int_eq(choose_rate(&cm, 0, V_LORA), 3);
    // the statistics over seeds
    double x[3] = {1, 2, 6};
    Stat s = stat_of(x, 3);
    ck_assert(fabs(s.mean - 3) < 1e-12 && fabs(s.sd - sqrt(7)) < 1e-12 && s.lo == 1 && s.hi == 6 && s.n == 3);
}
END_TEST

// command.txt is what ran: parsing it gives back every field of the configuration
START_TEST(test_command_line_round_trip) {
    static Compare cm;
    memset(&cm, 0, sizeof(cm));
    cm.ntasks = TASKS_NTASKS;
    for (int t = 0; t < TASKS_NTASKS; t++) snprintf(cm.task_names[t], 64, "%s", tasks_names[t]);
    snprintf(cm.tasks_dir, sizeof(cm.tasks_dir), "data/tasks");
    cm.steps = 300; cm.eval_examples = 0; cm.val_batches = 20; cm.B = DEFAULT_B; cm.T = DEFAULT_T;
    for (int t = 0; t < CMP_MAX_TASKS; t++) for (int v = 0; v < NUM_VARIANTS; v++) cm.best[t][v] = 1;
    cm.lrs[V_LORI_D][1] = 3e-3f;
    snprintf(cm.base, sizeof(cm.base), "out/base/model.bin");
    for (int v = 0; v < NUM_VARIANTS; v++) {
        TrainConfig c, back;
        ft_config(&cm, &c, v, 2, 1e-2f, 1, 4, "/tmp/x/runs/code/v");
        if (v == V_LORA) snprintf(c.adapter_in, sizeof(c.adapter_in), "/tmp/x/safety adapter.bin"); // a space: quoted
        if (v == V_LORI_S) { ck_assert_int_eq(c.max_steps + c.lori_steps_s, 300); ck_assert(c.lori_lr_d == 3e-3f && c.lori_lr_s == 1e-2f); }
        char line[8192];
        config_cmdline(&c, line, sizeof(line));
        // split like a shell would for this simple quoting
        char *argv[256];
        int argc = 0;
        for (char *p = line; *p;) {
            while (*p == ' ') p++;
            if (!*p) break;
            if (*p == '\'') { argv[argc++] = ++p; p = strchr(p, '\''); ck_assert_ptr_nonnull(p); *p++ = 0; continue; }
            argv[argc++] = p;
            while (*p && *p != ' ') p++;
            if (*p) *p++ = 0;
        }
        ck_assert_str_eq(argv[0], "./train_gpt2");
        config_defaults(&back);
        ck_assert_int_eq(parse_args(&back, argc, argv), 0);
        memset(back.given, 0, sizeof(back.given)); // which flags were typed: a record of parsing, not a setting
        ck_assert_msg(memcmp(&c, &back, sizeof(c)) == 0, "variant %s: the command line does not give back the configuration", variants[v].name);
    }
}
END_TEST

START_TEST(test_jsonl_to_shards_bytes) {
    if (!have_python()) { fprintf(stderr, "\n*** SKIP: %s did NOT run: no python3 ***\n\n", __func__); return; }
    char dir[] = "/tmp/test_jsonl_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[2048], cmd[4200];
    snprintf(path, sizeof(path), "%s/in.jsonl", dir);
    FILE *f = fopen(path, "w");
    // answers with and without the final newline, an extra field, a blank line, non-ASCII text
    fprintf(f, "{\"prompt\": \"2+3=\", \"answer\": \"5\"}\n\n");
    fprintf(f, "{\"id\": 2, \"prompt\": \"rev(abc)=\", \"answer\": \"cba\\n\"}\n");
    fprintf(f, "{\"prompt\": \"caf\\u00e9 is => \", \"answer\": \"positive\"}\n");
    fclose(f);
    snprintf(cmd, sizeof(cmd), "python3 dev/data/jsonl_to_shards.py --bytes %s/in.jsonl %s/out/x.bin >/dev/null", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    Shard sh;
    char err[512];
    snprintf(path, sizeof(path), "%s/out/x.bin", dir);
    ck_assert_msg(shard_load(&sh, path, TASKS_VOCAB, err, sizeof(err)) == 0, "%s", err);
    ck_assert_ptr_nonnull(sh.mask);
    long n = tasks_extract_examples(sh.tokens, sh.mask, sh.ntok, NULL, 0);
    ck_assert_int_eq(n, 3);
    tasks_example ex[3];
    tasks_extract_examples(sh.tokens, sh.mask, sh.ntok, ex, 3);
    const char *prompts[3] = {"2+3=", "rev(abc)=", "caf\xc3\xa9 is => "}, *answers[3] = {"5\n", "cba\n", "positive\n"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ex[i].prompt_len, (int)strlen(prompts[i]));
        ck_assert_int_eq(ex[i].answer_len, (int)strlen(answers[i]));
        for (int k = 0; k < ex[i].prompt_len; k++) ck_assert_int_eq(sh.tokens[ex[i].prompt + k], (unsigned char)prompts[i][k]);
        for (int k = 0; k < ex[i].answer_len; k++) ck_assert_int_eq(sh.tokens[ex[i].answer + k], (unsigned char)answers[i][k]);
    }
    shard_free(&sh);
    // the tokenizer beside it is the suite's byte-level one
    Tokenizer tok;
    snprintf(path, sizeof(path), "%s/out/tokenizer.bin", dir);
    ck_assert_msg(tokenizer_init(&tok, path, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(tok.vocab_size, TASKS_VOCAB);
    ck_assert_int_eq(tok.eot, TASKS_EOT);
    tokenizer_free(&tok);
    // the trainer takes it: a few masked steps
    TrainConfig c;
    config_defaults(&c);
    strcpy(c.model, "L=1,C=32,H=2,V=257,T=32");
    snprintf(c.train_pattern, sizeof(c.train_pattern), "%s/out/x.bin", dir);
    c.B = 1; c.T = 32; c.max_steps = 2; c.sample_every = 0; c.val_every = 0; c.shuffle = 0;
    TrainResult r = {0};
    ck_assert_int_eq(run_training(&c, 0, NULL, &r), 0);
    ck_assert_int_eq(r.steps, 2);
    ck_assert(isfinite(r.final_train_loss) && r.final_train_loss > 0);
    // malformed inputs: non-zero exit, nothing written
    const char *bad[] = {"{\"prompt\": \"a\"}", "{\"prompt\": \"a\", \"answer\": 3}", "{\"prompt\": \"a\", \"answer\": \"\"}",
                         "{\"prompt\": \"a\", \"answer\": \"b\"", "[\"a\", \"b\"]", "{\"prompt\": \"a\", \"prompt\": \"b\", \"answer\": \"c\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "%s/bad.jsonl", dir);
        f = fopen(path, "w");
        fprintf(f, "{\"prompt\": \"ok\", \"answer\": \"ok\"}\n%s\n", bad[i]);
        fclose(f);
        snprintf(cmd, sizeof(cmd), "python3 dev/data/jsonl_to_shards.py --bytes %s/bad.jsonl %s/bad/y.bin 2>/dev/null >/dev/null", dir, dir);
        int rc = system(cmd);
        ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "bad input %zu accepted: %s", i, bad[i]);
        snprintf(path, sizeof(path), "%s/bad/y.bin", dir);
        ck_assert_int_eq(file_size(path), 0);
    }
    snprintf(cmd, sizeof(cmd), "python3 dev/data/jsonl_to_shards.py --bytes %s/in.jsonl %s/out/x.txt 2>/dev/null >/dev/null", dir, dir);
    ck_assert_int_ne(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_tinyshakespeare_bytes) {
    if (!have_python()) { fprintf(stderr, "\n*** SKIP: %s did NOT run: no python3 ***\n\n", __func__); return; }
    char dir[] = "/tmp/test_tinyshakespeare_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    // a play-like text: sections separated by blank lines, ~60k bytes
    char path[2048], cmd[4200];
    snprintf(path, sizeof(path), "%s/input.txt", dir);
    FILE *f = fopen(path, "w");
    const char *words[] = {"thou", "art", "my", "lord", "the", "king", "hath", "said", "sweet", "night"};
    uint64_t rng = 7;
    int nsec = 1500;
    size_t expect = 0;
    for (int s = 0; s < nsec; s++) {
        char sec[256];
        int len = snprintf(sec, sizeof(sec), "SPEAKER %d:\n", s % 7);
        for (int w = 0; w < 6; w++) len += snprintf(sec + len, sizeof(sec) - len, "%s%s", w ? " " : "", words[splitmix64(&rng) % 10]);
        fputs(sec, f);
        if (s + 1 < nsec) fputs("\n\n", f);
        expect += 1 + len + (s + 1 < nsec ? 2 : 0); // EOT + the section's bytes (+ the kept "\n\n")
    }
    fclose(f);
    snprintf(cmd, sizeof(cmd), "python3 dev/data/tinyshakespeare.py --bytes %s/input.txt -o %s/out >/dev/null", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    Shard val, train;
    char err[512];
    snprintf(path, sizeof(path), "%s/out/tiny_shakespeare_val.bin", dir);
    ck_assert_msg(shard_load(&val, path, TASKS_VOCAB, err, sizeof(err)) == 0, "%s", err);
    snprintf(path, sizeof(path), "%s/out/tiny_shakespeare_train.bin", dir);
    ck_assert_msg(shard_load(&train, path, TASKS_VOCAB, err, sizeof(err)) == 0, "%s", err);
    ck_assert_ptr_null(val.mask);
    ck_assert_int_eq(val.ntok, 32768);
    ck_assert_int_eq(val.ntok + train.ntok, expect);
    ck_assert_int_eq(val.tokens[0], TASKS_EOT);
    ck_assert_int_eq(val.tokens[1], 'S');
    // EOTs: one per section, each right after "\n\n" (or at the start)
    int neot = 0;
    for (size_t i = 0; i < val.ntok + train.ntok; i++) {
        uint16_t t = i < val.ntok ? val.tokens[i] : train.tokens[i - val.ntok];
        if (t != TASKS_EOT) continue;
        neot++;
        if (i > 0) {
            uint16_t a = i - 1 < val.ntok ? val.tokens[i - 1] : train.tokens[i - 1 - val.ntok];
            uint16_t b = i - 2 < val.ntok ? val.tokens[i - 2] : train.tokens[i - 2 - val.ntok];
            ck_assert(a == '\n' && b == '\n');
        }
    }
    ck_assert_int_eq(neot, nsec);
    shard_free(&val);
    shard_free(&train);
    // too short for the val split, missing file, no argument: errors
    snprintf(path, sizeof(path), "%s/short.txt", dir);
    f = fopen(path, "w");
    fputs("To be, or not to be", f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "python3 dev/data/tinyshakespeare.py --bytes %s/short.txt -o %s/o2 2>/dev/null >/dev/null", dir, dir);
    ck_assert_int_ne(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "python3 dev/data/tinyshakespeare.py --bytes %s/missing.txt -o %s/o3 2>/dev/null >/dev/null", dir, dir);
    ck_assert_int_ne(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "python3 dev/data/tinyshakespeare.py --bytes -o %s/o4 2>/dev/null >/dev/null", dir);
    ck_assert_int_ne(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *compare_suite(void) {
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("scripts");   // CK_RUN_CASE=scripts ./test_compare: these alone
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_command_line_round_trip);
    tcase_add_test(tc, test_choose_rate);
    tcase_add_test(tc, test_compare_tasks_errors);
    tcase_add_test(tc, test_jsonl_to_shards_bytes);
    tcase_add_test(tc, test_tinyshakespeare_bytes);
    suite_add_tcase(s, tc);
    TCase *tq = tcase_create("quick");     // ./compare --quick end to end
    tcase_set_timeout(tq, 2700); // a fresh clone pretrains the 4000-step base first
    tcase_add_test(tq, test_compare_quick);
    suite_add_tcase(s, tq);
    TCase *tf = tcase_create("folder");    // ./compare --quick --tasks DIR (from JSONL) -e BASE, on a tiny base
    tcase_set_timeout(tf, 1500);
    tcase_add_test(tf, test_compare_quick_tasks_folder);
    tcase_add_test(tf, test_compare_resume);
    suite_add_tcase(s, tf);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(compare_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
