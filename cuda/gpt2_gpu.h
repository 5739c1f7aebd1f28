/*
cuda/gpt2_gpu.h — the C interface between the GPU model (train_gpt2.cu, C++/CUDA) and the host side
(cuda/host.c, C: the command line, data, adapter files and the training loop shared with
train_gpt2.c). Plain C types only, so both languages include it.

The host keeps the authoritative description of the adapter (lora/adapter.h's Adapter: slots,
offsets, the seeded draws of A, the LoRI mask as kept indices) and hands the GPU the shapes once
(GPUAdapterDesc) and the values whenever they change on the host (gpu_set_adapter / gpu_set_mask).
Parameters cross as float32 in llm.c's checkpoint order; adapter values as lora/adapter.h's one
buffer, every A then every B.
*/
#ifndef CUDA_GPT2_GPU_H
#define CUDA_GPT2_GPU_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct GPUModel GPUModel;

typedef struct {
    int max_seq_len, vocab_size, padded_vocab_size, num_layers, num_heads, channels;
} GPUConfig;

typedef struct {            // an Adapter's shapes (lora/adapter.h)
    int base_absorbs;       // the base absorbs the adapter during training (PLoRA): keep its fp32 master
    int rank;
    float scale;            // s = alpha / r (or alpha / sqrt(r))
    float dropout;
    int trains_A;           // 0 for LoRI
    int nslots;
    const int *slot_layer, *slot_target, *slot_in, *slot_out;
    const size_t *a_off, *b_off;
    size_t nA, nB;
} GPUAdapterDesc;

// B, T: the batch the activations are allocated for. bf16: 1 = bf16 activations and frozen weights
// with fp32 master copies of what trains; 0 = everything fp32. simple_kernels: the reference
// attention kernels instead of the tensor-core (or cuDNN) ones. ad NULL: full fine-tuning. Every
// buffer a step needs is allocated here, and the step's CUDA graphs are captured. Returns NULL with
// the reason in err (a shape the kernels do not support, out of GPU memory).
GPUModel *gpu_create(const GPUConfig *c, const float *params, const GPUAdapterDesc *ad, int B, int T, int bf16,
                     int simple_kernels, char *err, size_t errlen);
void gpu_free(GPUModel *m);
const char *gpu_describe(GPUModel *m);
const char *gpu_error(GPUModel *m);                     // why the last call that returned -1 failed

void gpu_set_params(GPUModel *m, const float *params);  // host float32 (num_parameters) -> device
void gpu_get_params(GPUModel *m, float *params);        // the base as the GPU has it now
void gpu_set_adapter(GPUModel *m, const float *ab);     // (nA + nB) -> device (master and bf16 copy)
void gpu_get_adapter(GPUModel *m, float *ab);
int gpu_set_mask(GPUModel *m, const uint32_t *kept, size_t nkept, int use); // LoRI-S: trainable B entries (-1: no memory)
void gpu_set_dropout(GPUModel *m, uint64_t rng_state, int training);       // the adapter's dropout stream
uint64_t gpu_get_dropout_rng(GPUModel *m);

// the optimizer: groups as train_gpt2.c's adamw_setup (same order: the moments are its m and v)
int gpu_opt_setup(GPUModel *m);                         // groups from what trains now; moments zeroed (-1: no memory)
size_t gpu_opt_size(GPUModel *m);
void gpu_opt_reset(GPUModel *m);                        // zero the moments
void gpu_opt_get(GPUModel *m, float *mom, float *var);
void gpu_opt_set(GPUModel *m, const float *mom, const float *var);

void gpu_zero_grad(GPUModel *m);
// Forward of a (B,T) batch; targets NULL: logits only. *loss gets the mean loss over the counted
// targets (mask NULL: all), -1 when none; *count their number (count may be NULL). Returns 0, or -1
// (gpu_error says why: a token id outside the vocab).
int gpu_forward(GPUModel *m, const int *inputs, const int *targets, const uint8_t *mask, float *loss, long *count);
// Forward and backward in one pass (the loss weight of a counted target is `scale`); accumulates
// the gradients. Returns what gpu_forward returns.
int gpu_forward_backward(GPUModel *m, const int *inputs, const int *targets, const uint8_t *mask, float scale,
                         float *loss, long *count);
float gpu_grad_norm(GPUModel *m);
void gpu_adamw_step(GPUModel *m, float lr, float weight_decay, float gscale, int t);
void gpu_set_adamw(GPUModel *m, float beta1, float beta2, float eps);  // default 0.9, 0.999, 1e-8 (llm.c's CPU values)
// PLoRA: W += factor * s * B A for every adapted slot, on the device (one product per slot)
void gpu_plora_fold(GPUModel *m, float factor);

void gpu_get_logits(GPUModel *m, int row0, int nrows, float *out);  // rows of the last forward's (B*T, Vp) logits
void gpu_get_grads(GPUModel *m, float *g);             // base gradients (full fine-tuning), float32
void gpu_get_adapter_grads(GPUModel *m, float *g);     // (nA + nB)
// the device buffer of the trainable gradients (float32, n) and the stream the model runs on
// (a cudaStream_t): what data parallelism all-reduces (cuda/nccl.h). The gradient norm is recomputed after (the
// training graph's was over this rank's gradients alone)
void gpu_trainable_grads(GPUModel *m, float **grads, size_t *n, void **stream);
// ZeRO-1 (full fine-tuning): keep the moments of trainable entries [lo, hi) only and update only
// them (set before gpu_opt_setup; gpu_opt_get/set then move hi - lo of each); the squared norm of
// that shard's gradients; the fp32 masters and the copy the kernels read (bf16 or the same fp32),
// each with room for GPU_ZERO_PAD more entries, for the all-gather, and the model's stream
#define GPU_ZERO_PAD 4096 // the padding, and so the most ranks ZeRO-1 takes
void gpu_opt_shard(GPUModel *m, size_t lo, size_t hi);
double gpu_grad_sumsq(GPUModel *m);
void gpu_full_params(GPUModel *m, float **p32, void **px, int *px_is_bf16, void **stream);
void gpu_synchronize(GPUModel *m);
// bytes of device memory this model holds now / at most so far (parameters, optimizer state,
// activations, scratch, cuBLASLt workspace; the CUDA context itself not included)
void gpu_memory(GPUModel *m, size_t *now, size_t *peak);

#ifdef __cplusplus
}
#endif
#endif
