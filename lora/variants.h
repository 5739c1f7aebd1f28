/*
lora/variants.h — what each fine-tuning variant does, as one table. The trainers (both backends)
ask the table; they never branch on a variant's name. Adding a variant means a row here and its
math in lora/adapter.h (the places marked VARIANT).

  variant        trains           A                         phases / stage boundary               outputs
  none (full)    every weight     –                         one phase                              model.bin, state.bin (base)
  LoRA           A, B             Kaiming-uniform (--init)  one phase                              adapter.bin (A, B)
  LoRI           B (A frozen)     from a stored seed        D (dense B) -> mask top-k |B| -> S      adapter.bin (seed + B or
                                  (--lori-init)             (B ⊙ M from B = 0; --lori-stage)       B's kept entries), mask.bin,
                                                                                                    adapter_lori_d.bin
  PLoRA          A, B             fresh per stage (kept,    every --plora-every steps: unload      adapter.bin (every stage: the
                                  scaled, when m > 0)       W += (1-m) s B A, re-init              original base's exact LoRA),
                                                                                                    model.bin (every stage folded)

Facts and sources: lora/METHODS.md.
*/
#ifndef LORA_VARIANTS_H
#define LORA_VARIANTS_H

#include <string.h>

typedef enum { ADAPTER_NONE = 0, ADAPTER_LORA = 1, ADAPTER_LORI = 2, ADAPTER_PLORA = 3, NUM_ADAPTER_KINDS = 4 } AdapterKind;

typedef struct {
    AdapterKind kind;
    const char *name;       // --adapter NAME, and the adapter file's kind
    const char *label;      // in reports
    int trains_base;        // the base's weights train (full fine-tuning): gradients and moments for them
    int trains_A;           // A trains (else it is frozen, a pure function of the stored seed)
    int masked_phases;      // LoRI's plan: phase D (dense B), the mask from |B|, phase S (B ⊙ M from B = 0)
    int unloads;            // PLoRA's stage boundary: the adapter is unloaded into the base and re-initialised
    int base_changes;       // the base's weights change while training: state.bin holds them, model.bin is written
    int peft_import;        // a PEFT LoRA folder (A not seed-defined) can start this variant
    AdapterKind continues;  // an adapter file of this other kind also starts it (PLoRA from a LoRA file)
    const char *files;      // what the run's files hold
} AdapterVariant;

static const AdapterVariant variant_table[NUM_ADAPTER_KINDS] = {
    {ADAPTER_NONE, "none", "full fine-tuning", 1, 0, 0, 0, 1, 0, ADAPTER_NONE,
     "model.bin: the fine-tuned model; state.bin: weights and AdamW moments"},
    {ADAPTER_LORA, "lora", "LoRA", 0, 1, 0, 0, 0, 1, ADAPTER_LORA,
     "adapter.bin: A and B (A by seed while untrained); state.bin: the adapter and its moments"},
    {ADAPTER_LORI, "lori", "LoRI", 0, 0, 1, 0, 0, 0, ADAPTER_LORI,
     "adapter.bin: A's seed and B (LoRI-S: B's kept entries only); mask.bin; adapter_lori_d.bin: the D phase's adapter"},
    {ADAPTER_PLORA, "plora", "PeriodicLoRA", 0, 1, 0, 1, 1, 1, ADAPTER_LORA,
     "model.bin: the base with every stage folded in; adapter.bin: the last stage and every unloaded one (the stage history), "
     "applying to the original base"},
};

static const AdapterVariant *variant_of(AdapterKind k) { return &variant_table[k >= 0 && k < NUM_ADAPTER_KINDS ? k : 0]; }

// The variant named `name`, or NULL.
static const AdapterVariant *variant_find(const char *name) {
    for (int i = 0; i < NUM_ADAPTER_KINDS; i++) if (strcmp(variant_table[i].name, name) == 0) return &variant_table[i];
    return NULL;
}

// Can an adapter file of kind `file_kind` start (evaluate, continue) variant v?
static int variant_loads(const AdapterVariant *v, AdapterKind file_kind) {
    return file_kind != ADAPTER_NONE && (file_kind == v->kind || file_kind == v->continues);
}

#endif // LORA_VARIANTS_H
