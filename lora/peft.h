/*
lora/peft.h — Hugging Face PEFT interop for GPT-2 LoRA adapters (lora/METHODS.md §6): one writer, one reader.

    peft_export(ad, dir, base_model_name, err, errlen)    writes dir/adapter_config.json and
                                                          dir/adapter_model.safetensors (F32)
    peft_import(ad, dir, L, C, err, errlen)               reads them back into a fresh LoRA Adapter
The JSON parser (data/json.h) and the safetensors reader and writer (data/safetensors.h) are
shared with the Hugging Face model folders (data/hf_gpt2.h).

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

#include "../data/json.h"
#include "../data/safetensors.h"

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

static int peft_export_flat(const Adapter *ad, const char *dir, const char *base_model_name, char *err, size_t errlen) {
    if (peft_mkdir(dir, err, errlen)) return -1;
    size_t dl = strlen(dir);
    char *path = malloc(dl + 64);
    if (!path) { snprintf(err, errlen, "out of memory"); return -1; }
    // the tensors: A (r, in) and B (out, r) of every slot, in slot order
    int nt = 2 * ad->nslots;
    StOut *ts = calloc((size_t)nt + 1, sizeof(StOut));
    char *names = malloc((size_t)nt * 96 + 1);
    if (!ts || !names) { free(ts); free(names); free(path); snprintf(err, errlen, "out of memory"); return -1; }
    for (int s = 0; s < ad->nslots; s++) {
        int l = ad->slot_layer[s], tg = ad->slot_target[s], r = ad->cfg.rank;
        for (int isB = 0; isB < 2; isB++) {
            StOut *o = &ts[2 * s + isB];
            char *name = names + (size_t)(2 * s + isB) * 96;
            snprintf(name, 96, "%s%d.%s.lora_%c.weight", PEFT_KEY_PREFIX, l, peft_module_names[tg], isB ? 'B' : 'A');
            o->name = name;
            o->ndim = 2;
            o->shape[0] = isB ? ad->slot_out[s] : r;
            o->shape[1] = isB ? r : ad->slot_in[s];
            o->data = isB ? adapter_B(ad, s) : adapter_A(ad, s);
        }
    }
    snprintf(path, dl + 64, "%s/adapter_model.safetensors", dir);
    int rc = st_write(path, ts, nt, err, errlen);
    free(ts); free(names);
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

// Writes ad as a PEFT LoRA folder. A PLoRA adapter with a history exports as its exact LoRA on the
// original base (adapter_flatten_stages: rank (stages) x r, scale 1), or is refused with a message
// naming the merged model when that rank is above the layer width.
static int peft_export(const Adapter *ad, const char *dir, const char *base_model_name, char *err, size_t errlen) {
    if (ad->nhist == 0) return peft_export_flat(ad, dir, base_model_name, err, errlen);
    Adapter flat;
    if (adapter_flatten_stages(ad, &flat, err, errlen) != 0) return -1;
    int rc = peft_export_flat(&flat, dir, base_model_name, err, errlen);
    adapter_free(&flat);
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
        if (te->dtype >= ST_NUM_FLOAT_DTYPES) PI_FAIL("%s: tensor '%s' has dtype %s (F32, F16 or BF16 accepted)", spath, te->name, st_dtype_names[te->dtype]);
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
