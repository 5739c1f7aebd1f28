/*
lora/peft.h — Hugging Face PEFT interop for GPT-2 LoRA adapters (lora/METHODS.md §6): one writer, one reader.

    peft_export(ad, dir, base_model_name, err, errlen)    writes dir/adapter_config.json and
                                                          dir/adapter_model.safetensors (F32)
    peft_import(ad, dir, L, C, err, errlen)               reads them back into a fresh LoRA Adapter
    st_read(path, &file, err, errlen) / st_free(&file)    the strict safetensors reader (F32/F16/BF16)
    json_parse(text, n, &json, err, errlen)               the strict JSON parser both use

What PEFT does with GPT-2 (checked in peft/tuners/lora/layer.py): for a transformers Conv1D (weight
(in, out)) it takes in_features, out_features = weight.shape and builds lora_A = nn.Linear(in, r),
lora_B = nn.Linear(r, out), so lora_A.weight is (r, in) and lora_B.weight is (out, r): the same
layout as our A and B, no transpose. fan_in_fan_out only transposes delta = B A when PEFT merges
it into the (in, out) Conv1D weight. Output feature j of c_attn (column j of HF's Conv1D weight)
is row j of llm.c's qkvw (3C, C), [q; k; v]: the same order, so B's rows map one to one.
Scale: PEFT's lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora, like ours.
Keys:  base_model.model.transformer.h.{l}.{attn.c_attn | attn.c_proj | mlp.c_fc | mlp.c_proj}.lora_{A,B}.weight
target_modules: "c_attn", "attn.c_proj", "c_fc", "mlp.c_proj" (PEFT matches a list entry against the
end of the module name after a dot, so a bare "c_proj" would select both projections).
A LoRI adapter exports as plain LoRA (B is stored dense; its masked entries are 0). A PLoRA adapter
exports its current stage only: earlier stages are folded into the base checkpoint, which must then
be the base PEFT loads onto.

Import accepts what PEFT writes for GPT-2: the four module kinds above, any layer subset
(layers_to_transform; modules without keys stay A = B = 0, contributing nothing), one rank for
all (rank_pattern / alpha_pattern must be empty), no DoRA, no bias, no modules_to_save.
*/
#ifndef LORA_PEFT_H
#define LORA_PEFT_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../llmc/utils.h"
#include "adapter.h"
#include "adapter_file.h"
#include <sys/stat.h>

// ----------------------------------------------------------------------------
// a strict JSON parser (RFC 8259): objects, arrays, strings with escapes, numbers, true/false/null.
// Values live in one array; children are linked (first, next). Strict: no trailing commas, no
// comments, no leading zeros, no control characters or invalid UTF-8 in strings, no lone
// surrogates, no \u0000, nesting at most JSON_MAX_DEPTH, nothing but whitespace after the value.

enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };
#define JSON_MAX_DEPTH 32

typedef struct {
    int type;
    int first, next;     // first child, next sibling: indices into Json.v, -1 = none
    int nkids;
    char *key;           // member name (objects' children), NUL-terminated
    char *str;           // J_STR: decoded, NUL-terminated
    double num;          // J_NUM
    int is_int;          // J_NUM without fraction or exponent that fits int64
    long long ival;
} JVal;

typedef struct {
    JVal *v;
    int n, cap;
    const char *p, *end; // parser state
    char *err; size_t errlen;
    const char *start;
} Json;

static void json_free(Json *j) {
    for (int i = 0; i < j->n; i++) { free(j->v[i].key); free(j->v[i].str); }
    free(j->v);
    memset(j, 0, sizeof(*j));
}

static int json_fail(Json *j, const char *what) {
    snprintf(j->err, j->errlen, "JSON error at byte %ld: %s", (long)(j->p - j->start), what);
    return -1;
}

static int json_new(Json *j, int type) {
    if (j->n == j->cap) {
        int cap = j->cap ? 2 * j->cap : 64;
        JVal *nv = realloc(j->v, sizeof(JVal) * (size_t)cap);
        if (!nv) return -1;
        j->v = nv; j->cap = cap;
    }
    JVal *v = &j->v[j->n];
    memset(v, 0, sizeof(*v));
    v->type = type; v->first = v->next = -1;
    return j->n++;
}

static void json_ws(Json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int json_hex4(Json *j, unsigned *out) {
    if (j->end - j->p < 4) return json_fail(j, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return json_fail(j, "bad hex digit in \\u escape");
    }
    j->p += 4;
    *out = v;
    return 0;
}

// Length of a valid UTF-8 sequence at p (strict: no overlongs, no surrogates, <= U+10FFFF), or 0.
static int json_utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || end - p < n) return 0;
    unsigned cp = n == 1 ? c : n == 2 ? c & 31 : n == 3 ? c & 15 : c & 7;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 63);
    }
    static const unsigned minv[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < minv[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

// Parses a string at j->p (on the opening quote) into a fresh NUL-terminated buffer.
static int json_string(Json *j, char **out) {
    j->p++;
    const char *s = j->p;
    while (s < j->end && *s != '"') s += (*s == '\\' && s + 1 < j->end) ? 2 : 1;  // a bound for the decoded length
    char *buf = malloc((size_t)(s - j->p) + 1), *o = buf;
    if (!buf) return json_fail(j, "out of memory");
    for (;;) {
        if (j->p >= j->end) { free(buf); return json_fail(j, "unterminated string"); }
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') { j->p++; break; }
        if (c < 0x20) { free(buf); return json_fail(j, "control character in string"); }
        if (c == '\\') {
            if (j->end - j->p < 2) { free(buf); return json_fail(j, "truncated escape"); }
            char e = j->p[1];
            j->p += 2;
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) { *o++ = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]; continue; }
            if (e != 'u') { free(buf); return json_fail(j, "bad escape"); }
            unsigned cp;
            if (json_hex4(j, &cp)) { free(buf); return -1; }
            if (cp >= 0xDC00 && cp <= 0xDFFF) { free(buf); return json_fail(j, "lone low surrogate"); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u') { free(buf); return json_fail(j, "lone high surrogate"); }
                j->p += 2;
                if (json_hex4(j, &lo)) { free(buf); return -1; }
                if (lo < 0xDC00 || lo > 0xDFFF) { free(buf); return json_fail(j, "bad surrogate pair"); }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) { free(buf); return json_fail(j, "\\u0000 is not accepted"); }
            // \uXXXX is 6 input bytes (12 for a pair), its UTF-8 at most 4: fits the bound
            if (cp < 0x80) *o++ = (char)cp;
            else if (cp < 0x800) { *o++ = (char)(0xC0 | (cp >> 6)); *o++ = (char)(0x80 | (cp & 63)); }
            else if (cp < 0x10000) { *o++ = (char)(0xE0 | (cp >> 12)); *o++ = (char)(0x80 | ((cp >> 6) & 63)); *o++ = (char)(0x80 | (cp & 63)); }
            else { *o++ = (char)(0xF0 | (cp >> 18)); *o++ = (char)(0x80 | ((cp >> 12) & 63)); *o++ = (char)(0x80 | ((cp >> 6) & 63)); *o++ = (char)(0x80 | (cp & 63)); }
            continue;
        }
        int n = json_utf8_len((const unsigned char *)j->p, (const unsigned char *)j->end);
        if (!n) { free(buf); return json_fail(j, "invalid UTF-8 in string"); }
        memcpy(o, j->p, (size_t)n); o += n; j->p += n;
    }
    *o = 0;
    *out = buf;
    return 0;
}

static int json_number(Json *j, int idx) {
    const char *s = j->p;
    int is_int = 1;
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p >= j->end) return json_fail(j, "truncated number");
    if (*j->p == '0') j->p++;
    else if (*j->p >= '1' && *j->p <= '9') while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    else return json_fail(j, "bad number");
    if (j->p < j->end && *j->p == '.') {
        is_int = 0; j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return json_fail(j, "digit expected after '.'");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        is_int = 0; j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return json_fail(j, "digit expected in exponent");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    char tmp[64];
    size_t len = (size_t)(j->p - s);
    if (len >= sizeof(tmp)) return json_fail(j, "number too long");
    memcpy(tmp, s, len); tmp[len] = 0;
    JVal *v = &j->v[idx];
    v->num = strtod(tmp, NULL);
    if (!isfinite(v->num)) return json_fail(j, "number out of range");
    if (is_int) {
        errno = 0;
        long long x = strtoll(tmp, NULL, 10);
        if (errno == 0) { v->is_int = 1; v->ival = x; }
    }
    return 0;
}

static int json_value(Json *j, int depth) {
    json_ws(j);
    if (j->p >= j->end) return json_fail(j, "value expected");
    if (depth > JSON_MAX_DEPTH) return json_fail(j, "nesting too deep");
    char c = *j->p;
    int idx;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        if ((idx = json_new(j, obj ? J_OBJ : J_ARR)) < 0) return json_fail(j, "out of memory");
        j->p++;
        json_ws(j);
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) { j->p++; return idx; }
        int last = -1;
        for (;;) {
            char *key = NULL;
            if (obj) {
                json_ws(j);
                if (j->p >= j->end || *j->p != '"') return json_fail(j, "member name expected");
                if (json_string(j, &key)) return -1;
                json_ws(j);
                if (j->p >= j->end || *j->p != ':') { free(key); return json_fail(j, "':' expected"); }
                j->p++;
            }
            int k = json_value(j, depth + 1);
            if (k < 0) { free(key); return -1; }
            j->v[k].key = key;
            if (last < 0) j->v[idx].first = k; else j->v[last].next = k;
            last = k;
            j->v[idx].nkids++;
            json_ws(j);
            if (j->p >= j->end) return json_fail(j, "unterminated object or array");
            if (*j->p == ',') { j->p++; continue; }
            if (*j->p == (obj ? '}' : ']')) { j->p++; return idx; }
            return json_fail(j, obj ? "',' or '}' expected" : "',' or ']' expected");
        }
    }
    if (c == '"') {
        char *s;
        if (json_string(j, &s)) return -1;
        if ((idx = json_new(j, J_STR)) < 0) { free(s); return json_fail(j, "out of memory"); }
        j->v[idx].str = s;
        return idx;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        if ((idx = json_new(j, J_NUM)) < 0) return json_fail(j, "out of memory");
        return json_number(j, idx) ? -1 : idx;
    }
    static const char *lit[3] = {"null", "false", "true"};
    for (int t = 0; t < 3; t++) {
        size_t n = strlen(lit[t]);
        if ((size_t)(j->end - j->p) >= n && memcmp(j->p, lit[t], n) == 0) {
            j->p += n;
            if ((idx = json_new(j, J_NULL + t)) < 0) return json_fail(j, "out of memory");
            return idx;
        }
    }
    return json_fail(j, "unexpected character");
}

// Parses text[0..n) into j (root is j->v[0]). 0, or -1 with a message.
static int json_parse(const char *text, size_t n, Json *j, char *err, size_t errlen) {
    memset(j, 0, sizeof(*j));
    j->p = j->start = text; j->end = text + n; j->err = err; j->errlen = errlen;
    if (json_value(j, 0) < 0) { json_free(j); return -1; }
    json_ws(j);
    if (j->p != j->end) { json_fail(j, "trailing characters after the JSON value"); json_free(j); return -1; }
    return 0;
}

// Member `key` of object o, or NULL. Duplicate names: json_check_unique refuses them first.
static const JVal *json_get(const Json *j, const JVal *o, const char *key) {
    if (!o || o->type != J_OBJ) return NULL;
    for (int k = o->first; k >= 0; k = j->v[k].next) if (strcmp(j->v[k].key, key) == 0) return &j->v[k];
    return NULL;
}
static const char *json_check_unique(const Json *j, const JVal *o) {
    for (int a = o->first; a >= 0; a = j->v[a].next)
        for (int b = j->v[a].next; b >= 0; b = j->v[b].next)
            if (strcmp(j->v[a].key, j->v[b].key) == 0) return j->v[a].key;
    return NULL;
}

// Writes s as a JSON string literal (quotes and escapes) to f.
static void json_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

// ----------------------------------------------------------------------------
// safetensors: 8-byte little-endian header length N, N bytes of JSON, then the data

#define ST_MAX_HEADER (100u << 20)
#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    int dtype;            // 0 F32, 1 F16, 2 BF16
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end;  // byte offsets relative to the data start
} StTensor;

typedef struct {
    uint8_t *buf;         // the whole file
    size_t size;
    const uint8_t *data;  // buf + 8 + N
    int n;
    StTensor *t;
} StFile;

static const char *st_dtype_names[3] = {"F32", "F16", "BF16"};
static const int st_dtype_size[3] = {4, 2, 2};

static void st_free(StFile *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t); free(f->buf);
    memset(f, 0, sizeof(*f));
}

static int st_cmp_begin(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

// Parses and validates the header of an in-memory safetensors file (buf is taken over, freed on error).
static int st_parse(uint8_t *buf, size_t size, const char *path, StFile *f, char *err, size_t errlen) {
    memset(f, 0, sizeof(*f));
    char jerr[256];
#define ST_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); json_free(&j); st_free(f); return -1; } while (0)
    Json j = {0};
    f->buf = buf; f->size = size;
    if (size < 8) ST_FAIL("%s: too short for a safetensors file (%zu bytes)", path, size);
    uint64_t N;
    memcpy(&N, buf, 8);
    if (N < 2 || N > ST_MAX_HEADER) ST_FAIL("%s: bad safetensors header length %llu", path, (unsigned long long)N);
    if (N > size - 8) ST_FAIL("%s: safetensors header length %llu runs past the end of the file (%zu bytes)", path, (unsigned long long)N, size);
    if (buf[8] != '{') ST_FAIL("%s: safetensors header does not start with '{'", path);
    if (json_parse((const char *)buf + 8, (size_t)N, &j, jerr, sizeof(jerr))) ST_FAIL("%s: safetensors header: %s", path, jerr);
    const JVal *root = &j.v[0];
    if (root->type != J_OBJ) ST_FAIL("%s: safetensors header is not a JSON object", path);
    const char *dup = json_check_unique(&j, root);
    if (dup) ST_FAIL("%s: duplicate tensor name '%s'", path, dup);
    f->data = buf + 8 + N;
    uint64_t datalen = size - 8 - N;
    f->t = calloc((size_t)root->nkids + 1, sizeof(StTensor));
    if (!f->t) ST_FAIL("%s: out of memory", path);
    for (int k = root->first; k >= 0; k = j.v[k].next) {
        const JVal *e = &j.v[k];
        if (strcmp(e->key, "__metadata__") == 0) {
            if (e->type != J_OBJ) ST_FAIL("%s: __metadata__ is not an object", path);
            for (int m = e->first; m >= 0; m = j.v[m].next)
                if (j.v[m].type != J_STR) ST_FAIL("%s: __metadata__ value '%s' is not a string", path, j.v[m].key);
            continue;
        }
        if (e->type != J_OBJ) ST_FAIL("%s: entry '%s' is not an object", path, e->key);
        if (e->nkids != 3 || json_check_unique(&j, e)) ST_FAIL("%s: tensor '%s' must have exactly dtype, shape, data_offsets", path, e->key);
        const JVal *dt = json_get(&j, e, "dtype"), *sh = json_get(&j, e, "shape"), *of = json_get(&j, e, "data_offsets");
        if (!dt || !sh || !of) ST_FAIL("%s: tensor '%s' must have exactly dtype, shape, data_offsets", path, e->key);
        StTensor *t = &f->t[f->n];
        if (dt->type != J_STR) ST_FAIL("%s: tensor '%s': dtype is not a string", path, e->key);
        t->dtype = -1;
        for (int d = 0; d < 3; d++) if (strcmp(dt->str, st_dtype_names[d]) == 0) t->dtype = d;
        if (t->dtype < 0) ST_FAIL("%s: tensor '%s': unsupported dtype '%s' (F32, F16, BF16 accepted)", path, e->key, dt->str);
        if (sh->type != J_ARR || sh->nkids > ST_MAX_DIMS) ST_FAIL("%s: tensor '%s': shape must be an array of at most %d integers", path, e->key, ST_MAX_DIMS);
        uint64_t count = 1;
        for (int d = sh->first; d >= 0; d = j.v[d].next) {
            const JVal *x = &j.v[d];
            if (x->type != J_NUM || !x->is_int || x->ival < 0 || x->ival > ((int64_t)1 << 40)) ST_FAIL("%s: tensor '%s': bad shape entry", path, e->key);
            t->shape[t->ndim++] = x->ival;
            count *= (uint64_t)x->ival;
            if (count > ((uint64_t)1 << 40)) ST_FAIL("%s: tensor '%s': too many elements", path, e->key);
        }
        if (of->type != J_ARR || of->nkids != 2) ST_FAIL("%s: tensor '%s': data_offsets must be [begin, end]", path, e->key);
        const JVal *b0 = &j.v[of->first], *b1 = &j.v[j.v[of->first].next];
        if (b0->type != J_NUM || !b0->is_int || b0->ival < 0 || b1->type != J_NUM || !b1->is_int || b1->ival < b0->ival)
            ST_FAIL("%s: tensor '%s': bad data_offsets", path, e->key);
        t->begin = (uint64_t)b0->ival; t->end = (uint64_t)b1->ival;
        if (t->end - t->begin != count * (uint64_t)st_dtype_size[t->dtype])
            ST_FAIL("%s: tensor '%s': data_offsets span %llu bytes, shape and dtype need %llu", path, e->key,
                    (unsigned long long)(t->end - t->begin), (unsigned long long)(count * (uint64_t)st_dtype_size[t->dtype]));
        t->name = malloc(strlen(e->key) + 1);
        if (!t->name) ST_FAIL("%s: out of memory", path);
        strcpy(t->name, e->key);
        f->n++;
    }
    // contiguous, no holes, no overlap, and exactly the rest of the file
    StTensor **order = malloc(sizeof(StTensor *) * ((size_t)f->n + 1));
    if (!order) ST_FAIL("%s: out of memory", path);
    for (int i = 0; i < f->n; i++) order[i] = &f->t[i];
    qsort(order, (size_t)f->n, sizeof(StTensor *), st_cmp_begin);
    uint64_t pos = 0;
    for (int i = 0; i < f->n; i++) {
        if (order[i]->begin != pos) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s: tensor '%s' starts at byte %llu of the data, expected %llu (%s)", path, order[i]->name,
                     (unsigned long long)order[i]->begin, (unsigned long long)pos, order[i]->begin > pos ? "a hole before it" : "it overlaps the previous one");
            free(order);
            ST_FAIL("%s", msg);
        }
        pos = order[i]->end;
    }
    free(order);
    if (pos != datalen) ST_FAIL("%s: 8 + header %llu + data %llu != file size %zu (%s)", path, (unsigned long long)N,
                                (unsigned long long)pos, size, pos < datalen ? "trailing bytes" : "truncated");
    json_free(&j);
#undef ST_FAIL
    return 0;
}

static int st_read(const char *path, StFile *f, char *err, size_t errlen) {
    memset(f, 0, sizeof(*f));
    size_t size;
    uint8_t *buf = read_whole_file(path, &size, err, errlen);
    if (!buf) return -1;
    return st_parse(buf, size, path, f, err, errlen);
}

static const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->n; i++) if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

static float st_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 0) {
        if (m == 0) bits = sign;
        else {  // subnormal: normalise
            e = 113;
            while (!(m & 1024)) { m <<= 1; e--; }
            bits = sign | (e << 23) | ((m & 1023) << 13);
        }
    } else if (e == 31) bits = sign | 0x7F800000u | (m << 13);
    else bits = sign | ((e + 112) << 23) | (m << 13);
    float x; memcpy(&x, &bits, 4);
    return x;
}

// Copies tensor t into out (count floats), converting F16/BF16. -1 if a value is not finite.
static int st_to_float(const StFile *f, const StTensor *t, float *out, size_t count) {
    const uint8_t *p = f->data + t->begin;
    for (size_t i = 0; i < count; i++) {
        if (t->dtype == 0) memcpy(&out[i], p + 4 * i, 4);
        else {
            uint16_t h; memcpy(&h, p + 2 * i, 2);
            if (t->dtype == 1) out[i] = st_half_to_float(h);
            else { uint32_t bits = (uint32_t)h << 16; memcpy(&out[i], &bits, 4); }
        }
        if (!isfinite(out[i])) return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// GPT-2 module names

static const char *peft_module_names[NUM_TARGETS] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
static const char *peft_target_modules[NUM_TARGETS] = {"c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"};
#define PEFT_KEY_PREFIX "base_model.model.transformer.h."

// Parses "base_model.model.transformer.h.{l}.{module}.lora_{A,B}.weight". 0 with (l, t, isB), or -1.
static int peft_parse_key(const char *key, int *l, int *t, int *isB) {
    size_t np = strlen(PEFT_KEY_PREFIX);
    if (strncmp(key, PEFT_KEY_PREFIX, np) != 0) return -1;
    const char *p = key + np;
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] != '.')) return -1;
    long v = 0;
    while (*p >= '0' && *p <= '9') { v = v * 10 + (*p - '0'); if (v > 100000) return -1; p++; }
    if (*p++ != '.') return -1;
    for (int k = 0; k < NUM_TARGETS; k++) {
        size_t n = strlen(peft_module_names[k]);
        if (strncmp(p, peft_module_names[k], n) != 0) continue;
        const char *q = p + n;
        if (strcmp(q, ".lora_A.weight") == 0) { *l = (int)v; *t = k; *isB = 0; return 0; }
        if (strcmp(q, ".lora_B.weight") == 0) { *l = (int)v; *t = k; *isB = 1; return 0; }
    }
    return -1;
}

// Does PEFT's target_modules list entry e select module t in every layer? PEFT's rule for a list:
// the module's full name ("transformer.h.{l}.attn.c_attn") equals e or ends with "." + e; the entries
// that hold for every layer are the dot-suffixes of "attn.c_attn" etc. ("c_attn", "attn.c_attn").
static int peft_entry_selects(const char *e, int t) {
    const char *m = peft_module_names[t];
    size_t n = strlen(e), k = strlen(m);
    if (n == k) return strcmp(e, m) == 0;
    return n < k && m[k - n - 1] == '.' && strcmp(m + (k - n), e) == 0;
}

// ----------------------------------------------------------------------------
// export

static int peft_mkdir(const char *dir, char *err, size_t errlen) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) { snprintf(err, errlen, "%s: cannot create directory (%s)", dir, strerror(errno)); return -1; }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) { snprintf(err, errlen, "%s: not a directory", dir); return -1; }
    return 0;
}

// Writes a JSON number for a float so that parsing it back gives the same float.
static void peft_write_float(FILE *f, float x) {
    if (x == floorf(x) && fabsf(x) < 1e7f) fprintf(f, "%d", (int)x);
    else fprintf(f, "%.9g", (double)x);
}

static int peft_export(const Adapter *ad, const char *dir, const char *base_model_name, char *err, size_t errlen) {
    if (peft_mkdir(dir, err, errlen)) return -1;
    size_t dl = strlen(dir);
    char *path = malloc(dl + 64);
    if (!path) { snprintf(err, errlen, "out of memory"); return -1; }
    // the safetensors header
    char *hdr = NULL; size_t hlen = 0;
    FILE *h = open_memstream(&hdr, &hlen);
    if (!h) { free(path); snprintf(err, errlen, "out of memory"); return -1; }
    fprintf(h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int s = 0; s < ad->nslots; s++) {
        int l = ad->slot_layer[s], t = ad->slot_target[s], r = ad->cfg.rank;
        for (int isB = 0; isB < 2; isB++) {
            int rows = isB ? ad->slot_out[s] : r, cols = isB ? r : ad->slot_in[s];
            uint64_t bytes = 4ull * (uint64_t)rows * (uint64_t)cols;
            fprintf(h, ",\"%s%d.%s.lora_%c.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%llu,%llu]}",
                    PEFT_KEY_PREFIX, l, peft_module_names[t], isB ? 'B' : 'A', rows, cols,
                    (unsigned long long)off, (unsigned long long)(off + bytes));
            off += bytes;
        }
    }
    fputc('}', h);
    fclose(h);
    size_t padded = (hlen + 7) / 8 * 8;
    char *hp = realloc(hdr, padded);
    if (!hp) { free(hdr); free(path); snprintf(err, errlen, "out of memory"); return -1; }
    hdr = hp;
    memset(hdr + hlen, ' ', padded - hlen);
    uint64_t N = padded;
    int np = 2 + 2 * ad->nslots;
    const void **parts = malloc(sizeof(void *) * (size_t)np);
    size_t *lens = malloc(sizeof(size_t) * (size_t)np);
    if (!parts || !lens) { free(parts); free(lens); free(hdr); free(path); snprintf(err, errlen, "out of memory"); return -1; }
    parts[0] = &N; lens[0] = 8;
    parts[1] = hdr; lens[1] = padded;
    for (int s = 0; s < ad->nslots; s++) {
        parts[2 + 2 * s] = adapter_A(ad, s); lens[2 + 2 * s] = sizeof(float) * (size_t)ad->cfg.rank * ad->slot_in[s];
        parts[3 + 2 * s] = adapter_B(ad, s); lens[3 + 2 * s] = sizeof(float) * (size_t)ad->slot_out[s] * ad->cfg.rank;
    }
    snprintf(path, dl + 64, "%s/adapter_model.safetensors", dir);
    int rc = write_chunks_atomic(path, parts, lens, np, err, errlen);
    free(parts); free(lens); free(hdr);
    if (rc) { free(path); return -1; }
    // the config
    char *cfg = NULL; size_t clen = 0;
    FILE *c = open_memstream(&cfg, &clen);
    if (!c) { free(path); snprintf(err, errlen, "out of memory"); return -1; }
    fprintf(c, "{\n  \"peft_type\": \"LORA\",\n  \"task_type\": \"CAUSAL_LM\",\n  \"base_model_name_or_path\": ");
    json_write_string(c, base_model_name ? base_model_name : "gpt2");
    fprintf(c, ",\n  \"r\": %d,\n  \"lora_alpha\": ", ad->cfg.rank);
    peft_write_float(c, ad->cfg.alpha);
    fprintf(c, ",\n  \"use_rslora\": %s,\n  \"lora_dropout\": ", ad->cfg.rslora ? "true" : "false");
    peft_write_float(c, ad->cfg.dropout);
    fprintf(c, ",\n  \"target_modules\": [");
    int first = 1;
    for (int t = 0; t < NUM_TARGETS; t++)
        if ((ad->cfg.targets >> t) & 1) { fprintf(c, "%s\"%s\"", first ? "" : ", ", peft_target_modules[t]); first = 0; }
    fprintf(c, "],\n  \"fan_in_fan_out\": true,\n  \"bias\": \"none\",\n  \"use_dora\": false,\n"
               "  \"init_lora_weights\": true,\n  \"inference_mode\": true,\n  \"modules_to_save\": null,\n"
               "  \"layers_to_transform\": null,\n  \"rank_pattern\": {},\n  \"alpha_pattern\": {}\n}\n");
    fclose(c);
    const void *cp[1] = {cfg};
    size_t cl[1] = {clen};
    snprintf(path, dl + 64, "%s/adapter_config.json", dir);
    rc = write_chunks_atomic(path, cp, cl, 1, err, errlen);
    free(cfg); free(path);
    return rc;
}

// ----------------------------------------------------------------------------
// import

static int peft_import(Adapter *ad, const char *dir, int L, int C, char *err, size_t errlen) {
    memset(ad, 0, sizeof(*ad));
    if (L <= 0 || L > 1024 || C <= 0) { snprintf(err, errlen, "peft_import: bad base shape L=%d C=%d", L, C); return -1; }
    size_t dl = strlen(dir);
    char *cpath = malloc(dl + 64), *spath = malloc(dl + 64), jerr[256];
    if (!cpath || !spath) { free(cpath); free(spath); snprintf(err, errlen, "out of memory"); return -1; }
    snprintf(cpath, dl + 64, "%s/adapter_config.json", dir);
    snprintf(spath, dl + 64, "%s/adapter_model.safetensors", dir);
    Json j = {0};
    StFile st = {0};
    size_t n;
    char *text = NULL;
#define PI_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)
    text = read_whole_file(cpath, &n, err, errlen);
    if (!text) goto fail;
    if (json_parse(text, n, &j, jerr, sizeof(jerr))) PI_FAIL("%s: %s", cpath, jerr);
    const JVal *root = &j.v[0];
    if (root->type != J_OBJ) PI_FAIL("%s: not a JSON object", cpath);
    const char *dup = json_check_unique(&j, root);
    if (dup) PI_FAIL("%s: duplicate key '%s'", cpath, dup);
    const JVal *v;
    if (!(v = json_get(&j, root, "peft_type")) || v->type != J_STR || strcmp(v->str, "LORA") != 0) PI_FAIL("%s: peft_type must be \"LORA\"", cpath);
    AdapterConfig cfg = {.kind = ADAPTER_LORA, .init = INIT_KAIMING};
    if (!(v = json_get(&j, root, "r")) || v->type != J_NUM || !v->is_int || v->ival < 1 || v->ival > C) PI_FAIL("%s: r must be an integer in 1..%d", cpath, C);
    cfg.rank = (int)v->ival;
    if (!(v = json_get(&j, root, "lora_alpha")) || v->type != J_NUM || !(v->num > 0)) PI_FAIL("%s: lora_alpha must be a number > 0", cpath);
    cfg.alpha = (float)v->num;
    if ((v = json_get(&j, root, "use_rslora")) && v->type != J_TRUE && v->type != J_FALSE) PI_FAIL("%s: use_rslora must be true or false", cpath);
    cfg.rslora = v && v->type == J_TRUE;
    if ((v = json_get(&j, root, "lora_dropout")) && (v->type != J_NUM || !(v->num >= 0 && v->num < 1))) PI_FAIL("%s: lora_dropout must be in [0,1)", cpath);
    cfg.dropout = v ? (float)v->num : 0.0f;
    if ((v = json_get(&j, root, "fan_in_fan_out")) && v->type != J_TRUE && v->type != J_FALSE) PI_FAIL("%s: fan_in_fan_out must be true or false", cpath);
    if ((v = json_get(&j, root, "bias")) && (v->type != J_STR || strcmp(v->str, "none") != 0)) PI_FAIL("%s: bias must be \"none\" (bias training is not supported)", cpath);
    if ((v = json_get(&j, root, "use_dora")) && v->type != J_FALSE) PI_FAIL("%s: DoRA adapters (use_dora) are not supported", cpath);
    if ((v = json_get(&j, root, "lora_bias")) && v->type != J_FALSE) PI_FAIL("%s: lora_bias is not supported", cpath);
    if ((v = json_get(&j, root, "modules_to_save")) && v->type != J_NULL && !(v->type == J_ARR && v->nkids == 0))
        PI_FAIL("%s: modules_to_save is not supported", cpath);
    const char *pats[2] = {"rank_pattern", "alpha_pattern"};
    for (int i = 0; i < 2; i++)
        if ((v = json_get(&j, root, pats[i])) && v->type != J_NULL && !(v->type == J_OBJ && v->nkids == 0))
            PI_FAIL("%s: %s is not supported (one rank and alpha for all modules)", cpath, pats[i]);
    // the layer set
    uint8_t layer_on[1024];
    memset(layer_on, 1, sizeof(layer_on));
    if ((v = json_get(&j, root, "layers_to_transform")) && v->type != J_NULL) {
        memset(layer_on, 0, sizeof(layer_on));
        if (v->type == J_NUM) {
            if (!v->is_int || v->ival < 0 || v->ival >= L) PI_FAIL("%s: layers_to_transform %g outside 0..%d", cpath, v->num, L - 1);
            layer_on[v->ival] = 1;
        } else if (v->type == J_ARR) {
            for (int k = v->first; k >= 0; k = j.v[k].next) {
                const JVal *x = &j.v[k];
                if (x->type != J_NUM || !x->is_int || x->ival < 0 || x->ival >= L) PI_FAIL("%s: layers_to_transform entry outside 0..%d", cpath, L - 1);
                layer_on[x->ival] = 1;
            }
        } else PI_FAIL("%s: layers_to_transform must be null, an integer or a list", cpath);
    }
    // target_modules: a list is checked against the keys; a string (a regex, or "all-linear") is not evaluated
    int list_targets = -1;
    if (!(v = json_get(&j, root, "target_modules")) || (v->type != J_ARR && v->type != J_STR)) PI_FAIL("%s: target_modules must be a list or a string", cpath);
    if (v->type == J_ARR) {
        list_targets = 0;
        for (int k = v->first; k >= 0; k = j.v[k].next) {
            if (j.v[k].type != J_STR) PI_FAIL("%s: target_modules entries must be strings", cpath);
            int sel = 0;
            for (int t = 0; t < NUM_TARGETS; t++) if (peft_entry_selects(j.v[k].str, t)) sel |= 1 << t;
            if (!sel) PI_FAIL("%s: target_modules entry '%s' selects none of GPT-2's c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj", cpath, j.v[k].str);
            list_targets |= sel;
        }
    }
    // the tensors
    if (st_read(spath, &st, err, errlen)) goto fail;
    uint8_t seen[1024][NUM_TARGETS][2];
    memset(seen, 0, sizeof(seen));
    int targets = 0;
    for (int i = 0; i < st.n; i++) {
        int l, t, isB;
        if (peft_parse_key(st.t[i].name, &l, &t, &isB)) PI_FAIL("%s: unknown tensor '%s' (expected %s{l}.{attn.c_attn|attn.c_proj|mlp.c_fc|mlp.c_proj}.lora_{A|B}.weight)", spath, st.t[i].name, PEFT_KEY_PREFIX);
        if (l >= L) PI_FAIL("%s: tensor '%s' is for layer %d, the base model has %d layers", spath, st.t[i].name, l, L);
        if (!layer_on[l]) PI_FAIL("%s: tensor '%s' is for layer %d, outside layers_to_transform", spath, st.t[i].name, l);
        if (list_targets >= 0 && !((list_targets >> t) & 1)) PI_FAIL("%s: tensor '%s' is for a module not in target_modules", spath, st.t[i].name);
        seen[l][t][isB] = 1;
        targets |= 1 << t;
    }
    if (list_targets >= 0) targets = list_targets;
    if (!targets) PI_FAIL("%s: no LoRA tensors", spath);
    for (int l = 0; l < L; l++)
        for (int t = 0; t < NUM_TARGETS; t++) {
            int expect = list_targets >= 0 ? (layer_on[l] && ((targets >> t) & 1)) : (seen[l][t][0] || seen[l][t][1]);
            for (int isB = 0; isB < 2; isB++)
                if (expect && !seen[l][t][isB]) PI_FAIL("%s: missing tensor %s%d.%s.lora_%c.weight", spath, PEFT_KEY_PREFIX, l, peft_module_names[t], isB ? 'B' : 'A');
        }
    cfg.targets = targets;
    if (adapter_create(ad, &cfg, L, C, err, errlen)) goto fail;
    memset(ad->params, 0, sizeof(float) * (ad->nA + ad->nB));  // modules without tensors contribute nothing
    for (int i = 0; i < st.n; i++) {
        int l, t, isB;
        peft_parse_key(st.t[i].name, &l, &t, &isB);
        int s = ad->slot_of[l][t], r = cfg.rank;
        int64_t rows = isB ? ad->slot_out[s] : r, cols = isB ? r : ad->slot_in[s];
        const StTensor *te = &st.t[i];
        if (te->ndim != 2 || te->shape[0] != rows || te->shape[1] != cols)
            PI_FAIL("%s: tensor '%s' has shape [%lld%s%lld], expected [%lld, %lld]", spath, te->name,
                    te->ndim > 0 ? (long long)te->shape[0] : -1LL, te->ndim == 2 ? ", " : (te->ndim > 2 ? ", ..., " : "?"),
                    te->ndim > 1 ? (long long)te->shape[te->ndim - 1] : -1LL, (long long)rows, (long long)cols);
        float *dst = isB ? adapter_B(ad, s) : adapter_A(ad, s);
        if (st_to_float(&st, te, dst, (size_t)(rows * cols))) PI_FAIL("%s: tensor '%s' holds a NaN or Inf", spath, te->name);
    }
    json_free(&j); st_free(&st); free(text); free(cpath); free(spath);
#undef PI_FAIL
    return 0;
fail:
    json_free(&j); st_free(&st); free(text); free(cpath); free(spath);
    if (ad->params) adapter_free(ad);
    return -1;
}

#endif // LORA_PEFT_H
