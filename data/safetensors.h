/*
data/safetensors.h — the safetensors format (METHODS.md §6): one strict reader, one writer, for
PEFT adapters (lora/peft.h) and Hugging Face model folders (data/hf_gpt2.h).

    StFile f;
    if (st_read(path, &f, err, sizeof(err)) != 0) ...;   // the whole file, header validated
    const StTensor *t = st_find(&f, "wte.weight");        // by name, or NULL
    st_to_float(&f, t, out, count);                       // F32 / F16 / BF16 -> float, -1 if not finite
    st_free(&f);

    StOut w[] = {{"wte.weight", {V, C}, 2, wte}, ...};    // F32 tensors, in file order
    st_write(path, w, n, err, sizeof(err));               // atomic: path.tmp, fsync, rename

Layout: 8-byte little-endian header length N, N bytes of JSON ({"name": {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {"format": "pt"}}, padded with spaces to a multiple
of 8), then the data. The reader checks every entry's dtype, shape and offsets, that the tensors
are contiguous with no holes or overlaps, and that 8 + N + data equals the file size. It accepts
every dtype safetensors defines (so a file may carry integer or bool buffers a caller ignores);
st_to_float converts the three float types only. Little-endian hosts only.
*/
#ifndef DATA_SAFETENSORS_H
#define DATA_SAFETENSORS_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dataloader.h"   // read_whole_file, write_parts_atomic
#include "json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors files are little-endian; this reader/writer assumes a little-endian host"
#endif


#define ST_MAX_HEADER (100u << 20)
#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    int dtype;            // index into st_dtype_names: 0 F32, 1 F16, 2 BF16 (the float types), others
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

// every dtype of the safetensors format; the first three are the ones st_to_float converts
enum { ST_F32, ST_F16, ST_BF16, ST_NUM_FLOAT_DTYPES };
#define ST_NUM_DTYPES 14
static const char *st_dtype_names[ST_NUM_DTYPES] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8",
                                                    "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3"};
static const int st_dtype_size[ST_NUM_DTYPES] = {4, 2, 2, 8, 8, 4, 2, 1, 8, 4, 2, 1, 1, 1};

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
        for (int d = 0; d < ST_NUM_DTYPES; d++) if (strcmp(dt->str, st_dtype_names[d]) == 0) t->dtype = d;
        if (t->dtype < 0) ST_FAIL("%s: tensor '%s': unknown dtype '%s'", path, e->key, dt->str);
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

// Copies tensor t into out (count floats), converting F16/BF16. -1 if t is not of a float type
// or a value is not finite (callers check the dtype first when they want to say which).
static int st_to_float(const StFile *f, const StTensor *t, float *out, size_t count) {
    if (t->dtype >= ST_NUM_FLOAT_DTYPES) return -1;
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
// the writer: F32 tensors, {"format": "pt"} metadata (what transformers' from_pretrained expects)

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data;    // prod(shape) floats
} StOut;

// Writes the n tensors, in this order, to path atomically. 0, or -1 + err.
static int st_write(const char *path, const StOut *t, int n, char *err, size_t errlen) {
    char *hdr = NULL;
    size_t hlen = 0;
    FILE *h = open_memstream(&hdr, &hlen);
    if (!h) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    fprintf(h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    const void **parts = malloc(sizeof(void *) * ((size_t)n + 2));
    size_t *lens = malloc(sizeof(size_t) * ((size_t)n + 2));
    if (!parts || !lens) { fclose(h); free(hdr); free(parts); free(lens); snprintf(err, errlen, "%s: out of memory", path); return -1; }
    for (int i = 0; i < n; i++) {
        uint64_t count = 1;
        fputc(',', h);
        json_write_string(h, t[i].name);
        fprintf(h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) { fprintf(h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]); count *= (uint64_t)t[i].shape[d]; }
        fprintf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + 4 * count));
        parts[2 + i] = t[i].data;
        lens[2 + i] = (size_t)(4 * count);
        off += 4 * count;
    }
    fputc('}', h);
    fclose(h);
    size_t padded = (hlen + 7) / 8 * 8;
    char *hp = realloc(hdr, padded ? padded : 8);
    if (!hp) { free(hdr); free(parts); free(lens); snprintf(err, errlen, "%s: out of memory", path); return -1; }
    hdr = hp;
    memset(hdr + hlen, ' ', padded - hlen);
    uint64_t N = padded;
    parts[0] = &N; lens[0] = 8;
    parts[1] = hdr; lens[1] = padded;
    int rc = write_chunks_atomic(path, parts, lens, n + 2, err, errlen);
    free(hdr); free(parts); free(lens);
    return rc;
}

#endif // DATA_SAFETENSORS_H
