/*
llmc/infer.h — inference: one sequence at a time with a key/value cache, sampling, and the
exact-match evaluation of instruction shards (greedy decoding), on a given set of parameters
(the base, or the base with the adapter merged in: merging is exact up to float rounding).
*/
#ifndef LLMC_INFER_H
#define LLMC_INFER_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "utils.h"
#include "model.h"
#include "../kernels/layers_float.h"
#include "../data/dataloader.h"
#include "../data/tasks.h"
#include "dist.h"

typedef struct {
    float *kv;      // (L, maxT, 2C): keys then values of every position so far
    float *x, *xn, *buf3, *att, *h4, *logits;
    int len;        // positions filled
} InferState;

static void infer_init(InferState *s, const GPT2Config *c) {
    size_t C = c->channels;
    s->kv = xcalloc((size_t)c->num_layers * c->max_seq_len * 2 * C, sizeof(float), "kv cache");
    s->x = xcalloc(C, sizeof(float), "infer"); s->xn = xcalloc(C, sizeof(float), "infer");
    s->buf3 = xcalloc(3 * C, sizeof(float), "infer"); s->att = xcalloc(c->max_seq_len, sizeof(float), "infer");
    s->h4 = xcalloc(4 * C, sizeof(float), "infer"); s->logits = xcalloc(c->padded_vocab_size, sizeof(float), "infer");
    s->len = 0;
}
static void infer_free(InferState *s) {
    free(s->kv); free(s->x); free(s->xn); free(s->buf3); free(s->att); free(s->h4); free(s->logits);
    memset(s, 0, sizeof(*s));
}

// y (OC) = W (OC,C) x (C) + b
static void matvec(float *y, const float *W, const float *x, const float *b, int C, int OC) {
    for (int o = 0; o < OC; o++) {
        const float *w = W + (size_t)o * C;
        float acc = b ? b[o] : 0.0f;
        for (int i = 0; i < C; i++) acc += w[i] * x[i];
        y[o] = acc;
    }
}

// Feeds one token at the next position; computes the logits (over V) when want_logits.
static void infer_step(const GPT2Config *c, const ParameterTensors *p, InferState *s, int token, int want_logits) {
    int C = c->channels, NH = c->num_heads, hs = C / NH, pos = s->len;
    for (int i = 0; i < C; i++) s->x[i] = p->wte[(size_t)token * C + i] + p->wpe[(size_t)pos * C + i];
    for (int l = 0; l < c->num_layers; l++) {
        float *kv = s->kv + (size_t)l * c->max_seq_len * 2 * C;
        layernorm_forward(s->xn, NULL, NULL, s->x, p->ln1w + l * C, p->ln1b + l * C, 1, C);
        matvec(s->buf3, p->qkvw + (size_t)l * 3 * C * C, s->xn, p->qkvb + l * 3 * C, C, 3 * C);
        memcpy(kv + (size_t)pos * 2 * C, s->buf3 + C, sizeof(float) * 2 * C);
        float *y = s->h4; // C floats of attention output
        for (int h = 0; h < NH; h++) {
            const float *q = s->buf3 + h * hs;
            float maxv = -INFINITY, sum = 0, scale = 1.0f / sqrtf((float)hs);
            for (int t2 = 0; t2 <= pos; t2++) {
                const float *k = kv + (size_t)t2 * 2 * C + h * hs;
                float d = 0;
                for (int i = 0; i < hs; i++) d += q[i] * k[i];
                s->att[t2] = d * scale;
                if (s->att[t2] > maxv) maxv = s->att[t2];
            }
            for (int t2 = 0; t2 <= pos; t2++) { s->att[t2] = expf(s->att[t2] - maxv); sum += s->att[t2]; }
            for (int i = 0; i < hs; i++) y[h * hs + i] = 0;
            for (int t2 = 0; t2 <= pos; t2++) {
                const float *v = kv + (size_t)t2 * 2 * C + C + h * hs;
                float w = s->att[t2] / sum;
                for (int i = 0; i < hs; i++) y[h * hs + i] += w * v[i];
            }
        }
        matvec(s->xn, p->attprojw + (size_t)l * C * C, y, p->attprojb + l * C, C, C);
        for (int i = 0; i < C; i++) s->x[i] += s->xn[i];
        layernorm_forward(s->xn, NULL, NULL, s->x, p->ln2w + l * C, p->ln2b + l * C, 1, C);
        matvec(s->h4, p->fcw + (size_t)l * 4 * C * C, s->xn, p->fcb + l * 4 * C, C, 4 * C);
        for (int i = 0; i < 4 * C; i++) { float v = s->h4[i]; s->h4[i] = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v))); }
        matvec(s->xn, p->fcprojw + (size_t)l * 4 * C * C, s->h4, p->fcprojb + l * C, 4 * C, C);
        for (int i = 0; i < C; i++) s->x[i] += s->xn[i];
    }
    s->len++;
    if (!want_logits) return;
    layernorm_forward(s->xn, NULL, NULL, s->x, p->lnfw, p->lnfb, 1, C);
    matvec(s->logits, p->wte, s->xn, NULL, C, c->vocab_size);
}

// Picks the next token: argmax when temperature <= 0, else a sample from softmax(logits / temperature).
static int sample_next(const float *logits, int V, float temperature, uint64_t *rng) {
    int best = 0;
    for (int i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    if (temperature <= 0) return best;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((logits[i] - logits[best]) / temperature);
    double r = rng_uniform(rng) * sum, acc = 0;
    for (int i = 0; i < V; i++) { acc += exp((logits[i] - logits[best]) / temperature); if (acc > r) return i; }
    return V - 1;
}

// Generates up to max_new tokens after the prompt into out; stops after emitting a token that ends
// an answer under `stop` (data/tasks.h: EOT or a token with a newline; NULL: never) or at the
// context end. Returns the number of tokens generated.
// The same, also stopping as soon as go_on(out, n, arg) is 0 (when go_on is given).
static int gpt2_generate_while(const GPT2Config *c, const ParameterTensors *p, InferState *s, const int *prompt, int np,
                               int max_new, float temperature, uint64_t *rng, const tasks_vocab *stop, int *out,
                               int (*go_on)(const int *out, int n, const void *arg), const void *arg) {
    s->len = 0;
    if (np <= 0 || np >= c->max_seq_len) return 0;
    for (int i = 0; i < np; i++) infer_step(c, p, s, prompt[i], i == np - 1);
    int n = 0;
    while (n < max_new) {
        int tok = sample_next(s->logits, c->vocab_size, temperature, rng);
        out[n++] = tok;
        if ((stop && tasks_is_stop_v(stop, tok)) || s->len >= c->max_seq_len) break;
        if (go_on && !go_on(out, n, arg)) break;
        infer_step(c, p, s, tok, 1);
    }
    return n;
}
static int gpt2_generate(const GPT2Config *c, const ParameterTensors *p, InferState *s, const int *prompt, int np,
                         int max_new, float temperature, uint64_t *rng, const tasks_vocab *stop, int *out) {
    return gpt2_generate_while(c, p, s, prompt, np, max_new, temperature, rng, stop, out, NULL, NULL);
}

// exact match's early stop: the generation goes on while it can still equal the reference answer
typedef struct { const tasks_vocab *v; const int *answer; int nans; } AnswerPrefix;
static int answer_prefix_ok(const int *out, int n, const void *arg) {
    const AnswerPrefix *a = arg;
    return tasks_prefix_ok_v(a->v, out, n, a->answer, a->nans);
}

// ----------------------------------------------------------------------------
// evaluation and sampling

static void print_sample(GPT2 *m, const Tokenizer *tok, int gen_len, float temperature, uint64_t *rng, float **scratch) {
    GPT2Config c = m->config;
    ParameterTensors p;
    point_parameters(&p, (float *)gpt2_effective_params(m, scratch), m->param_sizes);
    InferState st;
    infer_init(&st, &c);
    int prompt = tok->table ? tok->eot : c.vocab_size - 1;
    int *out = xcalloc((size_t)gen_len + 1, sizeof(int), "sample");
    int n = gpt2_generate(&c, &p, &st, &prompt, 1, gen_len < c.max_seq_len - 1 ? gen_len : c.max_seq_len - 1,
                          temperature, rng, NULL, out);
    printf("generating:\n---\n");
    for (int i = 0; i < n; i++) {
        if (tok->table) tokenizer_print(tok, out[i], stdout);
        else printf("%d ", out[i]);
    }
    printf("\n---\n");
    free(out);
    infer_free(&st);
}

// Exact match under greedy decoding on an instruction shard (with its .lossmask), for any tokenizer:
// each document EOT + prompt + answer is cut at the mask; the model continues EOT + prompt until a
// token with a newline or EOT, and data/tasks.h's scorer compares the text up to the first newline
// with the answer's. tok: the shards' tokenizer (NULL or without a table: tokenizer.bin beside the
// shard, else the byte-level one of the embedded suite, refused for a vocabulary above 257).
// max_examples 0: all; `show` examples are printed. Runs on the effective parameters (adapter
// merged), examples in parallel;
// data parallel (llmc/dist.h), rank r scores examples r, r + world, ... and the scores (and the
// shown generations) are summed over the ranks.
typedef struct {
    int n, correct;
    long generated;   // tokens generated (an example stops as soon as it can no longer match, unless shown)
} EMResult;

// Prints token ids as text: printable bytes as they are, '\n' as \n, EOT as <eot>, others <id>.
static void print_tokens_text(const tasks_vocab *v, const int *t, int n) {
    for (int k = 0; k < n; k++) {
        if (t[k] == v->eot) { printf("<eot>"); continue; }
        size_t len;
        char one[1];
        const char *b = tasks_token_bytes(v, t[k], &len, one);
        if (len == 0) printf("<%d>", t[k]);
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)b[i];
            if (ch == '\n') printf("\\n"); else if (ch >= 32) putchar(ch); else printf("<%d>", t[k]);
        }
    }
}

static int eval_exact_match(GPT2 *m, const Tokenizer *tok, const char *path, int max_examples, int show, float **scratch,
                            EMResult *out, char *err, size_t errlen) {
    EMResult r = {0};
    GPT2Config c = m->config;
    tasks_vocab v = tasks_byte_vocab;
    Tokenizer beside = {0};
    if (!tok || !tok->table) { // tokenizer.bin beside the shard, as jsonl_to_shards.py and make_tasks write it
        char guess[1100];
        snprintf(guess, sizeof(guess), "%s", path);
        char *slash = strrchr(guess, '/');
        snprintf(slash ? slash + 1 : guess, sizeof(guess) - (size_t)(slash ? slash + 1 - guess : 0), "tokenizer.bin");
        if (tokenizer_init(&beside, guess, err, errlen) == 0) tok = &beside;
    }
    if (tok && tok->table) {
        if (tok->vocab_size > c.vocab_size) {
            snprintf(err, errlen, "the tokenizer has %d tokens, the model %d", tok->vocab_size, c.vocab_size);
            tokenizer_free(&beside); return -1;
        }
        v.eot = tok->eot; v.vocab_size = tok->vocab_size; v.text = (const char *const *)tok->table;
    } else if (c.vocab_size > TASKS_VOCAB) {
        snprintf(err, errlen, "the model's vocabulary (%d) is not the byte-level one: give the shards' tokenizer (--tokenizer FILE, "
                 "or tokenizer.bin beside the shards) so the answer's end (newline, EOT) can be found", c.vocab_size);
        return -1;
    } else if (c.vocab_size < TASKS_VOCAB) {
        v.eot = c.vocab_size - 1; // a byte-level model with a smaller vocabulary: its last id ends a text
    }
    Shard sh;
    if (shard_load(&sh, path, c.vocab_size, err, errlen) != 0) { tokenizer_free(&beside); return -1; }
    if (!sh.mask) { snprintf(err, errlen, "%s has no .lossmask beside it: cannot tell prompts from answers", path); shard_free(&sh); tokenizer_free(&beside); return -1; }
    long n = tasks_extract_examples_v(&v, sh.tokens, sh.mask, sh.ntok, NULL, 0);
    if (n < 0) {
        snprintf(err, errlen, "%s: malformed instruction shard for this tokenizer (documents must be EOT %d + prompt + masked "
                 "answer whose first newline is in its last token)", path, v.eot);
        shard_free(&sh); tokenizer_free(&beside); return -1;
    }
    tasks_example *ex = xcalloc((size_t)(n ? n : 1), sizeof(tasks_example), "examples");
    tasks_extract_examples_v(&v, sh.tokens, sh.mask, sh.ntok, ex, n);
    if (max_examples > 0 && n > max_examples) n = max_examples;
    ParameterTensors p;
    point_parameters(&p, (float *)gpt2_effective_params(m, scratch), m->param_sizes);
    // the generation budget: TASKS_MAX_ANSWER tokens, or twice the longest answer (another
    // tokenization of the same text may take more tokens), within the context
    int cap = TASKS_MAX_ANSWER;
    for (long i = 0; i < n; i++) if (2 * ex[i].answer_len + 8 > cap) cap = 2 * ex[i].answer_len + 8;
    if (cap > c.max_seq_len) cap = c.max_seq_len;
    int *ok = xcalloc((size_t)(n ? n : 1), sizeof(int), "scores");
    int *gen = xcalloc((size_t)(n ? n : 1) * cap, sizeof(int), "generations");
    int *ngen = xcalloc((size_t)(n ? n : 1), sizeof(int), "generations");
#pragma omp parallel
    {
        InferState st;
        infer_init(&st, &c);
        int *ctx = xcalloc((size_t)c.max_seq_len + 1, sizeof(int), "context");
        int *ans = xcalloc((size_t)c.max_seq_len + 1, sizeof(int), "answer");
#pragma omp for schedule(dynamic, 4)
        for (long i = 0; i < n; i++) {
            if (i % dist_world() != dist_rank()) continue; // data parallel: another rank's example
            int np = 0;
            ctx[np++] = v.eot;
            for (int k = 0; k < ex[i].prompt_len && np < c.max_seq_len; k++) ctx[np++] = sh.tokens[ex[i].prompt + k];
            int na = ex[i].answer_len < c.max_seq_len ? ex[i].answer_len : c.max_seq_len;
            for (int k = 0; k < na; k++) ans[k] = sh.tokens[ex[i].answer + k];
            int room = c.max_seq_len - np;
            int maxn = room < cap ? room : cap;
            uint64_t rng = 0;
            // a shown example is generated to its end; the others stop where they stop matching (same score)
            AnswerPrefix ap = {&v, ans, na};
            ngen[i] = maxn > 0 ? gpt2_generate_while(&c, &p, &st, ctx, np, maxn, 0.0f, &rng, &v, gen + i * cap,
                                                     i < show ? NULL : answer_prefix_ok, &ap) : 0;
            ok[i] = tasks_exact_match_v(&v, gen + i * cap, ngen[i], ans, na);
        }
        free(ctx); free(ans);
        infer_free(&st);
    }
    long nshow = show < 0 ? 0 : show < n ? show : n;
    dist_allreduce_i32(ok, (size_t)n); // each example was scored on one rank, zeros elsewhere
    dist_allreduce_i32(ngen, (size_t)nshow);
    dist_allreduce_i32(gen, (size_t)cap * nshow);
    dist_allreduce_i32(ngen + nshow, (size_t)(n - nshow));
    for (long i = 0; i < n; i++) {
        r.n++;
        r.correct += ok[i];
        r.generated += ngen[i];
        if (i < show) {
            printf("  [%s] ", ok[i] ? "ok" : "xx");
            int *pt = xcalloc((size_t)ex[i].prompt_len + 1, sizeof(int), "prompt");
            for (int k = 0; k < ex[i].prompt_len; k++) pt[k] = sh.tokens[ex[i].prompt + k];
            print_tokens_text(&v, pt, ex[i].prompt_len);
            free(pt);
            printf(" -> ");
            print_tokens_text(&v, gen + i * cap, ngen[i]);
            printf("\n");
        }
    }
    free(ok); free(gen); free(ngen); free(ex);
    shard_free(&sh);
    tokenizer_free(&beside);
    *out = r;
    return 0;
}

#endif // LLMC_INFER_H
