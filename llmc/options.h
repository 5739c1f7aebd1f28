/*
llmc/options.h — the training configuration and the command line: one table of options (llm.c's
short flags where it has them), their defaults, the parser and the validation. Every trainer binary,
CPU and GPU, parses the same table.
*/
#ifndef LLMC_OPTIONS_H
#define LLMC_OPTIONS_H

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../lora/adapter.h"
#include "optim.h"

#ifndef DEFAULT_ADAPTER
#define DEFAULT_ADAPTER "none"
#endif


typedef struct {
    char model[1024];        // -e: llm.c checkpoint file, Hugging Face GPT-2 folder, or a descriptor (d12, L=4,C=128,...)
    char train_pattern[1024];// -i
    char val_pattern[1024];  // -j
    char output_dir[1024];   // -o
    char tokenizer[1024];
    int B, T, total_batch, max_steps;
    float lr;
    int warmup;
    float final_frac;
    char schedule[32];
    float weight_decay;
    int val_every, val_batches, sample_every, gen_len, ckpt_every, resume;
    float grad_clip;
    int seed, threads, shuffle;
    float temperature;
    // adapters
    char adapter[16];
    int rank;
    float alpha;
    int rslora;
    float dropout;
    char targets[128];
    char init[16];
    int adapter_seed;
    char lori_init[16];
    float sparsity;
    char mask[1024];         // model|layer|matrix|random|FILE
    char lori_stage[8];      // d|s|ds
    float lori_lr_d, lori_lr_s;
    int lori_steps_s;
    int lori_new_a;
    int plora_every;
    float plora_momentum;
    char plora_schedule[16]; // stage|global
    char plora_mode[16];     // sqrt|writeup: what an unload with momentum keeps (lora/adapter.h)
    float beta1, beta2, eps; // AdamW
    char merge_out[1024];
    char adapter_in[1024];
    char dump_logits[1024];
    int ref_kernels;
    char nan_policy[16];     // stop|skip
    int print_every;         // progress line every N steps
    char eval_em[2048];      // comma-separated test shards (with .lossmask) scored by exact match
    int eval_examples;       // examples per exact-match shard (0: all)
    int eval_show;           // examples printed per exact-match shard
    int stop_at;             // stop after this global step as if interrupted (saves a resumable state)
    int zero;                // ZeRO stage: 0, or 1 (data-parallel full fine-tuning: AdamW's moments sharded)
    char export_hf[1024];    // write the model, adapter folded in, as a Hugging Face GPT-2 folder
    char export_peft[1024];  // write the adapter as a Hugging Face PEFT LoRA folder
    char import_peft[1024];  // start from a PEFT LoRA folder (GPT-2 keys)
    unsigned char given[128];// parse_args: 1 for every option given on the command line (options[] order)
} TrainConfig;

static void config_defaults(TrainConfig *c) {
    memset(c, 0, sizeof(*c));
    c->B = 4; c->T = 64; c->total_batch = -1; c->max_steps = -1;
    c->lr = 3e-4f; c->warmup = 0; c->final_frac = 1.0f; strcpy(c->schedule, "cosine");
    c->weight_decay = 0.0f; c->val_every = 20; c->val_batches = 20; c->sample_every = 20; c->gen_len = 64;
    c->ckpt_every = 0; c->resume = 0; c->grad_clip = 1.0f; c->seed = 1337; c->threads = 0; c->shuffle = 1;
    c->temperature = 1.0f;
    snprintf(c->adapter, sizeof(c->adapter), "%s", DEFAULT_ADAPTER);
    c->rank = 16; c->alpha = 32.0f; c->dropout = 0.0f; strcpy(c->targets, "qkv,attn_proj,fc,fc_proj");
    strcpy(c->init, "kaiming"); strcpy(c->lori_init, "kaiming"); c->sparsity = 0.9f; strcpy(c->mask, "model");
    strcpy(c->lori_stage, "ds"); c->lori_lr_d = -1; c->lori_lr_s = -1; c->lori_steps_s = -1;
    c->plora_every = 100; c->plora_momentum = 0.0f; strcpy(c->plora_schedule, "global"); strcpy(c->plora_mode, "sqrt");
    c->beta1 = 0.9f; c->beta2 = 0.999f; c->eps = 1e-8f; // llm.c's CPU AdamW
    strcpy(c->nan_policy, "stop");
    c->print_every = 1;
    c->eval_examples = 0;
    c->eval_show = 3;
}

typedef enum { OPT_INT, OPT_FLOAT, OPT_STR, OPT_FLAG } OptType;
typedef struct {
    char shortc;          // llm.c's short flag, or 0
    const char *name;     // long flag (without --)
    OptType type;
    size_t offset, size;  // field in TrainConfig
    const char *help;
} OptSpec;

#define OPT(s, n, t, f, h) {s, n, t, offsetof(TrainConfig, f), sizeof(((TrainConfig *)0)->f), h}
static const OptSpec options[] = {
    OPT('e', "model", OPT_STR, model, "llm.c checkpoint (v3 fp32 or v5 bf16), a Hugging Face GPT-2 folder (config.json + model.safetensors), or a descriptor: d12|d24|d36|d48 or L=4,C=128,H=4,V=257,T=128[,P=..]"),
    OPT('i', "train", OPT_STR, train_pattern, "training shards: file or glob pattern (llm.c .bin; X.lossmask beside X.bin masks the loss)"),
    OPT('j', "val", OPT_STR, val_pattern, "validation shards: file or glob pattern"),
    OPT('o', "output", OPT_STR, output_dir, "output directory: train.csv, checkpoints, adapter.bin (empty: none)"),
    OPT(0, "tokenizer", OPT_STR, tokenizer, "llm.c tokenizer file for decoding samples (default: tokenizer.bin beside the train shards)"),
    OPT('b', "batch", OPT_INT, B, "micro-batch size B"),
    OPT('t', "seq-len", OPT_INT, T, "sequence length T"),
    OPT('d', "total-batch", OPT_INT, total_batch, "total batch in tokens, a multiple of B*T (gradient accumulation); -1: B*T"),
    OPT('x', "max-steps", OPT_INT, max_steps, "training steps (per LoRI stage); -1: one epoch of the training data"),
    OPT('l', "lr", OPT_FLOAT, lr, "learning rate (AdamW)"),
    OPT(0, "beta1", OPT_FLOAT, beta1, "AdamW beta1 (llm.c's CPU value; its GPU trainer and many PyTorch recipes use 0.9 too)"),
    OPT(0, "beta2", OPT_FLOAT, beta2, "AdamW beta2 (llm.c's CPU value; its GPU trainer uses 0.95)"),
    OPT(0, "eps", OPT_FLOAT, eps, "AdamW epsilon"),
    OPT('u', "warmup", OPT_INT, warmup, "linear warmup steps"),
    OPT('q', "final-lr-frac", OPT_FLOAT, final_frac, "final learning rate as a fraction of -l (linear/cosine)"),
    OPT('k', "schedule", OPT_STR, schedule, "learning-rate schedule: constant|linear|cosine"),
    OPT('c', "weight-decay", OPT_FLOAT, weight_decay, "AdamW weight decay (2-D weights only)"),
    OPT('v', "val-every", OPT_INT, val_every, "validation loss every N steps (0: only at the end)"),
    OPT('m', "val-batches", OPT_INT, val_batches, "validation batches per evaluation"),
    OPT('s', "sample-every", OPT_INT, sample_every, "print a sample every N steps (0: never)"),
    OPT('g', "gen-len", OPT_INT, gen_len, "sample length in tokens"),
    OPT('n', "ckpt-every", OPT_INT, ckpt_every, "checkpoint (resumable state) every N steps (0: only at the end)"),
    OPT('y', "resume", OPT_INT, resume, "1: resume from the state in the output directory"),
    OPT(0, "grad-clip", OPT_FLOAT, grad_clip, "clip the global gradient norm to this (0: off)"),
    OPT(0, "seed", OPT_INT, seed, "seed for random init, data order, adapters, dropout, sampling"),
    OPT(0, "threads", OPT_INT, threads, "OpenMP threads (0: all cores)"),
    OPT(0, "shuffle", OPT_INT, shuffle, "1: shuffle training shards and rows per epoch (seeded); 0: in order"),
    OPT(0, "temperature", OPT_FLOAT, temperature, "sampling temperature (0: greedy)"),
    OPT(0, "adapter", OPT_STR, adapter, "none (full fine-tuning) | lora | lori | plora"),
    OPT(0, "rank", OPT_INT, rank, "adapter rank r"),
    OPT(0, "alpha", OPT_FLOAT, alpha, "adapter alpha: scale s = alpha / r"),
    OPT(0, "rslora", OPT_FLAG, rslora, "rsLoRA scale s = alpha / sqrt(r)"),
    OPT(0, "dropout", OPT_FLOAT, dropout, "dropout on the adapter's input"),
    OPT(0, "targets", OPT_STR, targets, "adapted linears: any of qkv,attn_proj,fc,fc_proj (or all)"),
    OPT(0, "init", OPT_STR, init, "LoRA/PLoRA A init: kaiming (U(+-1/sqrt(in))) | gaussian (N(0, 1/r))"),
    OPT(0, "adapter-seed", OPT_INT, adapter_seed, "seed of A (0: derived from --seed)"),
    OPT(0, "lori-init", OPT_STR, lori_init, "LoRI's frozen A: kaiming | gaussian"),
    OPT(0, "sparsity", OPT_FLOAT, sparsity, "LoRI-S: fraction of B masked out, in [0,1)"),
    OPT(0, "mask", OPT_STR, mask, "LoRI-S mask: model | layer | matrix (top-k |B| of LoRI-D) | random (not the paper's) | a mask file"),
    OPT(0, "lori-stage", OPT_STR, lori_stage, "d: LoRI-D only; s: LoRI-S only (needs a mask); ds: LoRI-D -> mask -> LoRI-S"),
    OPT(0, "lori-lr-d", OPT_FLOAT, lori_lr_d, "LoRI-D learning rate (-1: -l)"),
    OPT(0, "lori-lr-s", OPT_FLOAT, lori_lr_s, "LoRI-S learning rate (-1: 10 x -l, as the official scripts)"),
    OPT(0, "lori-steps-s", OPT_INT, lori_steps_s, "LoRI-S steps in the ds pipeline (-1: same as -x)"),
    OPT(0, "lori-new-a", OPT_FLAG, lori_new_a, "LoRI-S draws a new A (the official code's accident) instead of reusing LoRI-D's seed"),
    OPT(0, "plora-every", OPT_INT, plora_every, "PLoRA: steps per stage (unload into the base after each)"),
    OPT(0, "plora-momentum", OPT_FLOAT, plora_momentum, "PLoRA: unload (1-m) of s*B*A, keep the rest in the adapter (0: plain unload, A redrawn, B = 0)"),
    OPT(0, "plora-momentum-mode", OPT_STR, plora_mode, "PLoRA with m > 0: sqrt (ours: A, B *= sqrt(m), keeps m s B A, function-preserving) | writeup (the PLoRA write-up's: A, B *= m, keeps m^2 s B A)"),
    OPT(0, "plora-schedule", OPT_STR, plora_schedule, "PLoRA learning-rate schedule: global (over all steps) | stage (restarts each stage)"),
    OPT(0, "merge-out", OPT_STR, merge_out, "write the base with the adapter folded in as an llm.c checkpoint"),
    OPT(0, "export-hf", OPT_STR, export_hf, "write the model (the adapter folded in, as --merge-out) as a Hugging Face GPT-2 folder (config.json, model.safetensors; vocab.json + merges.txt from -e DIR or the -i shards' folder when there)"),
    OPT(0, "adapter-in", OPT_STR, adapter_in, "load an adapter (our format) to evaluate, sample, merge or continue training; its variant and settings come from the file"),
    OPT(0, "export-peft", OPT_STR, export_peft, "write the final adapter as a Hugging Face PEFT LoRA folder (adapter_config.json + adapter_model.safetensors)"),
    OPT(0, "import-peft", OPT_STR, import_peft, "start from a PEFT LoRA adapter folder for GPT-2 (evaluate, merge or continue as LoRA, or --adapter plora); rank, alpha, targets from the file"),
    OPT(0, "dump-logits", OPT_STR, dump_logits, "write the first validation row's tokens (FILE.tokens, int32) and logits (FILE, float32 T x V)"),
    OPT(0, "ref-kernels", OPT_FLAG, ref_kernels, "use the plain reference matrix product instead of the fast one"),
    OPT(0, "print-every", OPT_INT, print_every, "print the progress line every N steps"),
    OPT(0, "eval-em", OPT_STR, eval_em, "after training: exact-match score (greedy) on these test shards with loss masks, comma-separated"),
    OPT(0, "eval-examples", OPT_INT, eval_examples, "examples per --eval-em shard (0: all)"),
    OPT(0, "eval-show", OPT_INT, eval_show, "examples printed per --eval-em shard"),
    OPT(0, "stop-at", OPT_INT, stop_at, "stop after this step, saving a resumable state in -o (0: never); resume with -y 1"),
    OPT('z', "zero", OPT_INT, zero, "ZeRO stage (llm.c's -z): 0 | 1: data-parallel full fine-tuning keeps AdamW's moments sharded over the ranks (gradients reduce-scattered, parameters all-gathered; MPI or NCCL)"),
    OPT(0, "nan-policy", OPT_STR, nan_policy, "non-finite loss or gradient: stop (keep the last checkpoint) | skip (skip the update)"),
};
#define NUM_OPTIONS (int)(sizeof(options) / sizeof(options[0]))
_Static_assert(sizeof(options) / sizeof(options[0]) <= sizeof(((TrainConfig *)0)->given), "TrainConfig.given is too small");

// Every flag of the table with its default (the GPU trainers' usage lists them too).
static void print_options(void) {
    TrainConfig d;
    config_defaults(&d);
    for (int i = 0; i < NUM_OPTIONS; i++) {
        const OptSpec *o = &options[i];
        char flag[64], def[1100];
        if (o->shortc) snprintf(flag, sizeof(flag), "-%c, --%s", o->shortc, o->name);
        else snprintf(flag, sizeof(flag), "    --%s", o->name);
        const char *f = (const char *)&d + o->offset;
        switch (o->type) {
            case OPT_INT: snprintf(def, sizeof(def), "%d", *(const int *)f); break;
            case OPT_FLOAT: snprintf(def, sizeof(def), "%g", *(const float *)f); break;
            case OPT_STR: snprintf(def, sizeof(def), "%s", *f ? f : "\"\""); break;
            case OPT_FLAG: snprintf(def, sizeof(def), "off"); break;
        }
        printf("  %-24s %s [default: %s]\n", flag, o->help, def);
    }
}

static void print_usage(const char *prog) {
    printf("usage: %s [options]\n", prog);
    printf("GPT-2 training on the CPU with full fine-tuning, LoRA, LoRI or PeriodicLoRA (default adapter: %s)\n\n", DEFAULT_ADAPTER);
    print_options();
    printf("  -h, --help               print this help\n");
}

// Parses argv into c (after defaults). Returns 0; 1 if help was printed; -1 on a bad flag (message printed).
static int parse_args(TrainConfig *c, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) { print_usage(argv[0]); return 1; }
        const OptSpec *o = NULL;
        const char *val = NULL;
        if (arg[0] == '-' && arg[1] != '-' && arg[1] && !arg[2]) {
            for (int k = 0; k < NUM_OPTIONS; k++) if (options[k].shortc == arg[1]) o = &options[k];
        } else if (arg[0] == '-' && arg[1] == '-') {
            const char *name = arg + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            for (int k = 0; k < NUM_OPTIONS; k++)
                if (strlen(options[k].name) == len && strncmp(options[k].name, name, len) == 0) o = &options[k];
            if (eq) val = eq + 1;
        }
        if (!o) { fprintf(stderr, "error: unknown flag '%s' (see -h)\n", arg); return -1; }
        c->given[o - options] = 1;
        char *field = (char *)c + o->offset;
        if (o->type == OPT_FLAG) {
            if (val) { fprintf(stderr, "error: flag --%s takes no value\n", o->name); return -1; }
            *(int *)field = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) { fprintf(stderr, "error: flag '%s' needs a value\n", arg); return -1; }
            val = argv[++i];
        }
        char *end = NULL;
        errno = 0;
        if (o->type == OPT_INT) {
            long v = strtol(val, &end, 10);
            if (errno || end == val || *end || v < -2147483647L || v > 2147483647L) {
                fprintf(stderr, "error: flag '%s' expects an integer, got '%s'\n", arg, val); return -1;
            }
            *(int *)field = (int)v;
        } else if (o->type == OPT_FLOAT) {
            float v = strtof(val, &end);
            if (errno || end == val || *end || !isfinite(v)) {
                fprintf(stderr, "error: flag '%s' expects a finite number, got '%s'\n", arg, val); return -1;
            }
            *(float *)field = v;
        } else {
            if (strlen(val) >= o->size) { fprintf(stderr, "error: value of '%s' is too long\n", arg); return -1; }
            strcpy(field, val);
        }
    }
    return 0;
}

// 1 when option `name` was given on the command line (parse_args), not just defaulted.
static int opt_given(const TrainConfig *c, const char *name) {
    for (int k = 0; k < NUM_OPTIONS; k++) if (strcmp(options[k].name, name) == 0) return c->given[k];
    return 0;
}

static int name_index(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++) if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

// Checks every value; prints one message naming the flag. 0 or -1.
static int validate_args(const TrainConfig *c) {
#define BAD(...) do { fprintf(stderr, "error: " __VA_ARGS__); fputc('\n', stderr); return -1; } while (0)
    if (c->B <= 0) BAD("-b (micro-batch) must be > 0, got %d", c->B);
    if (c->T <= 0) BAD("-t (sequence length) must be > 0, got %d", c->T);
    if ((long long)c->B * c->T > 2147483647LL) BAD("-b %d x -t %d = %lld tokens per micro-batch: too many (at most 2147483647)", c->B, c->T, (long long)c->B * c->T);
    if (c->total_batch != -1 && (c->total_batch <= 0 || c->total_batch % (c->B * c->T) != 0))
        BAD("-d (total batch) must be -1 or a positive multiple of B*T = %d, got %d", c->B * c->T, c->total_batch);
    if (c->max_steps < -1) BAD("-x (max steps) must be >= -1, got %d", c->max_steps);
    if (!(c->lr >= 0)) BAD("-l (learning rate) must be >= 0");
    if (c->warmup < 0) BAD("-u (warmup) must be >= 0");
    if (!(c->final_frac >= 0 && c->final_frac <= 1)) BAD("-q (final LR fraction) must be in [0,1]");
    if (name_index(c->schedule, schedule_names, 3) < 0) BAD("-k: unknown schedule '%s' (constant|linear|cosine)", c->schedule);
    if (!(c->weight_decay >= 0)) BAD("-c (weight decay) must be >= 0");
    if (c->val_every < 0 || c->val_batches < 0 || c->sample_every < 0 || c->gen_len < 0 || c->ckpt_every < 0)
        BAD("-v, -m, -s, -g, -n must be >= 0");
    if (c->resume != 0 && c->resume != 1) BAD("-y must be 0 or 1");
    if (c->resume && !c->output_dir[0]) BAD("-y 1 needs -o DIR (the state is read from DIR/state.bin)");
    if (!(c->grad_clip >= 0)) BAD("--grad-clip must be >= 0");
    if (c->threads < 0) BAD("--threads must be >= 0");
    if (!variant_find(c->adapter)) BAD("--adapter: unknown '%s' (none|lora|lori|plora)", c->adapter);
    if (c->rank <= 0) BAD("--rank must be > 0, got %d", c->rank);
    if (!(c->alpha > 0)) BAD("--alpha must be > 0");
    if (!(c->dropout >= 0 && c->dropout < 1)) BAD("--dropout must be in [0,1), got %g", c->dropout);
    if (parse_targets(c->targets) <= 0) BAD("--targets: '%s' is not a list of qkv,attn_proj,fc,fc_proj", c->targets);
    if (strcmp(c->init, "kaiming") && strcmp(c->init, "gaussian")) BAD("--init must be kaiming or gaussian");
    if (strcmp(c->lori_init, "kaiming") && strcmp(c->lori_init, "gaussian")) BAD("--lori-init must be kaiming or gaussian");
    if (!(c->sparsity >= 0 && c->sparsity < 1)) BAD("--sparsity must be in [0,1), got %g", c->sparsity);
    if (strcmp(c->lori_stage, "d") && strcmp(c->lori_stage, "s") && strcmp(c->lori_stage, "ds")) BAD("--lori-stage must be d, s or ds");
    if (c->plora_every <= 0) BAD("--plora-every must be > 0");
    if (!(c->plora_momentum >= 0 && c->plora_momentum < 1)) BAD("--plora-momentum must be in [0,1)");
    if (strcmp(c->plora_schedule, "global") && strcmp(c->plora_schedule, "stage")) BAD("--plora-schedule must be global or stage");
    if (name_index(c->plora_mode, plora_momentum_names, 2) < 0) BAD("--plora-momentum-mode must be sqrt or writeup, got '%s'", c->plora_mode);
    if (!(c->beta1 >= 0 && c->beta1 < 1)) BAD("--beta1 must be in [0,1), got %g", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1)) BAD("--beta2 must be in [0,1), got %g", c->beta2);
    if (!(c->eps > 0)) BAD("--eps must be > 0, got %g", c->eps);
    if (strcmp(c->nan_policy, "stop") && strcmp(c->nan_policy, "skip")) BAD("--nan-policy must be stop or skip");
    if (c->temperature < 0) BAD("--temperature must be >= 0");
    if (c->print_every <= 0) BAD("--print-every must be > 0");
    if (c->stop_at < 0) BAD("--stop-at must be >= 0");
    if (c->zero != 0 && c->zero != 1) BAD("-z (ZeRO stage) must be 0 or 1, got %d", c->zero);
    if (c->zero == 1 && strcmp(c->adapter, "none") != 0)
        BAD("-z 1 shards full fine-tuning's optimizer state (--adapter none); an adapter's is already small (--adapter %s)", c->adapter);
    if (c->import_peft[0] && c->adapter_in[0]) BAD("--import-peft and --adapter-in are exclusive");
    if (c->stop_at > 0 && !c->output_dir[0]) BAD("--stop-at needs -o DIR to save the state in");
    if (c->eval_examples < 0 || c->eval_show < 0) BAD("--eval-examples and --eval-show must be >= 0");
    return 0;
#undef BAD
}

#endif // LLMC_OPTIONS_H
