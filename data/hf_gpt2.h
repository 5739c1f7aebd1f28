/*
data/hf_gpt2.h — Hugging Face GPT-2 folders in and out: config.json + model.safetensors (+ the
tokenizer's vocab.json and merges.txt), in llm.c's parameter layout.

    HFConfig c; float *params;
    if (hf_read_gpt2("gpt2_dir", &c, &params, err, sizeof(err)) != 0) ...;  // params: malloc'd
    hf_write_gpt2("out_dir", &c, params, tokenizer_dir_or_NULL, &copied, err, sizeof(err));
    size_t n = hf_num_params(&c);                                           // llm.c's 16 tensors

params is llm.c's layout (METHODS.md §5): the 16 tensors wte (Vp, C), wpe (maxT, C), ln1w, ln1b
(L, C), qkvw (L, 3C, C), qkvb (L, 3C), attprojw (L, C, C), attprojb, ln2w, ln2b (L, C), fcw
(L, 4C, C), fcb (L, 4C), fcprojw (L, C, 4C), fcprojb, lnfw, lnfb (C), one after the other; the
vocab padded to Vp = V rounded up to a multiple of 64 (50257 -> 50304) with zero rows.

Reading (as strict as the llm.c checkpoint reader; every failure names the file and the problem):
  config.json   n_layer, n_head, n_embd, n_positions, vocab_size: integers, required. Refused when
                present with another value: model_type (gpt2), activation_function (gelu_new, or
                gelu_pytorch_tanh: the same tanh formula), layer_norm_epsilon (1e-5), n_inner (null
                or 4 n_embd), scale_attn_weights (true), scale_attn_by_inverse_layer_idx (false),
                add_cross_attention (false), tie_word_embeddings (true). Other keys are ignored.
  model.safetensors  GPT2LMHeadModel's names, all with or all without the "transformer." prefix:
                wte.weight (V, C), wpe.weight (n_positions, C), h.{l}.ln_1.{weight,bias},
                h.{l}.attn.c_attn.{weight (C, 3C), bias}, h.{l}.attn.c_proj.{weight (C, C), bias},
                h.{l}.ln_2.*, h.{l}.mlp.c_fc.{weight (C, 4C), bias}, h.{l}.mlp.c_proj.{weight (4C, C),
                bias}, ln_f.*; F32, F16 or BF16 each, finite. Conv1D weights are stored (in, out) and
                transposed to llm.c's (out, in). Every tensor exactly once; an unknown name is refused.
                Old files' attention buffers h.{l}.attn.bias (1, 1, n_positions, n_positions) and
                h.{l}.attn.masked_bias (a scalar) are accepted and ignored (any dtype).
                lm_head.weight: GPT-2 ties it to wte (save_pretrained leaves it out). When present
                it must equal wte value for value; an untied head is refused (llm.c has none).
Writing (what GPT2LMHeadModel.from_pretrained loads): config.json (architectures
  ["GPT2LMHeadModel"], model_type gpt2, the shape keys, activation_function gelu_new,
  layer_norm_epsilon 1e-5, GPT-2's dropouts 0.1, bos/eos = V - 1: GPT-2's 50256 and the byte
  tokenizer's 256), model.safetensors (F32, {"format": "pt"}, "transformer." names, the vocab
  unpadded, no lm_head: tied), and vocab.json + merges.txt copied from tokenizer_dir when it holds
  them (either naming; checked by data/bpe.h's loader, and its vocab must be the model's). Each
  file atomically (a temporary name, then a rename), config.json last.
*/
#ifndef DATA_HF_GPT2_H
#define DATA_HF_GPT2_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "bpe.h"
#include "dataloader.h"
#include "json.h"
#include "safetensors.h"

typedef struct {
    int max_seq_len;       // n_positions
    int vocab_size;        // V
    int padded_vocab_size; // Vp: V rounded up to a multiple of 64
    int num_layers;        // L
    int num_heads;         // NH
    int channels;          // C
} HFConfig;

#define HF_NUM_TENSORS 16

static void hf_param_sizes(const HFConfig *c, size_t s[HF_NUM_TENSORS]) {
    size_t Vp = (size_t)c->padded_vocab_size, C = (size_t)c->channels, T = (size_t)c->max_seq_len, L = (size_t)c->num_layers;
    size_t v[HF_NUM_TENSORS] = {Vp * C, T * C, L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C,
                                L * C, L * C, L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C, C, C};
    memcpy(s, v, sizeof(v));
}

static size_t hf_num_params(const HFConfig *c) {
    size_t s[HF_NUM_TENSORS], n = 0;
    hf_param_sizes(c, s);
    for (int i = 0; i < HF_NUM_TENSORS; i++) n += s[i];
    return n;
}

// The per-layer tensors of GPT-2: HF's name after "h.{l}.", llm.c's tensor index, the shape HF
// stores (rows, cols; cols 0: 1-D) in units of C, and whether it is a Conv1D weight (transposed).
typedef struct { const char *name; int param; int rows, cols; int conv; } HFLayerTensor;
static const HFLayerTensor hf_layer_tensors[12] = {
    {"ln_1.weight", 2, 1, 0, 0},        {"ln_1.bias", 3, 1, 0, 0},
    {"attn.c_attn.weight", 4, 1, 3, 1}, {"attn.c_attn.bias", 5, 3, 0, 0},
    {"attn.c_proj.weight", 6, 1, 1, 1}, {"attn.c_proj.bias", 7, 1, 0, 0},
    {"ln_2.weight", 8, 1, 0, 0},        {"ln_2.bias", 9, 1, 0, 0},
    {"mlp.c_fc.weight", 10, 1, 4, 1},   {"mlp.c_fc.bias", 11, 4, 0, 0},
    {"mlp.c_proj.weight", 12, 4, 1, 1}, {"mlp.c_proj.bias", 13, 1, 0, 0},
};

// ----------------------------------------------------------------------------
// reading

// "h.{l}.REST" -> l and REST, or -1
static int hf_parse_layer(const char *name, int *l, const char **rest) {
    if (strncmp(name, "h.", 2) != 0) return -1;
    const char *p = name + 2;
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] != '.')) return -1;
    long v = 0;
    while (*p >= '0' && *p <= '9') { v = v * 10 + (*p - '0'); if (v > 100000) return -1; p++; }
    if (*p != '.') return -1;
    *l = (int)v; *rest = p + 1;
    return 0;
}

static int hf_config_int(const Json *j, const JVal *root, const char *key, int lo, int hi, int *out, const char *path, char *err, size_t errlen) {
    const JVal *v = json_get(j, root, key);
    if (!v) { snprintf(err, errlen, "%s: missing \"%s\"", path, key); return -1; }
    if (v->type != J_NUM || !v->is_int || v->ival < lo || v->ival > hi) {
        snprintf(err, errlen, "%s: \"%s\" must be an integer in %d..%d", path, key, lo, hi);
        return -1;
    }
    *out = (int)v->ival;
    return 0;
}

// Reads and checks config.json (see the top of the file).
static int hf_read_config(const char *path, HFConfig *c, char *err, size_t errlen) {
    memset(c, 0, sizeof(*c));
    size_t n;
    char *text = read_whole_file(path, &n, err, errlen), jerr[256];
    if (!text) return -1;
    Json j;
    int rc = -1;
    if (json_parse(text, n, &j, jerr, sizeof(jerr))) { snprintf(err, errlen, "%s: %s", path, jerr); free(text); return -1; }
    free(text);
    const JVal *root = &j.v[0], *v;
#define HC_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto done; } while (0)
    if (root->type != J_OBJ) HC_FAIL("%s: not a JSON object", path);
    const char *dup = json_check_unique(&j, root);
    if (dup) HC_FAIL("%s: duplicate key \"%s\"", path, dup);
    if (hf_config_int(&j, root, "n_layer", 1, 1024, &c->num_layers, path, err, errlen) ||
        hf_config_int(&j, root, "n_head", 1, 1 << 16, &c->num_heads, path, err, errlen) ||
        hf_config_int(&j, root, "n_embd", 1, 1 << 16, &c->channels, path, err, errlen) ||
        hf_config_int(&j, root, "n_positions", 1, 1 << 20, &c->max_seq_len, path, err, errlen) ||
        hf_config_int(&j, root, "vocab_size", 1, 1 << 24, &c->vocab_size, path, err, errlen)) goto done;
    if (c->channels % c->num_heads) HC_FAIL("%s: n_embd %d is not a multiple of n_head %d", path, c->channels, c->num_heads);
    c->padded_vocab_size = (c->vocab_size + 63) / 64 * 64;
    if ((v = json_get(&j, root, "model_type")) && (v->type != J_STR || strcmp(v->str, "gpt2")))
        HC_FAIL("%s: model_type must be \"gpt2\"", path);
    if ((v = json_get(&j, root, "activation_function")) &&
        (v->type != J_STR || (strcmp(v->str, "gelu_new") && strcmp(v->str, "gelu_pytorch_tanh"))))
        HC_FAIL("%s: activation_function must be \"gelu_new\" (GPT-2's tanh GELU, the one this trainer computes)%s%s", path,
                v->type == J_STR ? ", not " : "", v->type == J_STR ? v->str : "");
    if ((v = json_get(&j, root, "layer_norm_epsilon")) && (v->type != J_NUM || fabs(v->num - 1e-5) > 1e-12))
        HC_FAIL("%s: layer_norm_epsilon must be 1e-05 (the trainer's layernorm)", path);
    if ((v = json_get(&j, root, "n_inner")) && v->type != J_NULL && !(v->type == J_NUM && v->is_int && v->ival == 4LL * c->channels))
        HC_FAIL("%s: n_inner must be null or 4 * n_embd = %d", path, 4 * c->channels);
    static const char *bools[4] = {"scale_attn_weights", "scale_attn_by_inverse_layer_idx", "add_cross_attention", "tie_word_embeddings"};
    static const int want[4] = {J_TRUE, J_FALSE, J_FALSE, J_TRUE};
    for (int k = 0; k < 4; k++)
        if ((v = json_get(&j, root, bools[k])) && v->type != want[k])
            HC_FAIL("%s: %s must be %s (the only GPT-2 this trainer computes)", path, bools[k], want[k] == J_TRUE ? "true" : "false");
    rc = 0;
done:
#undef HC_FAIL
    json_free(&j);
    return rc;
}

// Converts tensor t (float dtype, shape rows x cols; cols 0: a vector of rows) into out, transposed
// when conv (HF's (in, out) -> llm.c's (out, in)). Checks dtype, shape and values.
static int hf_take(const StFile *st, const StTensor *t, const char *path, int64_t rows, int64_t cols, int conv,
                   float *out, float *scratch, char *err, size_t errlen) {
    int ndim = cols ? 2 : 1;
    if (t->dtype >= ST_NUM_FLOAT_DTYPES) { snprintf(err, errlen, "%s: tensor '%s' has dtype %s (F32, F16 or BF16 accepted)", path, t->name, st_dtype_names[t->dtype]); return -1; }
    if (t->ndim != ndim || t->shape[0] != rows || (cols && t->shape[1] != cols)) {
        char got[128] = "", want[64];
        for (int d = 0; d < t->ndim && strlen(got) < 100; d++) snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (cols) snprintf(want, sizeof(want), "%lld, %lld", (long long)rows, (long long)cols);
        else snprintf(want, sizeof(want), "%lld", (long long)rows);
        snprintf(err, errlen, "%s: tensor '%s' has shape [%s], expected [%s]", path, t->name, got, want);
        return -1;
    }
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    if (st_to_float(st, t, conv ? scratch : out, n)) { snprintf(err, errlen, "%s: tensor '%s' holds a NaN or Inf", path, t->name); return -1; }
    if (conv)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t o = 0; o < cols; o++) out[(size_t)o * (size_t)rows + (size_t)i] = scratch[(size_t)i * (size_t)cols + (size_t)o];
    return 0;
}

static int hf_read_gpt2(const char *dir, HFConfig *c, float **params_out, char *err, size_t errlen) {
    *params_out = NULL;
    size_t dl = strlen(dir);
    char *cpath = malloc(dl + 32), *spath = malloc(dl + 32);
    StFile st = {0};
    float *params = NULL, *scratch = NULL;
    uint8_t *seen = NULL;
    int rc = -1;
#define HR_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto done; } while (0)
    if (!cpath || !spath) HR_FAIL("%s: out of memory", dir);
    snprintf(cpath, dl + 32, "%s/config.json", dir);
    snprintf(spath, dl + 32, "%s/model.safetensors", dir);
    if (hf_read_config(cpath, c, err, errlen)) goto done;
    if (st_read(spath, &st, err, errlen)) goto done;
    int L = c->num_layers, C = c->channels, V = c->vocab_size, T = c->max_seq_len;
    size_t sizes[HF_NUM_TENSORS], off[HF_NUM_TENSORS], total = 0;
    hf_param_sizes(c, sizes);
    for (int i = 0; i < HF_NUM_TENSORS; i++) { off[i] = total; total += sizes[i]; }
    // every parameter takes at least 2 bytes: a file too small for the config is refused before
    // anything of the config's size is allocated
    size_t need = total - (size_t)(c->padded_vocab_size - V) * (size_t)C;
    if (need > st.size / 2) HR_FAIL("%s: %zu bytes cannot hold the %zu parameters config.json describes (truncated, or the wrong config)", spath, st.size, need);
    params = calloc(total, sizeof(float));                   // the padded rows of wte stay 0
    scratch = malloc(sizeof(float) * 4 * (size_t)C * (size_t)C);
    seen = calloc((size_t)L * 12 + 4, 1);                    // per-layer tensors, then wte wpe ln_f.weight ln_f.bias
    if (!params || !scratch || !seen) HR_FAIL("%s: out of memory (%zu parameters)", dir, total);
    const StTensor *lm_head = NULL;
    int prefixed = -1;
    for (int i = 0; i < st.n; i++) {
        const StTensor *t = &st.t[i];
        const char *name = t->name;
        if (strcmp(name, "lm_head.weight") == 0) { lm_head = t; continue; }
        int has = strncmp(name, "transformer.", 12) == 0;
        if (prefixed >= 0 && has != prefixed) HR_FAIL("%s: tensor '%s': names mix with and without the \"transformer.\" prefix", spath, name);
        prefixed = has;
        if (has) name += 12;
        int l, slot = -1;
        const char *rest;
        if (strcmp(name, "wte.weight") == 0) {
            slot = L * 12;
            if (hf_take(&st, t, spath, V, C, 0, params + off[0], scratch, err, errlen)) goto done;
        } else if (strcmp(name, "wpe.weight") == 0) {
            slot = L * 12 + 1;
            if (hf_take(&st, t, spath, T, C, 0, params + off[1], scratch, err, errlen)) goto done;
        } else if (strcmp(name, "ln_f.weight") == 0 || strcmp(name, "ln_f.bias") == 0) {
            int b = name[5] == 'b';
            slot = L * 12 + 2 + b;
            if (hf_take(&st, t, spath, C, 0, 0, params + off[14 + b], scratch, err, errlen)) goto done;
        } else if (hf_parse_layer(name, &l, &rest) == 0) {
            if (l >= L) HR_FAIL("%s: tensor '%s' is for layer %d, config.json has n_layer %d", spath, t->name, l, L);
            if (strcmp(rest, "attn.bias") == 0 || strcmp(rest, "attn.masked_bias") == 0) {  // old files' buffers
                int mask = rest[5] == 'b';
                int ok = mask ? t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == 1 && t->shape[2] == T && t->shape[3] == T
                              : t->ndim == 0 || (t->ndim == 1 && t->shape[0] == 1);
                if (!ok) HR_FAIL("%s: buffer '%s' has an unexpected shape", spath, t->name);
                continue;
            }
            for (int k = 0; k < 12 && slot < 0; k++) {
                const HFLayerTensor *lt = &hf_layer_tensors[k];
                if (strcmp(rest, lt->name)) continue;
                slot = l * 12 + k;
                size_t per = sizes[lt->param] / (size_t)L;
                if (hf_take(&st, t, spath, (int64_t)lt->rows * C, (int64_t)lt->cols * C, lt->conv,
                            params + off[lt->param] + (size_t)l * per, scratch, err, errlen)) goto done;
            }
        }
        if (slot < 0) HR_FAIL("%s: unknown tensor '%s' (not a GPT2LMHeadModel name)", spath, t->name);
        seen[slot] = 1;
    }
    for (int s = 0; s < L * 12 + 4; s++) {
        if (seen[s]) continue;
        const char *p = prefixed == 0 ? "" : "transformer.";
        if (s >= L * 12) {
            static const char *top[4] = {"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"};
            HR_FAIL("%s: missing tensor %s%s", spath, p, top[s - L * 12]);
        }
        HR_FAIL("%s: missing tensor %sh.%d.%s", spath, p, s / 12, hf_layer_tensors[s % 12].name);
    }
    if (lm_head) {  // tied: must be wte
        float *h = malloc(sizeof(float) * (size_t)V * (size_t)C);
        if (!h) HR_FAIL("%s: out of memory", spath);
        if (hf_take(&st, lm_head, spath, V, C, 0, h, scratch, err, errlen)) { free(h); goto done; }
        int same = memcmp(h, params + off[0], sizeof(float) * (size_t)V * (size_t)C) == 0;
        free(h);
        if (!same) HR_FAIL("%s: lm_head.weight differs from wte.weight: an untied LM head is not supported (GPT-2 ties them, as llm.c does)", spath);
    }
    *params_out = params;
    params = NULL;
    rc = 0;
done:
#undef HR_FAIL
    st_free(&st);
    free(params); free(scratch); free(seen); free(cpath); free(spath);
    return rc;
}

// ----------------------------------------------------------------------------
// writing

static int hf_mkdir(const char *dir, char *err, size_t errlen) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) { snprintf(err, errlen, "%s: cannot create directory (%s)", dir, strerror(errno)); return -1; }
    struct stat s;
    if (stat(dir, &s) != 0 || !S_ISDIR(s.st_mode)) { snprintf(err, errlen, "%s: not a directory", dir); return -1; }
    return 0;
}

// Copies src to dst atomically.
static int hf_copy_file(const char *src, const char *dst, char *err, size_t errlen) {
    size_t n;
    void *buf = read_whole_file(src, &n, err, errlen);
    if (!buf) return -1;
    const void *parts[1] = {buf};
    size_t lens[1] = {n};
    int rc = write_chunks_atomic(dst, parts, lens, 1, err, errlen);
    free(buf);
    return rc;
}

static int hf_write_gpt2(const char *dir, const HFConfig *c, const float *params, const char *tokenizer_dir,
                         int *tokenizer_copied, char *err, size_t errlen) {
    if (tokenizer_copied) *tokenizer_copied = 0;
    int L = c->num_layers, C = c->channels;
    if (L <= 0 || C <= 0 || c->num_heads <= 0 || c->vocab_size <= 0 || c->padded_vocab_size < c->vocab_size || c->max_seq_len <= 0) {
        snprintf(err, errlen, "%s: bad model shape", dir); return -1;
    }
    if (hf_mkdir(dir, err, errlen)) return -1;
    size_t dl = strlen(dir), cap = dl + (tokenizer_dir ? strlen(tokenizer_dir) : 0) + 64;
    char *path = malloc(cap), *v = malloc(cap), *m = malloc(cap), *names = malloc((size_t)(L * 12 + 4) * 64);
    size_t sizes[HF_NUM_TENSORS], off[HF_NUM_TENSORS], total = 0, nconv = 0;
    hf_param_sizes(c, sizes);
    for (int i = 0; i < HF_NUM_TENSORS; i++) { off[i] = total; total += sizes[i]; }
    nconv = sizes[4] + sizes[6] + sizes[10] + sizes[12];
    float *conv = malloc(sizeof(float) * nconv);
    StOut *t = calloc((size_t)(L * 12 + 4), sizeof(StOut));
    int rc = -1;
    Bpe b = {0};
    if (!path || !v || !m || !names || !conv || !t) { snprintf(err, errlen, "%s: out of memory", dir); goto done; }
    // 1. the tokenizer, when the run knows it
    if (tokenizer_dir && bpe_find_files(tokenizer_dir, v, m, cap) == 0) {
        if (bpe_load(&b, v, m, err, errlen)) goto done;
        if (b.vocab_size != c->vocab_size) {
            snprintf(err, errlen, "%s: its %d tokens are not the model's vocab_size %d: not copied into %s", v, b.vocab_size, c->vocab_size, dir);
            goto done;
        }
        snprintf(path, cap, "%s/vocab.json", dir);
        if (hf_copy_file(v, path, err, errlen)) goto done;
        snprintf(path, cap, "%s/merges.txt", dir);
        if (hf_copy_file(m, path, err, errlen)) goto done;
        if (tokenizer_copied) *tokenizer_copied = 1;
    }
    // 2. the tensors, GPT2LMHeadModel's state_dict order, Conv1D weights back to (in, out)
    int nt = 0;
    float *cp = conv;
#define HF_ADD(nm_fmt, lyr, data_, r, cl) do { \
        StOut *o_ = &t[nt]; char *nm_ = names + (size_t)nt * 64; snprintf(nm_, 64, nm_fmt, lyr); \
        o_->name = nm_; o_->data = (data_); o_->shape[0] = (r); o_->shape[1] = (cl); o_->ndim = (cl) ? 2 : 1; nt++; } while (0)
    HF_ADD("transformer.wte.weight%.0d", 0, params + off[0], c->vocab_size, C);
    HF_ADD("transformer.wpe.weight%.0d", 0, params + off[1], c->max_seq_len, C);
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 12; k++) {
            const HFLayerTensor *lt = &hf_layer_tensors[k];
            size_t per = sizes[lt->param] / (size_t)L;
            const float *src = params + off[lt->param] + (size_t)l * per;
            int64_t rows = (int64_t)lt->rows * C, cols = (int64_t)lt->cols * C;  // HF's shape
            char fmt[64];
            snprintf(fmt, sizeof(fmt), "transformer.h.%%d.%s", lt->name);
            if (lt->conv) {  // llm.c (out = cols, in = rows) -> HF (in, out)
                for (int64_t i = 0; i < rows; i++)
                    for (int64_t o = 0; o < cols; o++) cp[(size_t)i * (size_t)cols + (size_t)o] = src[(size_t)o * (size_t)rows + (size_t)i];
                HF_ADD(fmt, l, cp, rows, cols);
                cp += per;
            } else HF_ADD(fmt, l, src, rows, 0);
        }
    HF_ADD("transformer.ln_f.weight%.0d", 0, params + off[14], C, 0);
    HF_ADD("transformer.ln_f.bias%.0d", 0, params + off[15], C, 0);
#undef HF_ADD
    snprintf(path, cap, "%s/model.safetensors", dir);
    if (st_write(path, t, nt, err, errlen)) goto done;
    // 3. config.json, last: a folder with it is complete
    char cfg[2048];
    int len = snprintf(cfg, sizeof(cfg),
        "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n"
        "  \"vocab_size\": %d,\n  \"n_positions\": %d,\n  \"n_ctx\": %d,\n  \"n_embd\": %d,\n  \"n_layer\": %d,\n  \"n_head\": %d,\n"
        "  \"n_inner\": null,\n  \"activation_function\": \"gelu_new\",\n  \"layer_norm_epsilon\": 1e-05,\n"
        "  \"resid_pdrop\": 0.1,\n  \"embd_pdrop\": 0.1,\n  \"attn_pdrop\": 0.1,\n  \"initializer_range\": 0.02,\n"
        "  \"scale_attn_weights\": true,\n  \"scale_attn_by_inverse_layer_idx\": false,\n  \"reorder_and_upcast_attn\": false,\n"
        "  \"tie_word_embeddings\": true,\n  \"use_cache\": true,\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n"
        "  \"torch_dtype\": \"float32\"\n}\n",
        c->vocab_size, c->max_seq_len, c->max_seq_len, C, L, c->num_heads, c->vocab_size - 1, c->vocab_size - 1);
    const void *parts[1] = {cfg};
    size_t lens[1] = {(size_t)len};
    snprintf(path, cap, "%s/config.json", dir);
    if (write_chunks_atomic(path, parts, lens, 1, err, errlen)) goto done;
    rc = 0;
done:
    bpe_free(&b);
    free(path); free(v); free(m); free(names); free(conv); free(t);
    return rc;
}

#endif // DATA_HF_GPT2_H
