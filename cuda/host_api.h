/*
cuda/host_api.h — what cuda/host.c offers the GPU trainer's tests (test_gpt2.cu), in plain C types:
the CPU and GPU trainers' mains (to run both on the same flags in one process), the checkpoint
and adapter-file readers, and a host adapter for the in-process checks of LoRI-S and PLoRA.
*/
#ifndef CUDA_HOST_API_H
#define CUDA_HOST_API_H
#include <stddef.h>
#include <stdint.h>
#include "gpt2_gpu.h"
#ifdef __cplusplus
extern "C" {
#endif

int gpu_trainer_main(int argc, char **argv);          // the GPU trainer (train_gpt2.cu's main)
int hostapi_gpu_main(int argc, char **argv);          // the same, callable more than once
int hostapi_cpu_main(int argc, char **argv);          // train_gpt2.c's trainer, in this process

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
    int kind, rank;
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
