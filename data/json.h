/*
data/json.h — a strict JSON parser (RFC 8259) for the files this project reads from outside:
PEFT's adapter_config.json, Hugging Face's config.json, GPT-2's vocab.json / encoder.json, JSONL
lines, and the safetensors header.

    Json j;
    if (json_parse(text, n, &j, err, sizeof(err)) != 0) ...;   // err says what and at which byte
    const JVal *root = &j.v[0];                                  // values in one array, linked
    const JVal *v = json_get(&j, root, "n_layer");               // member of an object, or NULL
    const char *dup = json_check_unique(&j, root);               // a duplicated member name, or NULL
    json_free(&j);
    json_write_string(f, s);                                     // s as a JSON string literal

Strict: no trailing commas, no comments, no leading zeros, no control characters or invalid
UTF-8 in strings, no lone surrogates, no \u0000, nesting at most JSON_MAX_DEPTH, nothing but
whitespace after the value. Fuzzed by dev/fuzz/fuzz_peft.c (which 0).
*/
#ifndef DATA_JSON_H
#define DATA_JSON_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static int json_cmp_keyp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static const char *json_check_unique(const Json *j, const JVal *o) {
    if (o->nkids <= 16) {
        for (int a = o->first; a >= 0; a = j->v[a].next)
            for (int b = j->v[a].next; b >= 0; b = j->v[b].next)
                if (strcmp(j->v[a].key, j->v[b].key) == 0) return j->v[a].key;
        return NULL;
    }
    // large objects (vocab.json has 50,257 members): sort the names, compare neighbours
    char **keys = malloc(sizeof(char *) * (size_t)o->nkids);
    if (!keys) return "(out of memory)";
    int n = 0;
    for (int a = o->first; a >= 0; a = j->v[a].next) keys[n++] = j->v[a].key;
    qsort(keys, (size_t)n, sizeof(char *), json_cmp_keyp);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++) if (strcmp(keys[i - 1], keys[i]) == 0) dup = keys[i];
    free(keys);
    return dup;
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


#endif // DATA_JSON_H
