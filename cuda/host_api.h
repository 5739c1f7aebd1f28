/*
cuda/host_api.h — what cuda/host.c offers, in plain C types: to train_gpt2.cu's main, the command
line and the training loop (train_gpt2.c's, with the GPU model as its Backend) and the embedded
default; to the GPU trainer's tests (test_gpt2.cu), the CPU trainer's main (to run both on the same
flags in one process), the checkpoint and adapter-file readers, and a host adapter for the
in-process checks of LoRI-S and PLoRA.
*/
#ifndef CUDA_HOST_API_H
#define CUDA_HOST_API_H
#include <stddef.h>
#include <stdint.h>
#include "gpt2_gpu.h"
#ifdef __cplusplus
extern "C" {
#endif

// train_gpt2.cu's main
typedef struct HostRun HostRun;                       // a parsed command line (TrainConfig, precision)
int host_run_default_gpu(const char *prog);           // no flags: train_gpt2.c's embedded default, on the GPU
// train_gpt2.c's option table plus --precision bf16|fp32; NULL with *rc the exit code (0 after --help)
HostRun *host_parse_args(int argc, char **argv, int *rc);
int host_train_gpu(HostRun *run, int argc, char **argv); // train_gpt2.c's run_training_on, GPU backend
void host_run_free(HostRun *run);

// for the tests
int hostapi_cpu_main(int argc, char **argv);          // train_gpt2.c's trainer, in this process
void hostapi_reset_stop(void);                        // before another run in the same process

// an llm.c checkpoint: cfg6 = maxT, V, Vp, L, NH, C; *params malloc'ed (caller frees)
int hostapi_load_checkpoint(const char *path, int cfg6[6], float **params, size_t *n);

typedef struct {
    size_t nA, nB, nkept;
    float *params;     // (nA + nB), dense (caller frees)
    uint32_t *kept;    // (nkept) or NULL (caller frees)
    int b_storage;     // the file's B storage: 0 dense, 1 sparse (B exactly 0 outside the mask), 2 dense+mask
    int stage;
} HostAdapterInfo;
int hostapi_adapter_read(const char *path, HostAdapterInfo *out);

typedef struct {   // GPUAdapterDesc plus the host values
    int base_absorbs, rank;
    float scale, dropout;
    int trains_A, nslots;
    const int *slot_layer, *slot_target, *slot_in, *slot_out;
    const size_t *a_off, *b_off;
    size_t nA, nB;
    float *params;     // the host adapter's values (A's then B's), owned by it
} HostAdapterDesc;
// a host Adapter on all four targets (kaiming A from seed, B = 0); returns an opaque handle
void *hostapi_adapter_new(int kind, int rank, float alpha, int L, int C, uint64_t seed, float dropout, HostAdapterDesc *d);
void hostapi_adapter_set_mask(void *ad, const uint8_t *mask, uint32_t **kept, size_t *nkept);
void hostapi_plora_unload(GPUModel *gm, void *ad, float momentum); // the trainer's unload (device fold + host re-init)
void hostapi_adapter_free(void *ad);

#ifdef __cplusplus
}
#endif
#endif
