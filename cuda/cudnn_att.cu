/*
cuda/cudnn_att.cu — cuda/cudnn_att.h's causal attention on cuDNN's fused flash attention, through
cudnn-frontend's graph API (the way llm.c's llmc/cudnn_att.cpp does it). Compiled only in USE_CUDNN=1
builds. One handle for the process; per shape a forward graph (which also writes the softmax
statistics the backward needs) and a backward graph, built when the model is created (building
is the slow part: up to seconds); execution allocates nothing.
*/
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <cudnn_frontend.h>
#include "cudnn_att.h"
#include "common.cuh"

namespace fe = cudnn_frontend;

enum { Q_UID = 1, K_UID, V_UID, SCALE_UID, O_UID, STATS_UID, DO_UID, DQ_UID, DK_UID, DV_UID };

struct CudnnAttention {
    int B, NH, T, HS;
    long ldo, lddo;
    std::shared_ptr<fe::graph::Graph> fwd, bwd;
    void *workspace = nullptr;
    size_t workspace_bytes = 0;
};

static cudnnHandle_t g_cudnn = nullptr;

// (B, NH, T, HS) views of a row-major (B, T, ld) buffer whose head h starts at column h*HS
static std::vector<int64_t> bnth_stride(int T, int HS, long ld) { return {(int64_t)T * ld, HS, ld, 1}; }

static std::shared_ptr<fe::graph::Tensor_attributes> bnth(std::shared_ptr<fe::graph::Graph> &g, const char *name, int uid,
                                                          const CudnnAttention &a, long ld) {
    return g->tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim({a.B, a.NH, a.T, a.HS})
                         .set_stride(bnth_stride(a.T, a.HS, ld)));
}
static std::shared_ptr<fe::graph::Tensor_attributes> scale_tensor(std::shared_ptr<fe::graph::Graph> &g) {
    return g->tensor(fe::graph::Tensor_attributes().set_name("attn_scale").set_uid(SCALE_UID).set_dim({1, 1, 1, 1})
                         .set_stride({1, 1, 1, 1}).set_is_pass_by_value(true).set_data_type(fe::DataType_t::FLOAT));
}
static std::shared_ptr<fe::graph::Graph> new_graph() {
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16).set_intermediate_data_type(fe::DataType_t::FLOAT).set_compute_data_type(fe::DataType_t::FLOAT);
    return g;
}

// validate, build the operation graph and the plans (the slow part); false with the message in err
static bool failed(fe::error_t e, const char *what, char *err, size_t errlen) {
    if (e.is_good()) return false;
    snprintf(err, errlen, "cuDNN attention %s graph: %s", what, e.get_message().c_str());
    return true;
}
static bool build(std::shared_ptr<fe::graph::Graph> &g, const char *what, char *err, size_t errlen) {
    if (failed(g->validate(), what, err, errlen)) return false;
    if (failed(g->build_operation_graph(g_cudnn), what, err, errlen)) return false;
    if (failed(g->create_execution_plans({fe::HeurMode_t::A}), what, err, errlen)) return false;
    if (failed(g->check_support(g_cudnn), what, err, errlen)) return false;
    return !failed(g->build_plans(g_cudnn), what, err, errlen);
}

static bool build_forward(CudnnAttention &a, char *err, size_t errlen) {
    auto g = new_graph();
    long ldqkv = 3L * a.NH * a.HS;
    auto Q = bnth(g, "Q", Q_UID, a, ldqkv), K = bnth(g, "K", K_UID, a, ldqkv), V = bnth(g, "V", V_UID, a, ldqkv);
    auto opts = fe::graph::SDPA_attributes().set_name("attention").set_generate_stats(true).set_attn_scale(scale_tensor(g))
                    .set_causal_mask(true);
    auto [O, stats] = g->sdpa(Q, K, V, opts);
    O->set_output(true).set_uid(O_UID).set_dim({a.B, a.NH, a.T, a.HS}).set_stride(bnth_stride(a.T, a.HS, a.ldo));
    stats->set_output(true).set_uid(STATS_UID).set_data_type(fe::DataType_t::FLOAT).set_dim({a.B, a.NH, a.T, 1})
        .set_stride({(int64_t)a.NH * a.T, a.T, 1, 1});
    if (!build(g, "forward", err, errlen)) return false;
    a.fwd = g;
    return true;
}

static bool build_backward(CudnnAttention &a, char *err, size_t errlen) {
    auto g = new_graph();
    long ldqkv = 3L * a.NH * a.HS;
    auto Q = bnth(g, "Q", Q_UID, a, ldqkv), K = bnth(g, "K", K_UID, a, ldqkv), V = bnth(g, "V", V_UID, a, ldqkv);
    auto O = bnth(g, "O", O_UID, a, a.ldo), dO = bnth(g, "dO", DO_UID, a, a.lddo);
    auto stats = g->tensor(fe::graph::Tensor_attributes().set_name("stats").set_uid(STATS_UID).set_dim({a.B, a.NH, a.T, 1})
                               .set_stride({(int64_t)a.NH * a.T, a.T, 1, 1}).set_data_type(fe::DataType_t::FLOAT));
    auto opts = fe::graph::SDPA_backward_attributes().set_name("attention_backward").set_causal_mask(true)
                    .set_attn_scale(scale_tensor(g)).set_deterministic_algorithm(true);
    auto [dQ, dK, dV] = g->sdpa_backward(Q, K, V, O, dO, stats, opts);
    dQ->set_output(true).set_uid(DQ_UID).set_dim({a.B, a.NH, a.T, a.HS}).set_stride(bnth_stride(a.T, a.HS, ldqkv));
    dK->set_output(true).set_uid(DK_UID).set_dim({a.B, a.NH, a.T, a.HS}).set_stride(bnth_stride(a.T, a.HS, ldqkv));
    dV->set_output(true).set_uid(DV_UID).set_dim({a.B, a.NH, a.T, a.HS}).set_stride(bnth_stride(a.T, a.HS, ldqkv));
    if (!build(g, "backward", err, errlen)) return false;
    a.bwd = g;
    return true;
}

CudnnAttention *cudnn_attention_create(int B, int NH, int T, int HS, long ldo, long lddo, size_t *workspace_bytes, char *err,
                                       size_t errlen) {
    if (HS % 8 != 0 || HS > 128) {
        snprintf(err, errlen, "cuDNN attention: head size %d (needs a multiple of 8, at most 128)", HS);
        return nullptr;
    }
    if (!g_cudnn) {
        cudnnStatus_t s = cudnnCreate(&g_cudnn);
        if (s != CUDNN_STATUS_SUCCESS) {
            snprintf(err, errlen, "cuDNN: %s", cudnnGetErrorString(s));
            return nullptr;
        }
    }
    CudnnAttention *a = new CudnnAttention();
    a->B = B; a->NH = NH; a->T = T; a->HS = HS; a->ldo = ldo; a->lddo = lddo;
    int64_t wf = 0, wb = 0;
    bool ok = build_forward(*a, err, errlen) && build_backward(*a, err, errlen);
    if (ok) ok = a->fwd->get_workspace_size(wf).is_good() && a->bwd->get_workspace_size(wb).is_good();
    if (ok) {
        a->workspace_bytes = (size_t)std::max<int64_t>(std::max(wf, wb), 1);
        if (cudaMalloc(&a->workspace, a->workspace_bytes) != cudaSuccess) {
            (void)cudaGetLastError();
            snprintf(err, errlen, "cuDNN attention: out of GPU memory for a %zu-byte workspace", a->workspace_bytes);
            ok = false;
        }
    }
    if (!ok) {
        cudnn_attention_free(a);
        return nullptr;
    }
    *workspace_bytes = a->workspace_bytes;
    return a;
}

static void execute(CudnnAttention *a, std::shared_ptr<fe::graph::Graph> &g, std::unordered_map<int64_t, void *> &pack,
                    cudaStream_t st, const char *what) {
    if (cudnnSetStream(g_cudnn, st) != CUDNN_STATUS_SUCCESS) { fprintf(stderr, "error: cuDNN: cudnnSetStream\n"); exit(1); }
    fe::error_t e = g->execute(g_cudnn, pack, a->workspace);
    if (!e.is_good()) { // (as a failed CUDA call: the shapes were checked when the graph was built)
        fprintf(stderr, "error: cuDNN attention %s: %s\n", what, e.get_message().c_str());
        exit(1);
    }
    CUDA_LAUNCH_CHECK();
}

void cudnn_attention_forward(CudnnAttention *a, __nv_bfloat16 *out, float *stats, const __nv_bfloat16 *qkv, cudaStream_t st) {
    float scale = 1.0f / sqrtf((float)a->HS);
    int C = a->NH * a->HS;
    void *q = (void *)qkv;
    std::unordered_map<int64_t, void *> pack = {{Q_UID, q}, {K_UID, (void *)(qkv + C)}, {V_UID, (void *)(qkv + 2 * C)},
                                                {SCALE_UID, &scale}, {O_UID, out}, {STATS_UID, stats}};
    execute(a, a->fwd, pack, st, "forward");
}

void cudnn_attention_backward(CudnnAttention *a, __nv_bfloat16 *dqkv, const __nv_bfloat16 *dout, const __nv_bfloat16 *qkv,
                              const __nv_bfloat16 *out, const float *stats, cudaStream_t st) {
    float scale = 1.0f / sqrtf((float)a->HS);
    int C = a->NH * a->HS;
    std::unordered_map<int64_t, void *> pack = {
        {Q_UID, (void *)qkv},  {K_UID, (void *)(qkv + C)}, {V_UID, (void *)(qkv + 2 * C)}, {O_UID, (void *)out},
        {DO_UID, (void *)dout}, {STATS_UID, (void *)stats}, {DQ_UID, dqkv}, {DK_UID, dqkv + C}, {DV_UID, dqkv + 2 * C},
        {SCALE_UID, &scale}};
    execute(a, a->bwd, pack, st, "backward");
}

void cudnn_attention_free(CudnnAttention *a) {
    if (!a) return;
    if (a->workspace) cudaFree(a->workspace);
    delete a;
}
