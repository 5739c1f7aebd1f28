/*
prepare_data — text into llm.c's data shards without Python: what the scripts in dev/data/ do, in C.

    ./prepare_data tinyshakespeare input.txt -o data/tinyshakespeare --gpt2 GPT2_DIR
    ./prepare_data text a.txt b.txt -o data/mytext --gpt2 GPT2_DIR [--name NAME] [--val-tokens N]
    ./prepare_data jsonl train.jsonl data/mytask/train.bin --gpt2 GPT2_DIR [--keep-answers]
    (--bytes instead of --gpt2: the project's byte-level tokenizer, ids 0..255 = bytes, 256 = end-of-text)

GPT2_DIR holds GPT-2's BPE files: vocab.json + merges.txt (any Hugging Face GPT-2 folder) or OpenAI's
encoder.json + vocab.bpe (data/bpe.h). Every mode also writes tokenizer.bin (llm.c's, for decoding
samples) beside its shards and, with --gpt2, GPT2_DIR's files as vocab.json + merges.txt (the
trainer's --export-hf copies them into its Hugging Face folder); it refuses to replace different
ones there.

tinyshakespeare  llm.c's dev/data/tinyshakespeare.py exactly: the text read as Python's text mode
                 does (universal newlines: "\r\n" and "\r" become "\n"), cut at every "\n\n"; each
                 section is the end-of-text token followed by the tokens of the section with "\n\n"
                 put back on all but the last; the first 32,768 tokens (--val-tokens) are
                 tiny_shakespeare_val.bin, the rest tiny_shakespeare_train.bin. On karpathy/char-rnn's
                 input.txt: 32,768 val and 305,260 train tokens, llm.c's files byte for byte.
text             each input file is one document: the end-of-text token, then its tokens (bytes as
                 given, no newline translation); the first --val-tokens tokens (default: a tenth) are
                 DIR/NAME_val.bin, the rest DIR/NAME_train.bin (NAME: --name, default "text").
jsonl            dev/data/jsonl_to_shards.py exactly: one {"prompt": str, "answer": str} object per
                 line (other fields ignored and counted, blank lines skipped); each example is the
                 end-of-text token and the prompt's tokens (loss mask 0), then the answer's tokens
                 (mask 1), prompt and answer tokenized apart; a final "\n" is appended to answers
                 that lack one unless --keep-answers. Writes OUT.bin and OUT.lossmask. The JSON
                 parser is stricter than Python's: NaN/Infinity, "\u0000" and lone surrogates are
                 refused.
Malformed input (not UTF-8, bad JSON, a missing or non-string field, an empty answer, a duplicated
key, no examples, too few tokens) stops with the file and line and exit status 1 before anything is
written; each file is written atomically (a temporary name, then a rename).
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "bpe.h"
#include "dataloader.h"
#include "json.h"

#define LLMC_VAL_TOKENS 32768
static const size_t llmc_counts[2] = {32768, 305260};  // llm.c's TinyShakespeare val and train shards

static void error_usage(void) {
    fprintf(stderr,
        "Usage:\n"
        "  ./prepare_data tinyshakespeare INPUT.txt -o DIR (--gpt2 GPT2_DIR | --bytes) [--val-tokens N]\n"
        "  ./prepare_data text INPUT.txt... -o DIR (--gpt2 GPT2_DIR | --bytes) [--name NAME] [--val-tokens N]\n"
        "  ./prepare_data jsonl INPUT.jsonl OUT.bin (--gpt2 GPT2_DIR | --bytes) [--keep-answers]\n"
        "Options:\n"
        "  --gpt2 DIR       GPT-2 BPE: DIR/vocab.json + DIR/merges.txt, or DIR/encoder.json + DIR/vocab.bpe\n"
        "  --bytes          the byte-level tokenizer (ids 0..255 = bytes, 256 = end-of-text, vocab 257)\n"
        "  -o DIR           output directory (tinyshakespeare: default data/tinyshakespeare)\n"
        "  --val-tokens N   tokens in the validation split (tinyshakespeare: 32768, llm.c's; text: a tenth)\n"
        "  --name NAME      text: the shards are DIR/NAME_train.bin and DIR/NAME_val.bin (default: text)\n"
        "  --keep-answers   jsonl: do not append a final newline to answers that lack one\n");
    exit(1);
}

// ----------------------------------------------------------------------------
// the tokenizer: GPT-2's BPE or bytes

typedef struct {
    int bytes;       // 1: byte-level
    const char *dir; // --gpt2's folder
    Bpe bpe;
    int vocab, eot;
    const char *name;
} Tok;

static void tok_init(Tok *t, const char *gpt2_dir, int bytes) {
    memset(t, 0, sizeof(*t));
    char err[4096];
    if (!!gpt2_dir == !!bytes) die("give one tokenizer: --gpt2 GPT2_DIR or --bytes");
    if (bytes) { t->bytes = 1; t->vocab = 257; t->eot = 256; t->name = "bytes"; return; }
    if (bpe_load_dir(&t->bpe, gpt2_dir, err, sizeof(err))) die("--gpt2: %s", err);
    t->dir = gpt2_dir;
    if (t->bpe.vocab_size > 65536) die("--gpt2: %s: %d tokens do not fit llm.c's uint16 shards", gpt2_dir, t->bpe.vocab_size);
    t->vocab = t->bpe.vocab_size; t->eot = t->bpe.eot; t->name = "gpt2";
}

static void push(BpeIds *o, int id) { if (bpe_push(o, id)) die("out of memory"); }

static void tok_encode(const Tok *t, const char *s, size_t n, BpeIds *out) {
    if (t->bytes) { for (size_t i = 0; i < n; i++) push(out, (unsigned char)s[i]); return; }
    if (bpe_encode(&t->bpe, (const uint8_t *)s, n, out)) die("out of memory");
}

// tokenizer.bin's bytes for t, in memory (compared with an existing file before writing)
static void tok_file(const Tok *t, const char *dir, char *path, size_t cap) {
    snprintf(path, cap, "%s/tokenizer.bin", dir);
}

static int tok_write(const Tok *t, const char *path, char *err, size_t errlen) {
    if (!t->bytes) return bpe_write_tokenizer(&t->bpe, path, err, errlen);
    static uint8_t single[256];
    const uint8_t *bytes[257];
    int len[257];
    for (int i = 0; i < 256; i++) { single[i] = (uint8_t)i; bytes[i] = &single[i]; len[i] = 1; }
    bytes[256] = (const uint8_t *)"<|endoftext|>"; len[256] = 13;
    return tokenizer_write(path, 257, 256, bytes, len, err, errlen);
}

// Where tokenizer.bin goes: refused if a different one is there. Returns 1 if it must be written.
// The check runs before any shard is written, so a refusal leaves the directory as it was.
static int tok_check_existing(const Tok *t, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 1;
    char tmp[4200], err[4096];
    snprintf(tmp, sizeof(tmp), "%s.check", path);
    if (tok_write(t, tmp, err, sizeof(err))) die("%s", err);
    size_t a, b;
    char *x = read_whole_file(path, &a, err, sizeof(err)), *y = read_whole_file(tmp, &b, err, sizeof(err));
    remove(tmp);
    if (!x || !y) die("%s", err);
    int same = a == b && memcmp(x, y, a) == 0;
    free(x); free(y);
    if (!same) die("%s exists and holds a different tokenizer: shards of two tokenizers would share a directory; "
                   "use another output directory or remove it", path);
    return 0;
}

// With --gpt2, the BPE files go beside the shards too, as vocab.json and merges.txt: a trainer run
// on them then knows its tokenizer (--export-hf copies them into the Hugging Face folder). Like
// tokenizer.bin: refused if different ones are there (checked before anything is written).
static void bpe_files(const char *gpt2_dir, const char *dir, char src[2][4200], char dst[2][4200]) {
    if (bpe_find_files(gpt2_dir, src[0], src[1], 4200)) die("--gpt2: %s: no GPT-2 BPE files", gpt2_dir);
    snprintf(dst[0], 4200, "%s/vocab.json", dir);
    snprintf(dst[1], 4200, "%s/merges.txt", dir);
}

// 1: dst must be written; 0: it holds src's bytes already; exits if it holds other bytes.
static int check_same_or_absent(const char *src, const char *dst) {
    struct stat st;
    if (stat(dst, &st) != 0) return 1;
    char err[4096];
    size_t a, b;
    char *x = read_whole_file(src, &a, err, sizeof(err)), *y = read_whole_file(dst, &b, err, sizeof(err));
    if (!x || !y) die("%s", err);
    int same = a == b && memcmp(x, y, a) == 0;
    free(x); free(y);
    if (!same) die("%s exists and differs from %s: shards of two tokenizers would share a directory", dst, src);
    return 0;
}

// Checks (before) or writes (after the shards) tokenizer.bin and, for GPT-2, vocab.json + merges.txt.
static int tok_outputs(const Tok *t, const char *gpt2_dir, const char *dir, int write, int *plan) {
    char kpath[4300], err[4096], src[2][4200], dst[2][4200];
    tok_file(t, dir, kpath, sizeof(kpath));
    if (!write) {
        plan[0] = tok_check_existing(t, kpath);
        plan[1] = plan[2] = 0;
        if (!t->bytes) {
            bpe_files(gpt2_dir, dir, src, dst);
            for (int k = 0; k < 2; k++) plan[1 + k] = check_same_or_absent(src[k], dst[k]);
        }
        return 0;
    }
    if (plan[0] && tok_write(t, kpath, err, sizeof(err))) die("%s", err);
    if (!t->bytes) {
        bpe_files(gpt2_dir, dir, src, dst);
        for (int k = 0; k < 2; k++) {
            if (!plan[1 + k]) continue;
            size_t n;
            char *buf = read_whole_file(src[k], &n, err, sizeof(err));
            if (!buf) die("%s", err);
            const void *parts[1] = {buf};
            size_t lens[1] = {n};
            if (write_chunks_atomic(dst[k], parts, lens, 1, err, sizeof(err))) die("%s", err);
            free(buf);
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// input

static void mkdirs(const char *dir) {
    char p[4096];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p)) die("path too long: %s", dir);
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == 0) {
            char keep = *c;
            *c = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) die("cannot create directory %s: %s", p, strerror(errno));
            *c = keep;
            if (!keep) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) die("%s is not a directory", dir);
}

// Line (1-based) of byte offset i of s.
static size_t line_of(const char *s, size_t i) {
    size_t line = 1;
    for (size_t k = 0; k < i; k++) line += s[k] == '\n';
    return line;
}

// Stops at the first byte that is not valid UTF-8, naming the file and line.
static void check_utf8(const char *path, const char *s, size_t n, size_t line0) {
    for (size_t i = 0; i < n;) {
        int l;
        if (bpe_utf8((const uint8_t *)s + i, n - i, &l) < 0)
            die("%s:%zu: not UTF-8 text (byte 0x%02x at offset %zu)", path, line0 ? line0 : line_of(s, i), (unsigned char)s[i], i);
        i += (size_t)l;
    }
}

static char *read_text(const char *path, size_t *n) {
    char err[4096];
    char *s = read_whole_file(path, n, err, sizeof(err));
    if (!s) die("%s", err);
    check_utf8(path, s, *n, 0);
    return s;
}

// Python's str.isspace for every character: White_Space and U+001C..U+001F
static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int l;
        int32_t c = bpe_utf8((const uint8_t *)s + i, n - i, &l);
        if (!(bpe_class(c) == BPE_SPACE || (c >= 0x1C && c <= 0x1F))) return 0;
        i += (size_t)l;
    }
    return 1;
}

static void write_shard(const char *path, const BpeIds *ids, size_t from, size_t to, const uint8_t *mask) {
    char err[4096];
    size_t n = to - from;
    uint16_t *t = malloc(2 * n + 2);
    if (!t) die("out of memory");
    for (size_t i = 0; i < n; i++) t[i] = (uint16_t)ids->v[from + i];
    if (shard_write(path, t, mask ? mask + from : NULL, n, err, sizeof(err))) die("%s", err);
    free(t);
}

// ----------------------------------------------------------------------------
// the three modes

static void split_and_write(const Tok *tok, const BpeIds *ids, size_t nval, const char *dir, const char *name, const char *src) {
    if (ids->n <= nval) die("%s: only %zu tokens, not enough for a %zu-token validation split and a training split", src, ids->n, nval);
    char vpath[4200], tpath[4200], kpath[4200];
    int plan[3];
    mkdirs(dir);
    tok_file(tok, dir, kpath, sizeof(kpath));
    tok_outputs(tok, tok->dir, dir, 0, plan);
    snprintf(vpath, sizeof(vpath), "%s/%s_val.bin", dir, name);
    snprintf(tpath, sizeof(tpath), "%s/%s_train.bin", dir, name);
    write_shard(vpath, ids, 0, nval, NULL);
    write_shard(tpath, ids, nval, ids->n, NULL);
    tok_outputs(tok, tok->dir, dir, 1, plan);
    printf("%s tokens: %zu val -> %s, %zu train -> %s; tokenizer -> %s%s\n", tok->name, nval, vpath, ids->n - nval, tpath, kpath,
           tok->bytes ? "" : " (+ vocab.json, merges.txt)");
}

static void mode_tinyshakespeare(const Tok *tok, const char *path, const char *dir, long val_tokens) {
    size_t n;
    char *s = read_text(path, &n);
    // Python's text mode (llm.c opens the file with open(path, 'r')): universal newlines
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') { s[m++] = '\n'; if (i + 1 < n && s[i + 1] == '\n') i++; }
        else s[m++] = s[i];
    }
    n = m;
    if (n == 0) die("%s: empty", path);
    BpeIds ids = {0};
    // sections = text.split("\n\n"); EOT, then section + "\n\n" (all but the last)
    size_t start = 0;
    for (;;) {
        const char *cut = NULL;
        for (size_t i = start; i + 1 < n; i++) if (s[i] == '\n' && s[i + 1] == '\n') { cut = s + i; break; }
        push(&ids, tok->eot);
        if (!cut) { tok_encode(tok, s + start, n - start, &ids); break; }
        size_t end = (size_t)(cut - s) + 2;     // the section with its "\n\n" put back
        tok_encode(tok, s + start, end - start, &ids);
        start = end;
    }
    free(s);
    size_t nval = val_tokens < 0 ? LLMC_VAL_TOKENS : (size_t)val_tokens;
    split_and_write(tok, &ids, nval, dir, "tiny_shakespeare", path);
    if (!tok->bytes && nval == LLMC_VAL_TOKENS) {
        if (nval == llmc_counts[0] && ids.n - nval == llmc_counts[1]) printf("the same token counts as llm.c's TinyShakespeare shards\n");
        else printf("note: llm.c's shards of the usual input.txt have %zu val and %zu train tokens: this input differs from it\n",
                    llmc_counts[0], llmc_counts[1]);
    }
    free(ids.v);
}

static void mode_text(const Tok *tok, char **inputs, int ninputs, const char *dir, const char *name, long val_tokens) {
    BpeIds ids = {0};
    for (int f = 0; f < ninputs; f++) {
        size_t n;
        char *s = read_text(inputs[f], &n);
        if (n == 0) die("%s: empty", inputs[f]);
        push(&ids, tok->eot);
        tok_encode(tok, s, n, &ids);
        free(s);
    }
    size_t nval = val_tokens < 0 ? ids.n / 10 : (size_t)val_tokens;
    if (nval == 0) die("%s: %zu tokens: too few for a validation split (give --val-tokens)", inputs[0], ids.n);
    split_and_write(tok, &ids, nval, dir, name, ninputs == 1 ? inputs[0] : "the inputs");
    free(ids.v);
}

typedef struct { char *key; int count; } Extra;

static void mode_jsonl(const Tok *tok, const char *path, const char *out, int keep_answers) {
    size_t ol = strlen(out);
    if (ol < 4 || strcmp(out + ol - 4, ".bin") != 0) die("%s: the output must be named X.bin (its loss mask is X.lossmask)", out);
    char err[4096], jerr[256];
    size_t n;
    char *s = read_whole_file(path, &n, err, sizeof(err));
    if (!s) die("%s", err);
    BpeIds ids = {0};
    uint8_t *mask = NULL;
    size_t mcap = 0, nex = 0, nanswer = 0, longest = 0;
    Extra extra[64];
    int nextra = 0;
    size_t line = 0;
    for (size_t pos = 0; pos < n;) {
        line++;
        size_t e = pos;
        while (e < n && s[e] != '\n') e++;
        const char *l = s + pos;
        size_t ll = e - pos;
        pos = e + 1;
        check_utf8(path, l, ll, line);
        if (is_blank(l, ll)) continue;
        Json j;
        if (json_parse(l, ll, &j, jerr, sizeof(jerr))) die("%s:%zu: not a valid JSON line: %s", path, line, jerr);
        const JVal *root = &j.v[0];
        if (root->type != J_OBJ) die("%s:%zu: expected a JSON object with \"prompt\" and \"answer\"", path, line);
        const char *dup = json_check_unique(&j, root);
        if (dup) die("%s:%zu: not a valid JSON line: duplicated key '%s'", path, line, dup);
        const JVal *f[2];
        static const char *fields[2] = {"prompt", "answer"};
        for (int k = 0; k < 2; k++) {
            f[k] = json_get(&j, root, fields[k]);
            if (!f[k]) die("%s:%zu: missing field \"%s\"", path, line, fields[k]);
            if (f[k]->type != J_STR) die("%s:%zu: field \"%s\" must be a string", path, line, fields[k]);
        }
        if (f[1]->str[0] == 0) die("%s:%zu: empty answer: nothing to train on", path, line);
        for (int k = root->first; k >= 0; k = j.v[k].next) {
            const char *key = j.v[k].key;
            if (!strcmp(key, "prompt") || !strcmp(key, "answer")) continue;
            int x = 0;
            while (x < nextra && strcmp(extra[x].key, key)) x++;
            if (x == nextra && nextra < 64) { extra[nextra].key = strdup(key); extra[nextra++].count = 0; }
            if (x < nextra) extra[x].count++;
        }
        size_t before = ids.n;
        push(&ids, tok->eot);
        tok_encode(tok, f[0]->str, strlen(f[0]->str), &ids);
        size_t prompt_end = ids.n;
        size_t al = strlen(f[1]->str);
        char *answer = malloc(al + 2);
        if (!answer) die("out of memory");
        memcpy(answer, f[1]->str, al + 1);
        if (!keep_answers && answer[al - 1] != '\n') { answer[al++] = '\n'; answer[al] = 0; }
        tok_encode(tok, answer, al, &ids);
        free(answer);
        json_free(&j);
        if (ids.n > mcap) {
            mcap = ids.n * 2;
            uint8_t *nm = realloc(mask, mcap);
            if (!nm) die("out of memory");
            mask = nm;
        }
        for (size_t i = before; i < ids.n; i++) mask[i] = i >= prompt_end;
        nanswer += ids.n - prompt_end;
        if (ids.n - before > longest) longest = ids.n - before;
        nex++;
    }
    free(s);
    if (!nex) die("%s: no examples (one JSON object per line with \"prompt\" and \"answer\")", path);
    // the output directory: the shard's
    char dir[4200], kpath[4300];
    snprintf(dir, sizeof(dir), "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else snprintf(dir, sizeof(dir), ".");
    mkdirs(dir);
    tok_file(tok, dir, kpath, sizeof(kpath));
    int plan[3];
    tok_outputs(tok, tok->dir, dir, 0, plan);
    write_shard(out, &ids, 0, ids.n, mask);
    tok_outputs(tok, tok->dir, dir, 1, plan);
    printf("%zu examples, %zu %s tokens (%zu answer tokens counted, %.1f%%), longest document %zu tokens\n",
           nex, ids.n, tok->name, nanswer, 100.0 * (double)nanswer / (double)ids.n, longest);
    printf("wrote %s, %.*s.lossmask, %s\n", out, (int)(ol - 4), out, kpath);
    if (nextra) {
        printf("ignored fields:");
        for (int x = 0; x < nextra; x++) { printf("%s %s (%d lines)", x ? "," : "", extra[x].key, extra[x].count); free(extra[x].key); }
        printf("\n");
    }
    free(ids.v); free(mask);
}

int main(int argc, char **argv) {
    if (argc < 2) error_usage();
    const char *mode = argv[1], *outdir = NULL, *gpt2 = NULL, *name = "text";
    int bytes = 0, keep_answers = 0;
    long val_tokens = -1;
    char *inputs[1024];
    int ninputs = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) { if (ninputs == 1024) die("at most 1024 inputs"); inputs[ninputs++] = argv[i]; continue; }
        if (!strcmp(a, "--bytes")) { bytes = 1; continue; }
        if (!strcmp(a, "--keep-answers")) { keep_answers = 1; continue; }
        if (i + 1 >= argc) die("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "-o")) outdir = v;
        else if (!strcmp(a, "--gpt2")) gpt2 = v;
        else if (!strcmp(a, "--name")) name = v;
        else if (!strcmp(a, "--val-tokens")) {
            char *end;
            val_tokens = strtol(v, &end, 10);
            if (*end || end == v || val_tokens <= 0) die("--val-tokens must be an integer > 0");
        } else { fprintf(stderr, "error: unknown option %s\n", a); error_usage(); }
    }
    if (!strcmp(mode, "tinyshakespeare")) {
        if (ninputs != 1) die("tinyshakespeare: give the one input file (karpathy/char-rnn's input.txt)");
        Tok tok;
        tok_init(&tok, gpt2, bytes);
        mode_tinyshakespeare(&tok, inputs[0], outdir ? outdir : "data/tinyshakespeare", val_tokens);
        bpe_free(&tok.bpe);
    } else if (!strcmp(mode, "text")) {
        if (ninputs < 1 || !outdir) die("text: give the input files and -o DIR");
        if (!name[0] || strchr(name, '/')) die("--name: a file name prefix, without '/'");
        Tok tok;
        tok_init(&tok, gpt2, bytes);
        mode_text(&tok, inputs, ninputs, outdir, name, val_tokens);
        bpe_free(&tok.bpe);
    } else if (!strcmp(mode, "jsonl")) {
        if (ninputs != 2 || outdir) die("jsonl: give INPUT.jsonl and OUT.bin");
        Tok tok;
        tok_init(&tok, gpt2, bytes);
        mode_jsonl(&tok, inputs[0], inputs[1], keep_answers);
        bpe_free(&tok.bpe);
    } else {
        fprintf(stderr, "error: unknown mode '%s'\n", mode);
        error_usage();
    }
    return 0;
}
