/*
data/bpe.h — GPT-2's byte-level BPE tokenizer in C: encode, decode, and llm.c's tokenizer.bin.

    Bpe b;
    if (bpe_load_dir(&b, "gpt2_dir", err, sizeof(err)) != 0) ...;   // vocab.json + merges.txt, or
                                                                     // encoder.json + vocab.bpe
    BpeIds ids = {0};
    bpe_encode(&b, text, n, &ids);          // appends the ids of text[0..n) to ids.v (ids.n of them)
    size_t len; uint8_t *s = bpe_decode(&b, ids.v, ids.n, &len);     // the bytes back (malloc'd)
    bpe_write_tokenizer(&b, "tokenizer.bin", err, sizeof(err));      // llm.c's file, version 2
    free(ids.v); bpe_free(&b);

The files (Hugging Face and OpenAI ship the same content under two names):
  vocab.json / encoder.json   a JSON object: token string -> id, ids 0..V-1 each exactly once.
                              A token string is its bytes through GPT-2's bytes_to_unicode table
                              (printable bytes as themselves, the others as U+0100 + k); it must
                              contain "<|endoftext|>" (the end-of-text id, 50256 for GPT-2).
  merges.txt / vocab.bpe      "#version: ..." (optional), then one merge per line, "A B", rank =
                              line order; a final newline is allowed.
The loader refuses (naming the file, and the line or token) anything else, and also merges files
whose ranks are not the order BPE training produces: both parts of a merge must already exist
(a byte, or the result of an earlier merge), and no two merges may produce the same token. GPT-2's
files satisfy this; it is what makes the fast merge loop below exactly GPT-2's algorithm.

Encoding (what GPT-2's encoder.py, tiktoken's encode_ordinary and llm.c's data scripts do):
 1. Pre-tokenisation, GPT-2's regex, implemented by hand on UTF-8:
        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    tried in this order at each position (leftmost-first alternation, greedy runs). \p{L}, \p{N}
    and \s are Unicode's letters, numbers and White_Space (data/bpe_unicode.h). "<|endoftext|>" in
    the text is ordinary text, never the special token (callers insert bpe.eot themselves).
    Bytes that are not valid UTF-8 count as one "other" character each (GPT-2 itself only sees
    valid text: data/prepare_data.c refuses invalid input).
 2. Each piece's bytes become single-byte tokens; then the adjacent pair of lowest merge rank is
    merged, repeatedly, all of its occurrences left to right, until no pair has a rank. Here: a
    heap of (rank, position) over a linked list of symbols, O(k log k) for a piece of k bytes;
    with merges ordered as the loader demands, a merge never creates a pair of lower rank than its
    own, so popping the heap merges exactly what GPT-2's pass-by-pass loop merges.
Known difference from the JS reference (npm gpt-3-encoder, used by tests/test_bpe.c): JavaScript's
\s includes U+FEFF and excludes U+0085; Unicode's White_Space (tiktoken, Python's regex) is the
other way round. We follow Unicode.
*/
#ifndef DATA_BPE_H
#define DATA_BPE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bpe_unicode.h"
#include "dataloader.h"   // read_whole_file, tokenizer_write
#include "json.h"

typedef struct {
    int vocab_size;          // V: ids 0..V-1
    int eot;                 // id of "<|endoftext|>"
    uint8_t **bytes;         // (V,) each token's raw bytes
    int *len;                // (V,) their lengths
    int byte_token[256];     // the single-byte token of each byte
    int nmerges;
    // merges: open-addressing hash (left id, right id) -> (rank, merged id)
    uint64_t *mkey;          // (mcap,) (left << 32 | right) + 1; 0 = empty
    int32_t *mrank, *mid;    // (mcap,)
    size_t mcap;
    uint8_t *blob;           // storage of all tokens' bytes
} Bpe;

typedef struct { int *v; size_t n, cap; } BpeIds;

// ----------------------------------------------------------------------------
// Unicode classes of GPT-2's regex

enum { BPE_OTHER, BPE_LETTER, BPE_NUMBER, BPE_SPACE };

static int bpe_in_ranges(uint32_t c, const uint32_t (*r)[2], int n) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < r[mid][0]) hi = mid - 1;
        else if (c > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static int bpe_class(int32_t c) {
    if (c < 0) return BPE_OTHER;  // a byte that is not valid UTF-8
    if (c < 128) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return BPE_LETTER;
        if (c >= '0' && c <= '9') return BPE_NUMBER;
        if (c == ' ' || (c >= 9 && c <= 13)) return BPE_SPACE;
        return BPE_OTHER;
    }
    uint32_t u = (uint32_t)c;
    if (bpe_in_ranges(u, bpe_letter_ranges, BPE_LETTER_NRANGES)) return BPE_LETTER;
    if (bpe_in_ranges(u, bpe_number_ranges, BPE_NUMBER_NRANGES)) return BPE_NUMBER;
    if (bpe_in_ranges(u, bpe_space_ranges, BPE_SPACE_NRANGES)) return BPE_SPACE;
    return BPE_OTHER;
}

// Decodes one UTF-8 character at s (n > 0 bytes left): its code point (-1 if the byte does not
// start a valid, shortest-form sequence) and its length in bytes (1 for an invalid byte).
static int32_t bpe_utf8(const uint8_t *s, size_t n, int *len) {
    uint32_t c = s[0];
    int k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    *len = 1;
    if (k == 0 || (size_t)k > n) return k == 1 ? (int32_t)c : -1;
    if (k == 1) return (int32_t)c;
    uint32_t cp = k == 2 ? c & 31 : k == 3 ? c & 15 : c & 7;
    for (int i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[i] & 63);
    }
    static const uint32_t minv[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < minv[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *len = k;
    return (int32_t)cp;
}

// Class of the character at s[i] (i < n) and its length.
static int bpe_class_at(const uint8_t *s, size_t n, size_t i, int *len) {
    return bpe_class(bpe_utf8(s + i, n - i, len));
}

// End (byte offset) of the run of characters of class cls starting at i.
static size_t bpe_run(const uint8_t *s, size_t n, size_t i, int cls) {
    while (i < n) {
        int l;
        if (bpe_class_at(s, n, i, &l) != cls) break;
        i += (size_t)l;
    }
    return i;
}

// Length in bytes of the next pre-token of s[0..n), n > 0: the regex above, alternative by alternative.
static size_t bpe_piece_len(const uint8_t *s, size_t n) {
    // 's 't 'm 'd | 're 've 'll
    if (s[0] == '\'' && n >= 2) {
        if (s[1] == 's' || s[1] == 't' || s[1] == 'm' || s[1] == 'd') return 2;
        if (n >= 3 && ((s[1] == 'r' && s[2] == 'e') || (s[1] == 'v' && s[2] == 'e') || (s[1] == 'l' && s[2] == 'l'))) return 3;
    }
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional ASCII space, then a run of one class
    size_t o = s[0] == ' ' ? 1 : 0;
    if (o < n) {
        int l, cls = bpe_class_at(s, n, o, &l);
        if (cls != BPE_SPACE) return bpe_run(s, n, o, cls);
    }
    // '\s+(?!\S)': the whitespace run, less its last character when a non-space follows; '\s+': all
    size_t i = 0, last = 0;
    int nchars = 0;
    while (i < n) {
        int l;
        if (bpe_class_at(s, n, i, &l) != BPE_SPACE) break;
        last = i; i += (size_t)l; nchars++;
    }
    if (i == n || nchars == 1) return i;
    return last;
}

// ----------------------------------------------------------------------------
// GPT-2's bytes_to_unicode: byte b <-> the code point that stands for it in vocab.json

static int bpe_printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

// The code point that stands for byte b: b itself if printable, else U+0100 + (its rank among the
// 68 other bytes).
static uint32_t bpe_byte_char(int b) {
    if (bpe_printable(b)) return (uint32_t)b;
    int k = 0;
    for (int x = 0; x < b; x++) k += !bpe_printable(x);
    return 256u + (uint32_t)k;
}

// The inverse: inv[cp] = the byte code point cp stands for, -1 for the others (cp < 0x144).
#define BPE_NCHARS 0x144
static void bpe_char_bytes(int16_t inv[BPE_NCHARS]) {
    for (int c = 0; c < BPE_NCHARS; c++) inv[c] = -1;
    for (int b = 0; b < 256; b++) inv[bpe_byte_char(b)] = (int16_t)b;
}

// ----------------------------------------------------------------------------
// loading

static void bpe_free(Bpe *b) {
    free(b->bytes); free(b->len); free(b->mkey); free(b->mrank); free(b->mid); free(b->blob);
    memset(b, 0, sizeof(*b));
}

static size_t bpe_hash(uint64_t k, size_t cap) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ull; k ^= k >> 33;
    return (size_t)k & (cap - 1);
}

// Slot of pair (l, r) in the merge table: its entry, or the empty slot where it would go.
static size_t bpe_slot(const Bpe *b, int l, int r) {
    uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    size_t h = bpe_hash(key, b->mcap);
    while (b->mkey[h] && b->mkey[h] != key) h = (h + 1) & (b->mcap - 1);
    return h;
}

// Rank of merge (l, r) (and its result in *id), or -1.
static int bpe_rank(const Bpe *b, int l, int r, int *id) {
    if (!b->mcap) return -1;
    size_t h = bpe_slot(b, l, r);
    if (!b->mkey[h]) return -1;
    *id = b->mid[h];
    return b->mrank[h];
}

// A string -> id table over the vocab (for the merges' parts), open addressing on FNV-1a.
typedef struct { const Bpe *b; int *slot; size_t cap; } BpeVocabIndex;

static uint64_t bpe_fnv(const uint8_t *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 1099511628211ull; }
    return h;
}
static int bpe_index_find(const BpeVocabIndex *x, const uint8_t *s, size_t n) {
    size_t h = (size_t)bpe_fnv(s, n) & (x->cap - 1);
    for (; x->slot[h] >= 0; h = (h + 1) & (x->cap - 1)) {
        int id = x->slot[h];
        if ((size_t)x->b->len[id] == n && memcmp(x->b->bytes[id], s, n) == 0) return id;
    }
    return -1;
}

// Token string of vocab.json -> its bytes (out must hold strlen(key) bytes). -1 if a character
// is not one of bytes_to_unicode's 256.
static int bpe_key_bytes(const char *key, const int16_t *inv, uint8_t *out, size_t *n) {
    const uint8_t *s = (const uint8_t *)key;
    size_t m = strlen(key), i = 0;
    *n = 0;
    while (i < m) {
        int l;
        int32_t cp = bpe_utf8(s + i, m - i, &l);
        int byte = cp >= 0 && cp < BPE_NCHARS ? inv[cp] : -1;
        if (byte < 0) return -1;
        out[(*n)++] = (uint8_t)byte;
        i += (size_t)l;
    }
    return 0;
}

// Loads the vocab (JSON object token -> id) and the merges. 0, or -1 with err naming the file.
static int bpe_load(Bpe *b, const char *vocab_path, const char *merges_path, char *err, size_t errlen) {
    memset(b, 0, sizeof(*b));
    char jerr[256];
    size_t n;
    char *text = NULL, *mtext = NULL;
    Json j = {0};
    BpeVocabIndex ix = {b, NULL, 0};
    int32_t *made_at = NULL;   // (V,) rank of the merge producing each token, -1 for bytes, -2 none
    int16_t inv[BPE_NCHARS];
    bpe_char_bytes(inv);
#define BPE_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)
    text = read_whole_file(vocab_path, &n, err, errlen);
    if (!text) goto fail;
    if (json_parse(text, n, &j, jerr, sizeof(jerr))) BPE_FAIL("%s: %s", vocab_path, jerr);
    const JVal *root = &j.v[0];
    if (root->type != J_OBJ || root->nkids < 257) BPE_FAIL("%s: not a byte-level BPE vocab (a JSON object of at least 257 token: id members)", vocab_path);
    if (root->nkids > (1 << 24)) BPE_FAIL("%s: %d tokens: too many", vocab_path, root->nkids);
    const char *dup = json_check_unique(&j, root);
    if (dup) BPE_FAIL("%s: token '%s' appears twice", vocab_path, dup);
    int V = root->nkids;
    b->vocab_size = V;
    b->bytes = calloc((size_t)V, sizeof(uint8_t *));
    b->len = calloc((size_t)V, sizeof(int));
    size_t total = 0;
    for (int k = root->first; k >= 0; k = j.v[k].next) total += strlen(j.v[k].key);
    b->blob = malloc(total + 1);
    made_at = malloc(sizeof(int32_t) * (size_t)V);
    if (!b->bytes || !b->len || !b->blob || !made_at) BPE_FAIL("%s: out of memory", vocab_path);
    for (int i = 0; i < V; i++) b->len[i] = -1;
    for (int i = 0; i < 256; i++) b->byte_token[i] = -1;
    b->eot = -1;
    uint8_t *o = b->blob;
    for (int k = root->first; k >= 0; k = j.v[k].next) {
        const JVal *e = &j.v[k];
        if (e->type != J_NUM || !e->is_int || e->ival < 0 || e->ival >= V)
            BPE_FAIL("%s: token '%s': the id must be an integer in 0..%d", vocab_path, e->key, V - 1);
        int id = (int)e->ival;
        if (b->len[id] >= 0) BPE_FAIL("%s: id %d is given to two tokens", vocab_path, id);
        size_t bl;
        if (e->key[0] == 0 || bpe_key_bytes(e->key, inv, o, &bl)) BPE_FAIL("%s: token '%s' (id %d) is not a byte-level BPE token (characters of GPT-2's bytes_to_unicode only)", vocab_path, e->key, id);
        b->bytes[id] = o; b->len[id] = (int)bl; o += bl;
        if (strcmp(e->key, "<|endoftext|>") == 0) b->eot = id;
        else if (bl == 1) {
            if (b->byte_token[o[-1]] >= 0) BPE_FAIL("%s: byte 0x%02x has two tokens", vocab_path, o[-1]);
            b->byte_token[o[-1]] = id;
        }
    }
    if (b->eot < 0) BPE_FAIL("%s: no \"<|endoftext|>\" token", vocab_path);
    for (int i = 0; i < 256; i++) if (b->byte_token[i] < 0) BPE_FAIL("%s: byte 0x%02x has no token", vocab_path, i);
    json_free(&j); free(text); text = NULL;
    // string -> id index of the vocab
    ix.cap = 1;
    while (ix.cap < 2 * (size_t)V) ix.cap <<= 1;
    ix.slot = malloc(sizeof(int) * ix.cap);
    if (!ix.slot) BPE_FAIL("%s: out of memory", vocab_path);
    for (size_t i = 0; i < ix.cap; i++) ix.slot[i] = -1;
    for (int id = 0; id < V; id++) {
        size_t h = (size_t)bpe_fnv(b->bytes[id], (size_t)b->len[id]) & (ix.cap - 1);
        while (ix.slot[h] >= 0) h = (h + 1) & (ix.cap - 1);
        ix.slot[h] = id;
        made_at[id] = -2;
    }
    for (int i = 0; i < 256; i++) made_at[b->byte_token[i]] = -1;
    // the merges
    mtext = read_whole_file(merges_path, &n, err, errlen);
    if (!mtext) goto fail;
    if (memchr(mtext, 0, n)) BPE_FAIL("%s: a NUL byte: not a merges file", merges_path);
    b->mcap = 1;
    size_t nlines = 1;
    for (size_t i = 0; i < n; i++) nlines += mtext[i] == '\n';
    while (b->mcap < 2 * nlines) b->mcap <<= 1;
    b->mkey = calloc(b->mcap, sizeof(uint64_t));
    b->mrank = malloc(sizeof(int32_t) * b->mcap);
    b->mid = malloc(sizeof(int32_t) * b->mcap);
    if (!b->mkey || !b->mrank || !b->mid) BPE_FAIL("%s: out of memory", merges_path);
    size_t pos = 0;
    int line = 0, blank_at = 0;
    uint8_t *tmp = malloc(n + 1);
    if (!tmp) BPE_FAIL("%s: out of memory", merges_path);
    while (pos < n) {
        line++;
        size_t e = pos;
        while (e < n && mtext[e] != '\n') e++;
        size_t le = e;
        if (le > pos && mtext[le - 1] == '\r') le--;   // a CRLF checkout
        char *s = mtext + pos;
        size_t sl = le - pos;
        pos = e + 1;
        if (line == 1 && sl >= 8 && memcmp(s, "#version", 8) == 0) continue;
        if (sl == 0) { if (!blank_at) blank_at = line; continue; }
        if (blank_at) { free(tmp); BPE_FAIL("%s:%d: an empty line inside the merges", merges_path, blank_at); }
        char *sp = memchr(s, ' ', sl);
        if (!sp || sp == s || sp == s + sl - 1 || memchr(sp + 1, ' ', (size_t)(s + sl - sp - 1))) {
            free(tmp); BPE_FAIL("%s:%d: expected two tokens separated by one space", merges_path, line);
        }
        int ids[2];
        const char *part[2] = {s, sp + 1};
        size_t plen[2] = {(size_t)(sp - s), (size_t)(s + sl - sp - 1)};
        for (int k = 0; k < 2; k++) {
            memcpy(tmp, part[k], plen[k]); tmp[plen[k]] = 0;
            size_t bl;
            if (memchr(tmp, 0, plen[k]) || bpe_key_bytes((char *)tmp, inv, tmp, &bl) || (ids[k] = bpe_index_find(&ix, tmp, bl)) < 0) {
                free(tmp); BPE_FAIL("%s:%d: '%.*s' is not a token of %s", merges_path, line, (int)plen[k], part[k], vocab_path);
            }
            if (made_at[ids[k]] == -2) { free(tmp); BPE_FAIL("%s:%d: '%.*s' is used before a merge makes it", merges_path, line, (int)plen[k], part[k]); }
        }
        size_t l0 = (size_t)b->len[ids[0]], l1 = (size_t)b->len[ids[1]];
        memcpy(tmp, b->bytes[ids[0]], l0); memcpy(tmp + l0, b->bytes[ids[1]], l1);
        int res = bpe_index_find(&ix, tmp, l0 + l1);
        if (res < 0) { free(tmp); BPE_FAIL("%s:%d: the merge of '%.*s' makes a token that is not in %s", merges_path, line, (int)sl, s, vocab_path); }
        if (made_at[res] != -2) { free(tmp); BPE_FAIL("%s:%d: the merge of '%.*s' makes a token an earlier merge already made", merges_path, line, (int)sl, s); }
        size_t h = bpe_slot(b, ids[0], ids[1]);
        if (b->mkey[h]) { free(tmp); BPE_FAIL("%s:%d: a repeated merge", merges_path, line); }
        b->mkey[h] = (((uint64_t)(uint32_t)ids[0] << 32) | (uint32_t)ids[1]) + 1;
        b->mrank[h] = b->nmerges;
        b->mid[h] = res;
        made_at[res] = b->nmerges++;
    }
    free(tmp);
    if (b->nmerges == 0) BPE_FAIL("%s: no merges", merges_path);
    free(mtext); free(made_at); free(ix.slot);
#undef BPE_FAIL
    return 0;
fail:
    json_free(&j); free(text); free(mtext); free(made_at); free(ix.slot);
    bpe_free(b);
    return -1;
}

// A folder with vocab.json + merges.txt (Hugging Face) or encoder.json + vocab.bpe (OpenAI).
static int bpe_find_files(const char *dir, char *vocab, char *merges, size_t cap) {
    static const char *names[2][2] = {{"vocab.json", "merges.txt"}, {"encoder.json", "vocab.bpe"}};
    for (int k = 0; k < 2; k++) {
        struct stat s1, s2;
        snprintf(vocab, cap, "%s/%s", dir, names[k][0]);
        snprintf(merges, cap, "%s/%s", dir, names[k][1]);
        if (stat(vocab, &s1) == 0 && stat(merges, &s2) == 0) return 0;
    }
    return -1;
}

static int bpe_load_dir(Bpe *b, const char *dir, char *err, size_t errlen) {
    size_t cap = strlen(dir) + 32;
    char *v = malloc(cap), *m = malloc(cap);
    if (!v || !m) { free(v); free(m); snprintf(err, errlen, "%s: out of memory", dir); return -1; }
    int rc;
    if (bpe_find_files(dir, v, m, cap)) {
        snprintf(err, errlen, "%s: no GPT-2 BPE files (vocab.json + merges.txt, or encoder.json + vocab.bpe)", dir);
        memset(b, 0, sizeof(*b));
        rc = -1;
    } else rc = bpe_load(b, v, m, err, errlen);
    free(v); free(m);
    return rc;
}

// ----------------------------------------------------------------------------
// encoding and decoding

static int bpe_push(BpeIds *o, int id) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 1024;
        int *nv = realloc(o->v, sizeof(int) * cap);
        if (!nv) return -1;
        o->v = nv; o->cap = cap;
    }
    o->v[o->n++] = id;
    return 0;
}

typedef struct { int32_t rank, pos; } BpeHeapItem;
typedef struct { int *sym, *next, *prev; BpeHeapItem *heap; size_t cap, nheap; } BpeWork;

static int bpe_heap_less(BpeHeapItem a, BpeHeapItem b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }
static void bpe_heap_push(BpeWork *w, BpeHeapItem x) {
    size_t i = w->nheap++;
    while (i > 0 && bpe_heap_less(x, w->heap[(i - 1) / 2])) { w->heap[i] = w->heap[(i - 1) / 2]; i = (i - 1) / 2; }
    w->heap[i] = x;
}
static BpeHeapItem bpe_heap_pop(BpeWork *w) {
    BpeHeapItem top = w->heap[0], x = w->heap[--w->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->nheap) break;
        if (c + 1 < w->nheap && bpe_heap_less(w->heap[c + 1], w->heap[c])) c++;
        if (!bpe_heap_less(w->heap[c], x)) break;
        w->heap[i] = w->heap[c]; i = c;
    }
    if (w->nheap) w->heap[i] = x;
    return top;
}

// Pushes the pair starting at symbol p, if it is a merge.
static void bpe_push_pair(const Bpe *b, BpeWork *w, int p) {
    int q = w->next[p], id = -1;
    if (q < 0) return;
    int r = bpe_rank(b, w->sym[p], w->sym[q], &id);
    if (r >= 0) bpe_heap_push(w, (BpeHeapItem){r, p});
}

// BPE of one piece s[0..k): appends its ids.
static int bpe_piece(const Bpe *b, const uint8_t *s, size_t k, BpeWork *w, BpeIds *out) {
    if (k == 1) return bpe_push(out, b->byte_token[s[0]]);
    if (k > w->cap) {
        size_t cap = k > 2 * w->cap ? k : 2 * w->cap;
        int *a = realloc(w->sym, sizeof(int) * cap), *c;
        if (!a) return -1;
        w->sym = a;
        if (!(c = realloc(w->next, sizeof(int) * cap))) return -1;
        w->next = c;
        if (!(c = realloc(w->prev, sizeof(int) * cap))) return -1;
        w->prev = c;
        BpeHeapItem *h = realloc(w->heap, sizeof(BpeHeapItem) * 3 * cap);
        if (!h) return -1;
        w->heap = h;
        w->cap = cap;
    }
    for (size_t i = 0; i < k; i++) {
        w->sym[i] = b->byte_token[s[i]];
        w->next[i] = i + 1 < k ? (int)i + 1 : -1;
        w->prev[i] = (int)i - 1;
    }
    // k - 1 pairs to start, at most 2 more per merge (k - 1 merges): fewer than 3k entries. A popped
    // entry whose position no longer holds the pair it was pushed for (ranks are unique per pair)
    // is stale and skipped
    w->nheap = 0;
    for (size_t i = 0; i + 1 < k; i++) bpe_push_pair(b, w, (int)i);
    while (w->nheap) {
        BpeHeapItem it = bpe_heap_pop(w);
        int p = it.pos, q = w->next[p], id = -1;
        if (w->sym[p] < 0 || q < 0 || bpe_rank(b, w->sym[p], w->sym[q], &id) != it.rank) continue;
        w->sym[p] = id;                       // p absorbs q
        w->sym[q] = -1;
        w->next[p] = w->next[q];
        if (w->next[q] >= 0) w->prev[w->next[q]] = p;
        if (w->prev[p] >= 0) bpe_push_pair(b, w, w->prev[p]);
        bpe_push_pair(b, w, p);
    }
    for (int p = 0; p >= 0; p = w->next[p])
        if (bpe_push(out, w->sym[p])) return -1;
    return 0;
}

// Appends the ids of text[0..n) to out. 0, or -1 (out of memory).
static int bpe_encode(const Bpe *b, const uint8_t *text, size_t n, BpeIds *out) {
    BpeWork w = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t k = bpe_piece_len(text + i, n - i);
        rc = bpe_piece(b, text + i, k, &w, out);
        i += k;
    }
    free(w.sym); free(w.next); free(w.prev); free(w.heap);
    return rc;
}

// The bytes of ids[0..n) (malloc'd, NUL-terminated, length in *len), or NULL for an id out of range.
static uint8_t *bpe_decode(const Bpe *b, const int *ids, size_t n, size_t *len) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= b->vocab_size) return NULL;
        total += (size_t)b->len[ids[i]];
    }
    uint8_t *s = malloc(total + 1), *o = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) { memcpy(o, b->bytes[ids[i]], (size_t)b->len[ids[i]]); o += b->len[ids[i]]; }
    *o = 0;
    *len = total;
    return s;
}

// llm.c's tokenizer.bin (version 2) of this vocab: each token's raw bytes, the end-of-text id.
static int bpe_write_tokenizer(const Bpe *b, const char *path, char *err, size_t errlen) {
    return tokenizer_write(path, b->vocab_size, b->eot, (const uint8_t *const *)b->bytes, b->len, err, errlen);
}

#endif // DATA_BPE_H
