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

START_TEST(test_compare_quick) {
    char dir[] = "/tmp/test_compare_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *argv[] = {"compare", "--quick", "-o", dir};
    ck_assert_int_eq(compare_main(4, argv), 0);
    const char *files[] = {"report.md", "results.csv", "merge.csv", "continual.csv", "scores.svg", "merge_lora.svg",
                           "merge_lori_s.svg", "merge_mean.svg", "forgetting.svg", "log.txt", "base.bin"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) ck_assert_msg(nonempty(dir, files[i]), "%s/%s missing or empty", dir, files[i]);
    for (int t = 0; t < 2; t++) {
        char name[256];
        snprintf(name, sizeof(name), "loss_%s.svg", cmp_quick_tasks[t]);
        ck_assert_msg(nonempty(dir, name), "%s missing", name);
        for (int v = 0; v < NUM_VARIANTS; v++) {
            snprintf(name, sizeof(name), "runs/%s/%s/train.csv", cmp_quick_tasks[t], variants[v].name);
            ck_assert_msg(nonempty(dir, name), "%s missing", name);
            snprintf(name, sizeof(name), "runs/%s/%s/command.txt", cmp_quick_tasks[t], variants[v].name);
            ck_assert_msg(nonempty(dir, name), "%s missing", name);
        }
    }
    // every chart is an SVG with content; every series of the loss chart is drawn
    char path[2048];
    snprintf(path, sizeof(path), "%s/loss_arith.svg", dir);
    char *svg = slurp(path);
    ck_assert_ptr_nonnull(svg);
    ck_assert(strncmp(svg, "<svg", 4) == 0);
    int polylines = 0;
    for (char *p = svg; (p = strstr(p, "<polyline")); p++) polylines++;
    ck_assert_int_eq(polylines, NUM_VARIANTS);
    free(svg);
    // the tables: header + (base + 5 variants) per task; 2 kinds x 4 methods x 2 tasks; 2 kinds x 1 new task
    snprintf(path, sizeof(path), "%s/results.csv", dir);
    ck_assert_int_eq(count_lines(path), 1 + 2 * (1 + NUM_VARIANTS));
    snprintf(path, sizeof(path), "%s/merge.csv", dir);
    ck_assert_int_eq(count_lines(path), 1 + 2 * NUM_METHODS * 2);
    snprintf(path, sizeof(path), "%s/continual.csv", dir);
    ck_assert_int_eq(count_lines(path), 1 + 2);
    // trainable parameters: LoRI-S < LoRI-D < LoRA < full; every exact match in [0, 1]
    snprintf(path, sizeof(path), "%s/results.csv", dir);
    FILE *f = fopen(path, "r");
    char line[1024];
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    long trainable[NUM_VARIANTS] = {0};
    while (fgets(line, sizeof(line), f)) {
        char task[64], variant[64];
        long tp;
        ck_assert_int_eq(sscanf(line, "%63[^,],%63[^,],%*d,%ld", task, variant, &tp), 3);
        for (int v = 0; v < NUM_VARIANTS; v++) if (strcmp(variant, variants[v].name) == 0) trainable[v] = tp;
        // the exact_match column (11th)
        char *p = line;
        for (int k = 0; k < 10; k++) { p = strchr(p, ','); ck_assert_ptr_nonnull(p); p++; }
        double em = strtod(p, NULL);
        ck_assert_msg(em >= 0 && em <= 1, "exact match %g out of [0,1] in: %s", em, line);
    }
    fclose(f);
    ck_assert(trainable[V_LORI_S] > 0 && trainable[V_LORI_S] < trainable[V_LORI_D]);
    ck_assert(trainable[V_LORI_D] < trainable[V_LORA] && trainable[V_LORA] < trainable[V_FULL]);
    ck_assert_int_eq(trainable[V_PLORA], trainable[V_LORA]);
    // the report holds the three tables and links every chart
    snprintf(path, sizeof(path), "%s/report.md", dir);
    char *md = slurp(path);
    ck_assert_ptr_nonnull(md);
    const char *must[] = {"## 1. Fine-tuning", "## 2. Merging", "## 3. Continual", "| LoRI-S | cat |", "| LoRA | ties |",
                          "(scores.svg)", "(merge_mean.svg)", "(forgetting.svg)", "(loss_safety.svg)", "Machine:"};
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++) ck_assert_msg(strstr(md, must[i]), "report.md lacks '%s'", must[i]);
    free(md);
    // the merged adapters load, with the expected ranks (cat: the sum)
    Adapter ad;
    char err[512];
    snprintf(path, sizeof(path), "%s/merge/lori_s_cat.bin", dir);
    ck_assert_msg(adapter_load(&ad, path, 0, 0, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(ad.cfg.rank, 2 * DEFAULT_RANK);
    adapter_free(&ad);
    snprintf(path, sizeof(path), "%s/merge/lora_ties.bin", dir);
    ck_assert_msg(adapter_load(&ad, path, 0, 0, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(ad.cfg.rank, DEFAULT_RANK);
    adapter_free(&ad);
    char cmd[2100];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

// command.txt is what ran: parsing it gives back every field of the configuration
START_TEST(test_command_line_round_trip) {
    static Compare cm;
    memset(&cm, 0, sizeof(cm));
    cm.ntasks = TASKS_NTASKS;
    for (int t = 0; t < TASKS_NTASKS; t++) cm.tasks[t] = tasks_names[t];
    cm.steps = 300; cm.eval_examples = 0; cm.val_batches = 20;
    snprintf(cm.base, sizeof(cm.base), "out/base/model.bin");
    for (int v = 0; v < NUM_VARIANTS; v++) {
        TrainConfig c, back;
        ft_config(&cm, &c, v, 2, "/tmp/x/runs/code/v");
        if (v == V_LORA) snprintf(c.adapter_in, sizeof(c.adapter_in), "/tmp/x/safety adapter.bin"); // a space: quoted
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
    tcase_add_test(tc, test_jsonl_to_shards_bytes);
    tcase_add_test(tc, test_tinyshakespeare_bytes);
    suite_add_tcase(s, tc);
    TCase *tq = tcase_create("quick");     // ./compare --quick end to end
    tcase_set_timeout(tq, 900);
    tcase_add_test(tq, test_compare_quick);
    suite_add_tcase(s, tq);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(compare_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
