/*
merge_adapters.c — merges several adapters into one (lora/merge.h), and converts adapters.

    ./merge_adapters -m cat -w 0.5,0.5 -o merged.bin task1.bin task2.bin
    ./merge_adapters -m ties -w 1,1,1 --density 0.2 -o merged.bin a.bin b.bin c.bin
    ./merge_adapters -m linear -w 0.4,0.3,0.3 --merge-base gpt2_124M.bin --merge-out merged_model.bin a.bin b.bin c.bin
    ./merge_adapters --export-peft peft_dir lori_s.bin          one input, no -m: convert (no merge)
    ./merge_adapters --merge-base gpt2_hf_dir --export-hf merged_hf_dir lora.bin    a Hugging Face folder in and out

Inputs and -o are adapter files in the project's format (lora/adapter_file.h); --merge-out is an
llm.c version-3 checkpoint (the base with the merged adapter folded in, W += s B A), read and written
by llmc/model.h's gpt2_load_checkpoint / gpt2_write_checkpoint, the trainers' own.
*/
#include "../llmc/utils.h"
#include "../llmc/model.h"
#include "merge.h"
#include "peft.h"
#include "adapter_file.h"

static void error_usage(void) {
    fprintf(stderr,
        "Usage: ./merge_adapters [options] in1.bin [in2.bin ...]\n"
        "  -m METHOD            cat | linear | ties | dare_linear | dare_ties | magnitude_prune | svd\n"
        "                       (default: none, allowed with one input: the adapter is converted as is)\n"
        "  -w w1,w2,...         one weight per input (default: 1 for each)\n"
        "  --density d          fraction kept by ties, dare_*, magnitude_prune (default 1: keep all)\n"
        "  --seed s             seed of DARE's random drops (default 0)\n"
        "  --svd-rank r         rank of the svd result (default: the largest input rank)\n"
        "  -o OUT.bin           write the result as an adapter file\n"
        "  --export-peft DIR    write the result as a Hugging Face PEFT LoRA adapter\n"
        "  --base-name NAME     base_model_name_or_path in the PEFT config (default gpt2)\n"
        "  --merge-base B.bin   an llm.c checkpoint (v3 fp32 or v5 bf16) or a Hugging Face GPT-2 folder to fold the result into\n"
        "  --merge-out M.bin    where to write that merged llm.c checkpoint (v3 fp32)\n"
        "  --export-hf DIR      write it as a Hugging Face GPT-2 folder (vocab.json + merges.txt copied from a folder --merge-base)\n"
        "At least one of -o, --export-peft, --merge-out, --export-hf.\n");
    exit(EXIT_FAILURE);
}

int main(int argc, char **argv) {
    const char *method = NULL, *weights = NULL, *out = NULL, *peft_dir = NULL, *base_name = "gpt2";
    const char *merge_base = NULL, *merge_out = NULL, *export_hf = NULL;
    MergeConfig mc = {MERGE_CAT, 1.0f, 0, 0};
    const char *inputs[256];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (a[0] != '-') { if (n == 256) { fprintf(stderr, "error: at most 256 inputs\n"); return 1; } inputs[n++] = a; continue; }
        if (!has) { fprintf(stderr, "error: %s needs a value\n", a); error_usage(); }
        const char *v = argv[++i];
        char *end = NULL;
        if (!strcmp(a, "-m")) method = v;
        else if (!strcmp(a, "-w")) weights = v;
        else if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--export-peft")) peft_dir = v;
        else if (!strcmp(a, "--base-name")) base_name = v;
        else if (!strcmp(a, "--merge-base")) merge_base = v;
        else if (!strcmp(a, "--merge-out")) merge_out = v;
        else if (!strcmp(a, "--export-hf")) export_hf = v;
        else if (!strcmp(a, "--density")) { mc.density = strtof(v, &end); if (*end || !(mc.density > 0 && mc.density <= 1)) { fprintf(stderr, "error: --density must be in (0, 1]\n"); return 1; } }
        else if (!strcmp(a, "--seed")) { mc.seed = strtoull(v, &end, 10); if (*end) { fprintf(stderr, "error: bad --seed\n"); return 1; } }
        else if (!strcmp(a, "--svd-rank")) { mc.svd_rank = (int)strtol(v, &end, 10); if (*end || mc.svd_rank < 1) { fprintf(stderr, "error: --svd-rank must be >= 1\n"); return 1; } }
        else { fprintf(stderr, "error: unknown option %s\n", a); error_usage(); }
    }
    if (n == 0) { fprintf(stderr, "error: no input adapters\n"); error_usage(); }
    if (!out && !peft_dir && !merge_out && !export_hf) { fprintf(stderr, "error: nothing to write (-o, --export-peft, --merge-out or --export-hf)\n"); error_usage(); }
    if (!!merge_base != (merge_out || export_hf)) { fprintf(stderr, "error: --merge-base goes with --merge-out or --export-hf\n"); return 1; }
    if (!method && n > 1) { fprintf(stderr, "error: -m is needed to merge %d adapters\n", n); return 1; }
    if (method && (int)(mc.method = (MergeMethod)merge_method_from_name(method)) < 0) { fprintf(stderr, "error: unknown -m %s\n", method); error_usage(); }
    float w[256];
    for (int t = 0; t < n; t++) w[t] = 1.0f;
    if (weights) {
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s", weights);
        int k = 0;
        for (char *sp = NULL, *tok = strtok_r(buf, ",", &sp); tok; tok = strtok_r(NULL, ",", &sp)) {
            char *end;
            float x = strtof(tok, &end);
            if (*end || !isfinite(x) || k >= n) { fprintf(stderr, "error: -w needs %d finite numbers, comma-separated\n", n); return 1; }
            w[k++] = x;
        }
        if (k != n) { fprintf(stderr, "error: -w has %d weights for %d inputs\n", k, n); return 1; }
    }

    char err[8192];  // room for the trainer's messages, which quote paths of up to 4 KB
    GPT2 base;
    int L = 0, C = 0;
    if (merge_base) {
        struct stat sb;
        int is_dir = stat(merge_base, &sb) == 0 && S_ISDIR(sb.st_mode);
        if ((is_dir ? gpt2_load_hf : gpt2_load_checkpoint)(&base, merge_base, err, sizeof(err))) { fprintf(stderr, "error: %s\n", err); return 1; }
        L = base.config.num_layers; C = base.config.channels;
    }
    Adapter *ads = calloc((size_t)n, sizeof(Adapter));
    const Adapter *ptrs[256];
    for (int t = 0; t < n; t++) {
        if (adapter_load(&ads[t], inputs[t], L, C, err, sizeof(err))) { fprintf(stderr, "error: %s\n", err); return 1; }
        if (t == 0) { L = ads[0].L; C = ads[0].C; }
        ptrs[t] = &ads[t];
        printf("input %d: %s: %s rank %d alpha %g%s scale %g targets %d, weight %g\n", t + 1, inputs[t], variant_of(ads[t].cfg.kind)->name,
               ads[t].cfg.rank, (double)ads[t].cfg.alpha, ads[t].cfg.rslora ? " (rslora)" : "", (double)ads[t].scale, ads[t].cfg.targets, (double)w[t]);
    }
    Adapter merged, *res = &ads[0];
    if (method) {
        if (adapter_merge(&merged, ptrs, w, n, &mc, err, sizeof(err))) { fprintf(stderr, "error: %s\n", err); return 1; }
        res = &merged;
        printf("merged with %s: rank %d, scale %g\n", merge_method_names[mc.method], merged.cfg.rank, (double)merged.scale);
    } else if (ads[0].nhist > 0) { // a PLoRA run: its exact LoRA on the original base, every stage kept
        if (adapter_flatten_stages(&ads[0], &merged, err, sizeof(err))) { fprintf(stderr, "error: %s: %s\n", inputs[0], err); return 1; }
        res = &merged;
        method = "";
        printf("PLoRA adapter with %d unloaded stages: converted to its exact LoRA on the original base (rank %d, scale 1)\n",
               ads[0].nhist, merged.cfg.rank);
    }
    // the command line, stored in the adapter file
    char cmdline[4096] = "";
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(cmdline);
        snprintf(cmdline + len, sizeof(cmdline) - len, "%s%s", i ? " " : "", argv[i]);
    }
    if (out) {
        if (adapter_save(res, out, cmdline, err, sizeof(err))) { fprintf(stderr, "error: %s\n", err); return 1; }
        printf("wrote %s (%llu bytes)\n", out, (unsigned long long)adapter_file_bytes(res, strlen(cmdline)));
    }
    if (peft_dir) {
        if (peft_export(res, peft_dir, base_name, err, sizeof(err))) { fprintf(stderr, "error: %s\n", err); return 1; }
        printf("wrote %s/adapter_config.json and %s/adapter_model.safetensors\n", peft_dir, peft_dir);
    }
    if (merge_base) {
        for (int s = 0; s < res->nslots; s++)
            adapter_fold(res, s, gpt2_slot_weight(&base, res->slot_layer[s], res->slot_target[s]), 1.0f);
        if (merge_out) {
            if (gpt2_write_checkpoint(&base.config, base.params_memory, base.num_parameters, merge_out, err, sizeof(err))) { fprintf(stderr, "error: %s\n", err); return 1; }
            printf("wrote %s (llm.c v3 checkpoint: %s with the %s folded in)\n", merge_out, merge_base, method && *method ? "merged adapter" : "adapter");
        }
        struct stat sb;
        int copied = 0;
        if (export_hf) {
            if (gpt2_write_hf(&base.config, base.params_memory, export_hf, stat(merge_base, &sb) == 0 && S_ISDIR(sb.st_mode) ? merge_base : NULL,
                              &copied, err, sizeof(err))) { fprintf(stderr, "error: --export-hf: %s\n", err); return 1; }
            printf("wrote %s/ (Hugging Face GPT-2: config.json, model.safetensors%s)\n", export_hf, copied ? ", vocab.json, merges.txt" : "");
        }
        gpt2_free(&base);
    }
    if (method) adapter_free(&merged);
    for (int t = 0; t < n; t++) adapter_free(&ads[t]);
    free(ads);
    return 0;
}
