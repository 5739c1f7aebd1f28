/*
llmc/embedded.h — the embedded default: any trainer binary with no flags runs offline on a fresh
machine: generate the task suite, pretrain and cache a tiny base, fine-tune it on one task with the
binary's adapter (LoRI-D -> mask -> LoRI-S for train_lori), evaluate before and after, and write a
summary, a loss chart and the run's files. The recipe is here, in one place; change it here (and in
the README) if the numbers need it.
*/
#ifndef LLMC_EMBEDDED_H
#define LLMC_EMBEDDED_H

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "utils.h"
#include "train.h"
#include "report.h"
#include "../data/tasks.h"
#include "../lora/variants.h"

#define DEFAULT_DATA_DIR "data/tasks"
#define DEFAULT_OUT_DIR "out"
#define DEFAULT_TASK "classify"
#define DEFAULT_MODEL "L=4,C=128,H=4,V=257,T=128"
#define DEFAULT_B 16
#define DEFAULT_T 64
#define DEFAULT_PRETRAIN_STEPS 4000
#define DEFAULT_PRETRAIN_LR 2e-3f
#define DEFAULT_FT_STEPS 150   // per LoRI stage
#define DEFAULT_FT_LR 5e-3f    // LoRI-D's; LoRI-S uses 10x, as the official scripts
#define DEFAULT_RANK 16

static void default_base_config(TrainConfig *c) {
    config_defaults(c);
    snprintf(c->model, sizeof(c->model), "%s", DEFAULT_MODEL);
    snprintf(c->train_pattern, sizeof(c->train_pattern), "%s/pretrain_train.bin", DEFAULT_DATA_DIR);
    snprintf(c->val_pattern, sizeof(c->val_pattern), "%s/pretrain_val.bin", DEFAULT_DATA_DIR);
    snprintf(c->output_dir, sizeof(c->output_dir), "%s/base", DEFAULT_OUT_DIR);
    strcpy(c->adapter, "none");
    c->B = DEFAULT_B; c->T = DEFAULT_T; c->max_steps = DEFAULT_PRETRAIN_STEPS;
    c->lr = DEFAULT_PRETRAIN_LR; c->warmup = 20; c->final_frac = 0.1f; strcpy(c->schedule, "cosine");
    c->val_every = 0; c->val_batches = 20; c->sample_every = 0; c->print_every = 50;
}

// The recipe string stamped beside the cached base: a different recipe retrains it.
// It includes a hash of the pretraining shard, so regenerated (different) data retrains it too.
static void default_base_recipe(char *buf, size_t n) {
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/pretrain_train.bin", DEFAULT_DATA_DIR);
    size_t size = 0;
    uint8_t *data = read_whole_file(path, &size, err, sizeof(err));
    uint64_t h = 0xCBF29CE484222325ull; // FNV-1a
    for (size_t i = 0; data && i < size; i++) { h ^= data[i]; h *= 0x100000001B3ull; }
    free(data);
    snprintf(buf, n, "model=%s B=%d T=%d steps=%d lr=%g seed=1337 data=%016llx\n", DEFAULT_MODEL, DEFAULT_B, DEFAULT_T,
             DEFAULT_PRETRAIN_STEPS, (double)DEFAULT_PRETRAIN_LR, (unsigned long long)h);
}

typedef int (*TrainRunner)(TrainConfig *cfg, int argc, char **argv, TrainResult *res);

// The embedded default with `run` as the trainer (the CPU's or the GPU's run_training).
static int run_default(const char *prog, TrainRunner run) {
    double t_start = now_s();
    const char *adapter_name = DEFAULT_ADAPTER;
    printf("== %s with no flags: the embedded default (see README: 'The embedded default')\n", prog);
    printf("   task '%s', tiny GPT-2 %s, adapter %s%s\n", DEFAULT_TASK, DEFAULT_MODEL, adapter_name,
           strcmp(adapter_name, "lori") == 0 ? " (LoRI-D -> mask -> LoRI-S)" : "");
    // 1. the task suite
    if (!tasks_present(DEFAULT_DATA_DIR)) {
        printf("== generating the task suite into %s/ (seed %d)\n", DEFAULT_DATA_DIR, TASKS_DEFAULT_SEED);
        if (tasks_generate(DEFAULT_DATA_DIR, TASKS_DEFAULT_SEED, 0) != 0) {
            fprintf(stderr, "error: could not generate the task suite in %s\n", DEFAULT_DATA_DIR);
            return 1;
        }
    }
    mkdir(DEFAULT_OUT_DIR, 0755);
    // 2. the tiny base model, pretrained once and cached
    char base[1200], stamp[1200], recipe[512], have[512] = "";
    snprintf(base, sizeof(base), "%s/base/model.bin", DEFAULT_OUT_DIR);
    snprintf(stamp, sizeof(stamp), "%s/base/RECIPE", DEFAULT_OUT_DIR);
    default_base_recipe(recipe, sizeof(recipe));
    FILE *sf = fopen(stamp, "r");
    if (sf) { if (!fgets(have, sizeof(have), sf)) have[0] = 0; fclose(sf); }
    struct stat st;
    TrainResult pre = {0};
    if (stat(base, &st) != 0 || strcmp(have, recipe) != 0) {
        printf("== pretraining the base model (%d steps; cached in %s afterwards)\n", DEFAULT_PRETRAIN_STEPS, base);
        TrainConfig bc;
        default_base_config(&bc);
        char *argv0[] = {(char *)"pretrain"};
        if (run(&bc, 1, argv0, &pre) != 0) return 1;
        sf = fopen(stamp, "w");
        if (sf) { fputs(recipe, sf); fclose(sf); }
    } else {
        printf("== using the cached base model %s (delete it to pretrain again)\n", base);
    }
    // 3. before: the base model's exact match on the task's test split
    char test[1200], train[1200], val[1200], outdir[1200];
    snprintf(test, sizeof(test), "%s/%s_test.bin", DEFAULT_DATA_DIR, DEFAULT_TASK);
    snprintf(train, sizeof(train), "%s/%s_train.bin", DEFAULT_DATA_DIR, DEFAULT_TASK);
    snprintf(val, sizeof(val), "%s/%s_val.bin", DEFAULT_DATA_DIR, DEFAULT_TASK);
    snprintf(outdir, sizeof(outdir), "%s/%s_%s", DEFAULT_OUT_DIR, adapter_name, DEFAULT_TASK);
    TrainConfig ec;
    config_defaults(&ec);
    snprintf(ec.model, sizeof(ec.model), "%s", base);
    snprintf(ec.val_pattern, sizeof(ec.val_pattern), "%s", val);
    snprintf(ec.eval_em, sizeof(ec.eval_em), "%s", test);
    strcpy(ec.adapter, "none");
    ec.B = DEFAULT_B; ec.T = DEFAULT_T; ec.max_steps = 0; ec.sample_every = 0; ec.eval_show = 3;
    TrainResult before = {0};
    printf("== before fine-tuning: the base model on %s\n", test);
    char *argv1[] = {(char *)"evaluate"};
    if (run(&ec, 1, argv1, &before) != 0) return 1;
    // 4. fine-tune with the binary's adapter
    TrainConfig fc;
    config_defaults(&fc);
    snprintf(fc.model, sizeof(fc.model), "%s", base);
    snprintf(fc.train_pattern, sizeof(fc.train_pattern), "%s", train);
    snprintf(fc.val_pattern, sizeof(fc.val_pattern), "%s", val);
    snprintf(fc.output_dir, sizeof(fc.output_dir), "%s", outdir);
    snprintf(fc.eval_em, sizeof(fc.eval_em), "%s", test);
    fc.B = DEFAULT_B; fc.T = DEFAULT_T; fc.max_steps = DEFAULT_FT_STEPS; fc.lr = DEFAULT_FT_LR;
    fc.rank = DEFAULT_RANK; fc.alpha = 2.0f * DEFAULT_RANK; fc.warmup = 10; fc.final_frac = 0.1f;
    fc.val_every = 50; fc.sample_every = 0; fc.print_every = 25; fc.eval_show = 5;
    // the same 300 optimizer steps for the adapters (LoRI: 150 per phase), 150 for full fine-tuning
    const AdapterVariant *v = variant_find(adapter_name);
    if (v->trains_base) fc.lr = 1e-3f;
    if (!v->trains_base && !v->masked_phases) fc.max_steps = 2 * DEFAULT_FT_STEPS;
    if (v->unloads) fc.plora_every = DEFAULT_FT_STEPS / 2;
    printf("== fine-tuning on %s -> %s/\n", train, outdir);
    char *argv2[] = {(char *)prog};
    TrainResult after = {0};
    if (run(&fc, 1, argv2, &after) != 0) return 1;
    double total = now_s() - t_start;
    // 5. the table
    double em0 = before.em_n ? 100.0 * before.em_correct / before.em_n : 0, em1 = after.em_n ? 100.0 * after.em_correct / after.em_n : 0;
    printf("\n== summary: %s on task '%s' (%d test examples)\n", adapter_name, DEFAULT_TASK, after.em_n);
    printf("| %-32s | %-28s |\n", "", "result");
    printf("|----------------------------------|------------------------------|\n");
    printf("| %-32s | %-28zu |\n", "trainable parameters", after.trainable);
    char cell[64];
    snprintf(cell, sizeof(cell), "%.3f%%", 100.0 * after.trainable / after.total_params);
    printf("| %-32s | %-28s |\n", "  of the full model", cell);
    if (after.lora_equiv) {
        snprintf(cell, sizeof(cell), "%.2f%%", 100.0 * after.trainable / after.lora_equiv);
        printf("| %-32s | %-28s |\n", "  of an equal-rank LoRA", cell);
    }
    if (after.adapter_bytes) {
        snprintf(cell, sizeof(cell), "%ld (LoRA: %ld)", after.adapter_bytes, after.lora_file_bytes);
        printf("| %-32s | %-28s |\n", "adapter file bytes", cell);
    }
    printf("| %-32s | %-7.4f -> %-17.4f |\n", "val loss (answer tokens)", before.final_val_loss, after.final_val_loss);
    printf("| %-32s | %6.1f%% -> %6.1f%%            |\n", "exact match (greedy)", em0, em1);
    printf("| %-32s | %-28.1f |\n", "fine-tuning time (s)", after.seconds);
    printf("| %-32s | %-28.0f |\n", "fine-tuning tokens/s", after.tok_per_s);
    printf("| %-32s | %-28.1f |\n", "total wall time (s)", total);
    // 6. summary.json and the loss curve
    char path[1300];
    snprintf(path, sizeof(path), "%s/summary.json", outdir);
    char tmp[1400];
    FILE *f = report_open(path, tmp, sizeof(tmp));
    if (f) {
        fprintf(f, "{\n  \"adapter\": "); json_str(f, adapter_name);
        fprintf(f, ",\n  \"task\": "); json_str(f, DEFAULT_TASK);
        fprintf(f, ",\n  \"model\": "); json_str(f, DEFAULT_MODEL);
        fprintf(f, ",\n  \"total_parameters\": %zu,\n  \"trainable_parameters\": %zu,\n  \"lora_equal_rank_parameters\": %zu", after.total_params, after.trainable, after.lora_equiv);
        fprintf(f, ",\n  \"adapter_bytes\": %ld,\n  \"lora_adapter_bytes\": %ld", after.adapter_bytes, after.lora_file_bytes);
        fprintf(f, ",\n  \"val_loss_before\": "); json_num(f, before.final_val_loss);
        fprintf(f, ",\n  \"val_loss_after\": "); json_num(f, after.final_val_loss);
        fprintf(f, ",\n  \"exact_match_before\": "); json_num(f, em0 / 100);
        fprintf(f, ",\n  \"exact_match_after\": "); json_num(f, em1 / 100);
        fprintf(f, ",\n  \"test_examples\": %d", after.em_n);
        fprintf(f, ",\n  \"fine_tune_seconds\": "); json_num(f, after.seconds);
        fprintf(f, ",\n  \"fine_tune_tokens_per_second\": "); json_num(f, after.tok_per_s);
        fprintf(f, ",\n  \"total_seconds\": "); json_num(f, total);
        fprintf(f, "\n}\n");
        report_close(f, tmp, path);
    }
    double *xs = NULL, *ys = NULL;
    snprintf(path, sizeof(path), "%s/train.csv", outdir);
    int n = read_train_csv(path, &xs, &ys);
    if (n > 0) {
        SvgSeries ser = {adapter_name, xs, ys, n};
        char title[256];
        snprintf(title, sizeof(title), "%s on '%s': training loss (answer tokens)", adapter_name, DEFAULT_TASK);
        snprintf(path, sizeof(path), "%s/loss.svg", outdir);
        svg_line_chart(path, title, "step", "loss", &ser, 1);
    }
    free(xs); free(ys);
    printf("\nwrote %s/: summary.json, adapter.bin, train.csv, loss.svg\n", outdir);
    return 0;
}


#endif // LLMC_EMBEDDED_H
