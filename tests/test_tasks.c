/*
Tests for data/tasks.h: the generated files (formats, determinism, split disjointness, masks,
the answers' correctness), the example extractor and the exact-match scorer.
The suite is generated once in main, into temporary directories, before the tests run.
*/
#include <check.h>
#include <dirent.h>
#include "data/tasks.h"

static char dir_a[64], dir_b[64], dir_c[64];  // seed 1337, seed 1337 again, seed 7
static int rc_a = -1, rc_b = -1, rc_c = -1;

// ----------------------------------------------------------------------------
// helpers

// Check's ck_assert records every passing check through the runner (a syscall each in fork mode);
// these report only failures, for the loops over every token and example.
#define REQUIRE(c) do { if (!(c)) ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c); } while (0)
#define REQUIRE_MSG(c, ...) do { if (!(c)) ck_abort_msg(__VA_ARGS__); } while (0)

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    *size = (size_t)n;
    return buf;
}
static int32_t get32(const uint8_t *p) { return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24); }

// A shard and its mask (NULL if absent), validated on the way in.
typedef struct { uint16_t *tok; uint8_t *mask; size_t n; } shard;

static shard load_shard(const char *dir, const char *stem, int want_mask) {
    char path[512];
    size_t size;
    shard s = {0};
    snprintf(path, sizeof path, "%s/%s.bin", dir, stem);
    uint8_t *b = read_all(path, &size);
    REQUIRE_MSG(b != NULL, "%s missing", path);
    REQUIRE((size) >= (1024));
    REQUIRE((get32(b)) == (20240520));
    REQUIRE((get32(b + 4)) == (1));
    s.n = (size_t)get32(b + 8);
    REQUIRE((size) == (1024 + 2 * s.n));
    for (int i = 3; i < 256; i++) REQUIRE((get32(b + 4 * i)) == (0));
    s.tok = malloc(2 * s.n);
    for (size_t i = 0; i < s.n; i++) {
        s.tok[i] = (uint16_t)(b[1024 + 2 * i] | b[1024 + 2 * i + 1] << 8);
        REQUIRE((s.tok[i]) < (TASKS_VOCAB));
    }
    free(b);
    snprintf(path, sizeof path, "%s/%s.lossmask", dir, stem);
    b = read_all(path, &size);
    if (!want_mask) { REQUIRE_MSG(b == NULL, "%s should not exist", path); return s; }
    REQUIRE_MSG(b != NULL, "%s missing", path);
    REQUIRE((get32(b)) == (20240522));
    REQUIRE((get32(b + 4)) == (1));
    REQUIRE(((size_t)get32(b + 8)) == (s.n));
    REQUIRE((size) == (1024 + s.n));
    s.mask = malloc(s.n);
    memcpy(s.mask, b + 1024, s.n);
    for (size_t i = 0; i < s.n; i++) REQUIRE((s.mask[i]) <= (1));
    free(b);
    return s;
}
static void free_shard(shard *s) { free(s->tok); free(s->mask); }

static void span_str(const uint16_t *t, size_t start, int len, char *out) {
    for (int i = 0; i < len; i++) out[i] = (char)t[start + (size_t)i];
    out[len] = 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
    rmdir(dir);
}

// Is word w (delimited by spaces) in the list?
static int in_list(const char *w, size_t len, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++) if (strlen(list[i]) == len && strncmp(list[i], w, len) == 0) return 1;
    return 0;
}
#define IN_LIST(w, len, list) in_list((w), (len), (list), sizeof(list) / sizeof((list)[0]))

// The reference answer for a prompt, computed independently of the generator's code path.
static void expected_answer(int task, const char *p, char *out) {
    size_t lp = strlen(p);
    out[0] = 0;
    if (task == TASKS_ARITH) {
        int x, y;
        char op;
        REQUIRE((sscanf(p, "%d%c%d=", &x, &op, &y)) == (3));
        REQUIRE(op == '+' || op == '-');
        REQUIRE(lp == 10 && p[4] == op && p[lp - 1] == '=');  // four zero-padded digits, op, four digits, '='
        // carry-free: x + 1111 (digits of x in 0..8), x - 1111 (digits in 1..9), 9999 - y
        for (int i = 0; i < 4; i++) {
            int dx = p[i] - '0';
            if (op == '+') REQUIRE(y == 1111 && dx <= 8);
            else REQUIRE((y == 1111 && dx >= 1) || x == 9999);
        }
        sprintf(out, "%04d\n", op == '+' ? x + y : x - y);
        REQUIRE((strlen(out)) == (5));
    } else if (task == TASKS_CODE) {
        int up = strncmp(p, "upper(", 6) == 0;
        REQUIRE(up || strncmp(p, "rev(", 4) == 0);
        const char *s = p + (up ? 6 : 4);
        int n = (int)(lp - (size_t)(s - p)) - 2;
        REQUIRE(n >= 3 && n <= 5 && strcmp(s + n, ")=") == 0);
        for (int i = 0; i < n; i++) {
            REQUIRE(s[i] >= 'a' && s[i] <= 'z');
            out[i] = up ? (char)(s[i] - 32) : s[n - 1 - i];
        }
        out[n] = '\n';
        out[n + 1] = 0;
    } else if (task == TASKS_CLASSIFY) {
        REQUIRE(lp > 3 && strcmp(p + lp - 3, " =>") == 0);
        int npos = 0, nneg = 0;
        for (const char *w = p; w < p + lp - 3;) {
            const char *e = strchr(w, ' ');
            size_t len = (size_t)(e - w);
            npos += IN_LIST(w, len, tasks_w_pos);
            nneg += IN_LIST(w, len, tasks_w_neg);
            w = e + 1;
        }
        REQUIRE_MSG(npos + nneg == 1, "%s: %d sentiment words", p, npos + nneg);
        strcpy(out, npos ? " positive\n" : " negative\n");
    } else {
        REQUIRE(lp > 3 && strcmp(p + lp - 3, " A:") == 0);
        int nharm = 0, nben = 0;
        const char *act = NULL;
        for (size_t i = 0; i < sizeof tasks_w_harmful / sizeof *tasks_w_harmful; i++) if (strstr(p, tasks_w_harmful[i])) nharm++;
        for (size_t i = 0; i < sizeof tasks_w_benign / sizeof *tasks_w_benign; i++) if (strstr(p, tasks_w_benign[i])) { nben++; act = tasks_w_benign[i]; }
        REQUIRE_MSG(nharm + nben == 1, "%s: %d actions", p, nharm + nben);
        if (nharm) strcpy(out, " Sorry, I can't help.\n");
        else sprintf(out, " Sure, let's %s.\n", act);
    }
}

// ----------------------------------------------------------------------------
// the generated files

START_TEST(test_generate_ok) {
    ck_assert_int_eq(rc_a, 0);
    ck_assert_int_eq(rc_b, 0);
    ck_assert_int_eq(rc_c, 0);
    ck_assert_int_eq(tasks_present(dir_a), 1);
    ck_assert_int_eq(tasks_present("/tmp/no_such_tasks_dir_here"), 0);
    // exactly the documented files: tokenizer, 2 pretrain shards, 4 tasks x 3 splits x (bin + mask);
    // no temporary file left behind
    ck_assert_int_eq(count_files(dir_a), 1 + 1 + 2 + TASKS_NTASKS * 3 * 2); // SUITE, tokenizer, pretraining, tasks
    char path[512];
    ck_assert_int_eq(tasks_shard_path(path, sizeof path, "d", "arith", "test"), 0);
    ck_assert_str_eq(path, "d/arith_test.bin");
    ck_assert_int_eq(tasks_shard_path(path, 8, "d", "arith", "test"), -1);
    ck_assert_int_eq(tasks_index("safety"), TASKS_SAFETY);
    ck_assert_int_eq(tasks_index("nope"), -1);
}
END_TEST

START_TEST(test_generate_error) {
    // a regular file where a directory should be: a clean failure, no crash
    char file[64] = "/tmp/test_tasks_file_XXXXXX", sub[96];
    int fd = mkstemp(file);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(sub, sizeof sub, "%s/sub", file);
    if (!freopen("/dev/null", "w", stderr)) ck_abort_msg("freopen");  // the expected error message
    ck_assert_int_eq(tasks_generate(sub, 1, 0), -1);
    ck_assert_int_eq(tasks_present(sub), 0);
    remove(file);
}
END_TEST

START_TEST(test_same_seed_identical) {
    DIR *d = opendir(dir_a);
    ck_assert_ptr_nonnull(d);
    int nfiles = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char pa[512], pb[512];
        size_t na, nb;
        snprintf(pa, sizeof pa, "%s/%s", dir_a, e->d_name);
        snprintf(pb, sizeof pb, "%s/%s", dir_b, e->d_name);
        uint8_t *a = read_all(pa, &na), *b = read_all(pb, &nb);
        ck_assert_msg(a && b, "%s missing", e->d_name);
        ck_assert_msg(na == nb && memcmp(a, b, na) == 0, "%s differs between two runs with the same seed", e->d_name);
        free(a); free(b);
        nfiles++;
    }
    closedir(d);
    ck_assert_int_eq(nfiles, 1 + 1 + 2 + TASKS_NTASKS * 3 * 2); // SUITE, tokenizer, pretraining, tasks
}
END_TEST

START_TEST(test_other_seed_differs) {
    const char *stems[] = {"pretrain_train.bin", "classify_train.bin", "arith_train.bin", "code_train.bin",
                           "safety_train.bin", "safety_test.bin", "tokenizer.bin"};
    for (int i = 0; i < 7; i++) {
        char pa[512], pc[512];
        size_t na, nc;
        snprintf(pa, sizeof pa, "%s/%s", dir_a, stems[i]);
        snprintf(pc, sizeof pc, "%s/%s", dir_c, stems[i]);
        uint8_t *a = read_all(pa, &na), *c = read_all(pc, &nc);
        ck_assert(a && c);
        int same = na == nc && memcmp(a, c, na) == 0;
        if (i == 6) ck_assert_msg(same, "the tokenizer does not depend on the seed");
        else ck_assert_msg(!same, "%s is the same under seeds 1337 and 7", stems[i]);
        free(a); free(c);
    }
}
END_TEST

START_TEST(test_tokenizer_file) {
    char path[512];
    size_t size;
    snprintf(path, sizeof path, "%s/tokenizer.bin", dir_a);
    uint8_t *b = read_all(path, &size);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(size, 1024 + 256 * 2 + 1 + 13);
    ck_assert_int_eq(get32(b), 20240328);
    ck_assert_int_eq(get32(b + 4), 2);
    ck_assert_int_eq(get32(b + 8), 257);
    ck_assert_int_eq(get32(b + 12), 256);
    for (int i = 0; i < 256; i++) {
        ck_assert_uint_eq(b[1024 + 2 * i], 1);
        ck_assert_uint_eq(b[1024 + 2 * i + 1], (unsigned)i);
    }
    ck_assert_uint_eq(b[1024 + 512], 13);
    ck_assert(memcmp(b + 1024 + 513, "<|endoftext|>", 13) == 0);
    free(b);
}
END_TEST

START_TEST(test_pretrain) {
    const size_t want[2] = {TASKS_PRETRAIN_TRAIN_TOKENS, TASKS_PRETRAIN_VAL_TOKENS};
    for (int s = 0; s < 2; s++) {
        char stem[64];
        snprintf(stem, sizeof stem, "pretrain_%s", tasks_splits[s]);
        shard sh = load_shard(dir_a, stem, 0);
        REQUIRE((sh.n) >= (want[s]));
        REQUIRE((sh.n) < (want[s] + 2048));
        REQUIRE((sh.tok[0]) == (TASKS_EOT));
        // plain text without the tasks' formats: no '=', '(', '+', '>' of the prompts, no newlines
        size_t ndocs = 0;
        for (size_t i = 0; i < sh.n; i++) {
            int t = sh.tok[i];
            if (t == TASKS_EOT) { ndocs++; continue; }
            REQUIRE_MSG(t >= 32 && t < 127 && t != '=' && t != '(' && t != '>' && t != '+', "pretrain token %d at %zu", t, i);
        }
        REQUIRE((ndocs) > (sh.n / 1000));
        free_shard(&sh);
    }
}
END_TEST

// Masks are 1 exactly on the answers, every answer is right, every size and limit holds.
START_TEST(test_task_shards) {
    const long want[3] = {TASKS_NTRAIN, TASKS_NVAL, TASKS_NTEST};
    int task = _i;
    for (int s = 0; s < 3; s++) {
        char stem[64];
        snprintf(stem, sizeof stem, "%s_%s", tasks_names[task], tasks_splits[s]);
        shard sh = load_shard(dir_a, stem, 1);
        long n = tasks_extract_examples(sh.tok, sh.mask, sh.n, NULL, 0);
        REQUIRE((n) == (want[s]));
        tasks_example *ex = malloc(sizeof(tasks_example) * (size_t)n);
        REQUIRE((tasks_extract_examples(sh.tok, sh.mask, sh.n, ex, n)) == (n));
        size_t covered = 0, doc_tokens = 0;
        for (long i = 0; i < n; i++) {
            tasks_example e = ex[i];
            REQUIRE((e.prompt) == (covered + 1));  // documents are back to back
            REQUIRE((sh.tok[e.prompt - 1]) == (TASKS_EOT));
            REQUIRE((sh.mask[e.prompt - 1]) == (0));
            REQUIRE((e.answer) == (e.prompt + (size_t)e.prompt_len));
            REQUIRE((e.prompt_len) <= (TASKS_MAX_PROMPT));
            REQUIRE((e.answer_len) <= (TASKS_MAX_ANSWER));
            doc_tokens += 1 + e.prompt_len + e.answer_len;
            for (int j = 0; j < e.prompt_len; j++) REQUIRE((sh.mask[e.prompt + (size_t)j]) == (0));
            for (int j = 0; j < e.answer_len; j++) REQUIRE((sh.mask[e.answer + (size_t)j]) == (1));
            char p[TASKS_MAX_PROMPT + 1], a[TASKS_MAX_ANSWER + 1], want_a[TASKS_MAX_ANSWER + 8];
            span_str(sh.tok, e.prompt, e.prompt_len, p);
            span_str(sh.tok, e.answer, e.answer_len, a);
            REQUIRE((strchr(p, '\n')) == NULL);
            REQUIRE((strchr(a, '\n')) == (a + e.answer_len - 1));
            expected_answer(task, p, want_a);
            REQUIRE_MSG(strcmp(a, want_a) == 0, "%s: prompt '%s' has answer '%s'", stem, p, a);
            REQUIRE((tasks_split_of(task, p)) == (s));
            // the scorer accepts the reference answer itself, with or without trailing junk
            int gen[TASKS_MAX_ANSWER + 2], ans[TASKS_MAX_ANSWER];
            for (int j = 0; j < e.answer_len; j++) gen[j] = ans[j] = sh.tok[e.answer + (size_t)j];
            gen[e.answer_len] = TASKS_EOT;
            REQUIRE((tasks_exact_match(gen, e.answer_len + 1, ans, e.answer_len)) == (1));
            covered = e.answer + (size_t)e.answer_len;
        }
        REQUIRE((covered) == (sh.n));
        REQUIRE((doc_tokens) == (sh.n));
        REQUIRE_MSG(doc_tokens < 60 * (size_t)n, "%s: mean example length %.1f tokens", stem, (double)doc_tokens / (double)n);
        free(ex);
        free_shard(&sh);
    }
}
END_TEST

// No prompt is in two splits of a task; val and test prompts are distinct.
// Each prompt is stored as "prompt\x01S" (S the split digit): '\x01' sorts before every printable
// byte, so after sorting, the entries of one prompt are adjacent.
START_TEST(test_splits_disjoint) {
    int task = _i;
    char **all = NULL;
    size_t nall = 0;
    for (int s = 0; s < 3; s++) {
        char stem[64];
        snprintf(stem, sizeof stem, "%s_%s", tasks_names[task], tasks_splits[s]);
        shard sh = load_shard(dir_a, stem, 1);
        long n = tasks_extract_examples(sh.tok, sh.mask, sh.n, NULL, 0);
        tasks_example *ex = malloc(sizeof(tasks_example) * (size_t)n);
        tasks_extract_examples(sh.tok, sh.mask, sh.n, ex, n);
        all = realloc(all, sizeof(char *) * (nall + (size_t)n));
        for (long i = 0; i < n; i++) {
            int l = ex[i].prompt_len;
            char *p = malloc((size_t)l + 3);
            span_str(sh.tok, ex[i].prompt, l, p);
            p[l] = '\x01';
            p[l + 1] = (char)('0' + s);
            p[l + 2] = 0;
            all[nall++] = p;
        }
        free(ex);
        free_shard(&sh);
    }
    qsort(all, nall, sizeof(char *), cmp_str);
    size_t distinct_eval = 0;
    for (size_t i = 0; i < nall; i++) {
        size_t l = strlen(all[i]);
        char split = all[i][l - 1];
        if (split != '0') distinct_eval++;
        if (i > 0 && strlen(all[i - 1]) == l && strncmp(all[i], all[i - 1], l - 1) == 0) {
            // the same prompt twice: allowed only within train
            REQUIRE_MSG(split == '0' && all[i - 1][l - 1] == '0', "%s: prompt '%.*s' in splits %c and %c",
                          tasks_names[task], (int)l - 2, all[i], all[i - 1][l - 1], split);
        }
    }
    REQUIRE((distinct_eval) == (TASKS_NVAL + TASKS_NTEST));
    for (size_t i = 0; i < nall; i++) free(all[i]);
    free(all);
}
END_TEST

START_TEST(test_labels_balanced) {
    // classify and safety: neither answer class dominates the test split
    for (int task = TASKS_CLASSIFY; task <= TASKS_SAFETY; task += TASKS_SAFETY - TASKS_CLASSIFY) {
        char stem[64];
        snprintf(stem, sizeof stem, "%s_test", tasks_names[task]);
        shard sh = load_shard(dir_a, stem, 1);
        tasks_example ex[TASKS_NTEST];
        ck_assert_int_eq(tasks_extract_examples(sh.tok, sh.mask, sh.n, ex, TASKS_NTEST), TASKS_NTEST);
        int first = 0;
        for (int i = 0; i < TASKS_NTEST; i++) {
            int c = sh.tok[ex[i].answer + 1];  // ' positive' / ' negative', ' Sure' / ' Sorry'
            first += task == TASKS_CLASSIFY ? c == 'p' : sh.tok[ex[i].answer + 2] == 'o';
        }
        ck_assert_msg(first > TASKS_NTEST * 2 / 5 && first < TASKS_NTEST * 3 / 5, "%s: %d of %d", stem, first, TASKS_NTEST);
        free_shard(&sh);
    }
}
END_TEST

// ----------------------------------------------------------------------------
// extractor and scorer on hand-made cases

static size_t put(uint16_t *t, uint8_t *m, size_t at, const char *s, int mask) {
    for (; *s; s++) { t[at] = (uint8_t)*s; m[at] = (uint8_t)mask; at++; }
    return at;
}

START_TEST(test_extract_handmade) {
    uint16_t t[64];
    uint8_t m[64];
    size_t n = 0;
    t[n] = TASKS_EOT; m[n++] = 0;
    n = put(t, m, n, "1+2=", 0);
    n = put(t, m, n, "3\n", 1);
    t[n] = TASKS_EOT; m[n++] = 0;
    n = put(t, m, n, "rev(ab)=", 0);
    n = put(t, m, n, "ba\n", 1);
    tasks_example ex[4];
    ck_assert_int_eq(tasks_extract_examples(t, m, n, ex, 4), 2);
    ck_assert_uint_eq(ex[0].prompt, 1);
    ck_assert_int_eq(ex[0].prompt_len, 4);
    ck_assert_uint_eq(ex[0].answer, 5);
    ck_assert_int_eq(ex[0].answer_len, 2);
    ck_assert_uint_eq(ex[1].prompt, 8);
    ck_assert_int_eq(ex[1].prompt_len, 8);
    ck_assert_uint_eq(ex[1].answer, 16);
    ck_assert_int_eq(ex[1].answer_len, 3);
    // counting only, and a short output array
    ck_assert_int_eq(tasks_extract_examples(t, m, n, NULL, 0), 2);
    ck_assert_int_eq(tasks_extract_examples(t, m, n, ex, 1), 2);
    ck_assert_int_eq(tasks_extract_examples(t, m, 0, ex, 4), 0);

    // malformed: each one alone
    uint16_t t2[64];
    uint8_t m2[64];
    memcpy(t2, t, sizeof t); memcpy(m2, m, sizeof m);
    m2[0] = 1;                                          // mask on EOT
    ck_assert_int_eq(tasks_extract_examples(t2, m2, n, ex, 4), -1);
    memcpy(m2, m, sizeof m);
    ck_assert_int_eq(tasks_extract_examples(t + 1, m + 1, n - 1, ex, 4), -1);  // no leading EOT
    ck_assert_int_eq(tasks_extract_examples(t, m, n - 1, ex, 4), -1);          // answer without '\n'
    m2[6] = 0;                                          // '\n' not masked
    ck_assert_int_eq(tasks_extract_examples(t2, m2, n, ex, 4), -1);
    memcpy(m2, m, sizeof m);
    m2[3] = 1;                                          // mask 1 inside the prompt
    ck_assert_int_eq(tasks_extract_examples(t2, m2, n, ex, 4), -1);
    memcpy(m2, m, sizeof m);
    m2[1] = 1; m2[2] = 1; m2[3] = 1; m2[4] = 1;         // empty prompt
    ck_assert_int_eq(tasks_extract_examples(t2, m2, n, ex, 4), -1);
    memcpy(m2, m, sizeof m);
    t2[2] = '\n';                                       // newline in the prompt: fine, the mask separates
    ck_assert_int_eq(tasks_extract_examples(t2, m2, n, ex, 4), 2);
    memcpy(t2, t, sizeof t);
    t2[5] = '\n';                                       // two newlines in the answer: "\n\n"
    ck_assert_int_eq(tasks_extract_examples(t2, m2, n, ex, 4), -1);
    memcpy(t2, t, sizeof t);
    t2[n] = 'x'; m2[n] = 0;                             // a token after the answer, before any EOT
    ck_assert_int_eq(tasks_extract_examples(t2, m2, n + 1, ex, 4), -1);
    t2[n] = TASKS_EOT; m2[n] = 0;                       // a trailing EOT: an empty, malformed document
    ck_assert_int_eq(tasks_extract_examples(t2, m2, n + 1, ex, 4), -1);
}
END_TEST

START_TEST(test_exact_match) {
    const int ans[] = {'4', '2', '\n'};
    const int correct[] = {'4', '2', '\n'};
    const int correct_then_junk[] = {'4', '2', '\n', '7', TASKS_EOT};
    const int wrong[] = {'4', '3', '\n'};
    const int truncated[] = {'4', '2'};
    const int truncated_long[] = {'4', '2', '2', '2', '2', '2'};
    const int extra[] = {'4', '2', '0', '\n'};
    const int missing[] = {'4', '\n'};
    const int eot_stop[] = {'4', '2', TASKS_EOT};
    const int eot_then_nl[] = {'4', '2', TASKS_EOT, '\n'};
    const int empty_line[] = {'\n'};
    ck_assert_int_eq(tasks_exact_match(correct, 3, ans, 3), 1);
    ck_assert_int_eq(tasks_exact_match(correct_then_junk, 5, ans, 3), 1);
    ck_assert_int_eq(tasks_exact_match(wrong, 3, ans, 3), 0);
    ck_assert_int_eq(tasks_exact_match(truncated, 2, ans, 3), 0);
    ck_assert_int_eq(tasks_exact_match(truncated_long, 6, ans, 3), 0);
    ck_assert_int_eq(tasks_exact_match(extra, 4, ans, 3), 0);
    ck_assert_int_eq(tasks_exact_match(missing, 2, ans, 3), 0);
    ck_assert_int_eq(tasks_exact_match(eot_stop, 3, ans, 3), 0);
    ck_assert_int_eq(tasks_exact_match(eot_then_nl, 4, ans, 3), 0);
    ck_assert_int_eq(tasks_exact_match(empty_line, 1, ans, 3), 0);
    ck_assert_int_eq(tasks_exact_match(correct, 0, ans, 3), 0);     // nothing generated
    ck_assert_int_eq(tasks_exact_match(correct, 3, correct, 2), 0); // reference without '\n'
    ck_assert_int_eq(tasks_exact_match(correct, 3, ans, 0), 0);
    ck_assert_int_eq(tasks_is_stop('\n'), 1);
    ck_assert_int_eq(tasks_is_stop(TASKS_EOT), 1);
    ck_assert_int_eq(tasks_is_stop('a'), 0);
}
END_TEST

// A GPT-2-BPE-like vocabulary by hand: ids 0..255 are bytes (as GPT-2's first 256 tokens cover
// every byte), then multi-byte tokens, among them newlines merged with other bytes; EOT is last.
enum { BPE_POSITIVE = 256, BPE_POS, BPE_ITIVE, BPE_NLNL, BPE_SPNL, BPE_NEG, BPE_12, BPE_EOT, BPE_V };
static const char *bpe_text[BPE_V];
static tasks_vocab bpe_vocab(void) {
    static char bytes[256][2];
    for (int i = 0; i < 256; i++) { bytes[i][0] = (char)i; bytes[i][1] = 0; bpe_text[i] = bytes[i]; }
    bpe_text[BPE_POSITIVE] = " positive"; bpe_text[BPE_POS] = " pos"; bpe_text[BPE_ITIVE] = "itive";
    bpe_text[BPE_NLNL] = "\n\n"; bpe_text[BPE_SPNL] = " \n"; bpe_text[BPE_NEG] = " negative";
    bpe_text[BPE_12] = "12"; bpe_text[BPE_EOT] = "<|endoftext|>";
    tasks_vocab v = {BPE_EOT, BPE_V, bpe_text};
    return v;
}

START_TEST(test_bpe_extract_and_match) {
    tasks_vocab v = bpe_vocab();
    // documents: EOT "good =>" | " positive" "\n"   and   EOT "x\ny =>" | " negative" "\n\n"
    uint16_t t[64]; uint8_t m[64]; size_t n = 0;
    const char *p1 = "good =>", *p2 = "x\ny =>";
    t[n] = BPE_EOT; m[n++] = 0;
    for (const char *c = p1; *c; c++) { t[n] = (uint8_t)*c; m[n++] = 0; }
    t[n] = BPE_POSITIVE; m[n++] = 1; t[n] = '\n'; m[n++] = 1;
    t[n] = BPE_EOT; m[n++] = 0;
    for (const char *c = p2; *c; c++) { t[n] = (uint8_t)*c; m[n++] = 0; }
    t[n] = BPE_NEG; m[n++] = 1; t[n] = BPE_NLNL; m[n++] = 1;
    tasks_example ex[4];
    ck_assert_int_eq(tasks_extract_examples_v(&v, t, m, n, ex, 4), 2);
    ck_assert_int_eq(ex[0].answer_len, 2);
    ck_assert_int_eq(ex[1].prompt_len, 6);
    ck_assert_int_eq(ex[1].answer_len, 2);
    // the byte-level extractor reads the same tokens differently: id 263 is not its EOT
    ck_assert_int_eq(tasks_extract_examples(t, m, n, ex, 4), -1);
    // malformed under the BPE rules
    uint16_t t2[64]; uint8_t m2[64];
    memcpy(t2, t, sizeof t); memcpy(m2, m, sizeof m);
    t2[8] = BPE_SPNL;                 // a newline (merged, " \n") before the answer's last token
    ck_assert_int_eq(tasks_extract_examples_v(&v, t2, m2, n, ex, 4), -1);
    memcpy(t2, t, sizeof t);
    t2[n - 1] = '2';                  // the second answer has no newline at all
    ck_assert_int_eq(tasks_extract_examples_v(&v, t2, m2, n, ex, 4), -1);
    memcpy(t2, t, sizeof t);
    t2[2] = BPE_EOT;                  // EOT inside a prompt
    ck_assert_int_eq(tasks_extract_examples_v(&v, t2, m2, n, ex, 4), -1);

    // the scorer compares text up to the first newline
    const int ans1[] = {BPE_POSITIVE, '\n'}, ans2[] = {BPE_NEG, BPE_NLNL};
    const int same[] = {BPE_POSITIVE, '\n'};
    const int split[] = {BPE_POS, BPE_ITIVE, '\n'};                 // other tokens, same text
    const int merged_nl[] = {BPE_POSITIVE, BPE_NLNL};                // the newline merged into "\n\n"
    const int space_nl[] = {BPE_POSITIVE, BPE_SPNL};                 // " positive \n": an extra space
    const int wrong[] = {BPE_NEG, '\n'};
    const int eot_first[] = {BPE_POSITIVE, BPE_EOT, '\n'};
    const int truncated[] = {BPE_POSITIVE};
    const int longer[] = {BPE_POSITIVE, BPE_12, '\n'};
    ck_assert_int_eq(tasks_exact_match_v(&v, same, 2, ans1, 2), 1);
    ck_assert_int_eq(tasks_exact_match_v(&v, split, 3, ans1, 2), 1);
    ck_assert_int_eq(tasks_exact_match_v(&v, merged_nl, 2, ans1, 2), 1);
    ck_assert_int_eq(tasks_exact_match_v(&v, space_nl, 2, ans1, 2), 0);
    ck_assert_int_eq(tasks_exact_match_v(&v, wrong, 2, ans1, 2), 0);
    ck_assert_int_eq(tasks_exact_match_v(&v, eot_first, 3, ans1, 2), 0);
    ck_assert_int_eq(tasks_exact_match_v(&v, truncated, 1, ans1, 2), 0);
    ck_assert_int_eq(tasks_exact_match_v(&v, longer, 3, ans1, 2), 0);
    // a reference ending in "\n\n" is its text up to the first '\n': " negative\n"
    const int neg_nl[] = {BPE_NEG, '\n'};
    ck_assert_int_eq(tasks_exact_match_v(&v, neg_nl, 2, ans2, 2), 1);
    ck_assert_int_eq(tasks_exact_match_v(&v, ans2, 2, ans2, 2), 1);
    // the stop tokens: every token with a newline in its bytes, and EOT; not the byte-level 256
    ck_assert_int_eq(tasks_is_stop_v(&v, '\n'), 1);
    ck_assert_int_eq(tasks_is_stop_v(&v, BPE_NLNL), 1);
    ck_assert_int_eq(tasks_is_stop_v(&v, BPE_SPNL), 1);
    ck_assert_int_eq(tasks_is_stop_v(&v, BPE_EOT), 1);
    ck_assert_int_eq(tasks_is_stop_v(&v, BPE_POSITIVE), 0);
    ck_assert_int_eq(tasks_is_stop_v(&v, 256), 0);
    ck_assert_int_eq(tasks_is_stop(256), 1);
    // no length limit on an answer's text (the comparison streams both texts)
    int *big = malloc(sizeof(int) * 6001), *big2 = malloc(sizeof(int) * 6001);
    for (int i = 0; i < 6000; i++) big[i] = big2[i] = 'a' + i % 26;
    big[6000] = big2[6000] = '\n';
    ck_assert_int_eq(tasks_exact_match_v(&v, big2, 6001, big, 6001), 1);
    big2[5999] = 'A';
    ck_assert_int_eq(tasks_exact_match_v(&v, big2, 6001, big, 6001), 0);
    free(big); free(big2);
}
END_TEST

START_TEST(test_draw_and_rng) {
    // the generator's building blocks are deterministic and in range
    tasks_rng r1 = tasks_rng_make(5, 0), r2 = tasks_rng_make(5, 0), r3 = tasks_rng_make(5, 1);
    REQUIRE(tasks_rng_next(&r1) == tasks_rng_next(&r2));
    REQUIRE(tasks_rng_next(&r1) != tasks_rng_next(&r3));
    int hist[3] = {0, 0, 0};
    for (int i = 0; i < 30000; i++) {
        uint32_t v = tasks_rng_below(&r1, 3);
        REQUIRE((v) < (3));
        hist[v]++;
    }
    for (int i = 0; i < 3; i++) REQUIRE((hist[i]) > (9500));
    for (int task = 0; task < TASKS_NTASKS; task++) {
        for (int i = 0; i < 2000; i++) {
            char p[TASKS_MAX_PROMPT + 1], a[TASKS_MAX_ANSWER + 1], want[TASKS_MAX_ANSWER + 8];
            tasks_draw_example(task, &r1, p, a);
            REQUIRE((strlen(p)) <= (TASKS_MAX_PROMPT));
            REQUIRE((strlen(a)) <= (TASKS_MAX_ANSWER));
            expected_answer(task, p, want);
            REQUIRE(strcmp(a, want) == 0);
        }
    }
}
END_TEST

// Runs last (it deletes a file of the seed-7 suite): one missing mask makes the suite absent.
START_TEST(test_present_needs_every_file) {
    char path[512];
    ck_assert_int_eq(tasks_present(dir_c), 1);
    // an older generator's folder (another SUITE line) is not present: it is made again
    snprintf(path, sizeof path, "%s/SUITE", dir_c);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("lora.c task suite 1\n", f);
    fclose(f);
    ck_assert_int_eq(tasks_present(dir_c), 0);
    f = fopen(path, "w");
    fputs(TASKS_SUITE_VERSION, f);
    fclose(f);
    ck_assert_int_eq(tasks_present(dir_c), 1);
    snprintf(path, sizeof path, "%s/safety_test.lossmask", dir_c);
    ck_assert_int_eq(remove(path), 0);
    ck_assert_int_eq(tasks_present(dir_c), 0);
}
END_TEST

// ----------------------------------------------------------------------------

static Suite *tasks_suite(void) {
    Suite *s = suite_create("tasks");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_generate_ok);
    tcase_add_test(tc, test_generate_error);
    tcase_add_test(tc, test_same_seed_identical);
    tcase_add_test(tc, test_other_seed_differs);
    tcase_add_test(tc, test_tokenizer_file);
    tcase_add_test(tc, test_pretrain);
    tcase_add_loop_test(tc, test_task_shards, 0, TASKS_NTASKS);
    tcase_add_loop_test(tc, test_splits_disjoint, 0, TASKS_NTASKS);
    tcase_add_test(tc, test_labels_balanced);
    tcase_add_test(tc, test_extract_handmade);
    tcase_add_test(tc, test_exact_match);
    tcase_add_test(tc, test_bpe_extract_and_match);
    tcase_add_test(tc, test_draw_and_rng);
    tcase_add_test(tc, test_present_needs_every_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    strcpy(dir_a, "/tmp/test_tasks_a_XXXXXX");
    strcpy(dir_b, "/tmp/test_tasks_b_XXXXXX");
    strcpy(dir_c, "/tmp/test_tasks_c_XXXXXX");
    if (!mkdtemp(dir_a) || !mkdtemp(dir_b) || !mkdtemp(dir_c)) { perror("mkdtemp"); return 1; }
    rc_a = tasks_generate(dir_a, TASKS_DEFAULT_SEED, 0);
    rc_b = tasks_generate(dir_b, TASKS_DEFAULT_SEED, 0);
    rc_c = tasks_generate(dir_c, 7, 0);
    SRunner *sr = srunner_create(tasks_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_dir(dir_a);
    remove_dir(dir_b);
    remove_dir(dir_c);
    return failed == 0 ? 0 : 1;
}
