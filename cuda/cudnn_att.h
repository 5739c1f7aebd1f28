/*
cuda/cudnn_att.h — causal self-attention through cuDNN's fused flash attention (SDPA), for the
USE_CUDNN=1 builds (cuda/cuda.mk; cuda/cudnn_att.cu is compiled on its own: cudnn-frontend's
headers are slow to compile). bf16 only, head sizes up to 128, the same layouts as attention.cuh:

    qkv (B,T,3C) [q;k;v] per row; out (B,T,C) with row stride ldo; stats (B,NH,T) the log-sum-exp
    of each row's scaled scores (what our kernels call lse); dout (B,T,C) with row stride lddo;
    dqkv (B,T,3C) overwritten.

cudnn_attention_create builds (or finds in its cache) the forward and backward graphs of one shape
and allocates their workspace, so the passes themselves allocate nothing and can be captured into
a CUDA graph. Returns NULL with the reason in err.
*/
#pragma once
#include <stddef.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>

typedef struct CudnnAttention CudnnAttention;
CudnnAttention *cudnn_attention_create(int B, int NH, int T, int HS, long ldo, long lddo, size_t *workspace_bytes, char *err,
                                       size_t errlen);
void cudnn_attention_forward(CudnnAttention *a, __nv_bfloat16 *out, float *stats, const __nv_bfloat16 *qkv, cudaStream_t st);
void cudnn_attention_backward(CudnnAttention *a, __nv_bfloat16 *dqkv, const __nv_bfloat16 *dout, const __nv_bfloat16 *qkv,
                              const __nv_bfloat16 *out, const float *stats, cudaStream_t st);
void cudnn_attention_free(CudnnAttention *a);
