/*
llmc/state.h — the resumable training state, DIR/state.bin (our format; one reader, one writer).
*/
#ifndef LLMC_STATE_H
#define LLMC_STATE_H

#include <stdint.h>
#include <string.h>
#include "utils.h"
#include "model.h"
#include "optim.h"

// resumable training state: DIR/state.bin (our format)
//   header 256 int32: [0]=20241121 [1]=1 [2]=adapter kind [3]=next step [4]=LoRI phase (0 D, 1 S)
//   [5]=PLoRA stage [6]=base params follow [7]=mask follows [8]=optimizer t; uint64 at int pairs
//   [16,17] data epoch, [18,19] shard, [20,21] row, [22,23] optimizer entries, [24,25] dropout rng,
//   [26,27] sample rng, [28,29] adapter params, [9] PLoRA history stages (nhist),
//   [30] [31] [32] AdamW beta1, beta2, eps (float bits; all 0 in files written before they were
//   stored: llm.c's 0.9, 0.999, 1e-8)
//   body: base params (float, if [6]), adapter params (float, nA+nB), mask (nB bytes, if [7]),
//   PLoRA history (float, nhist x (nA+nB)), m, v. A PLoRA state's history has one entry per unload
//   ([9] == [5]); one without (older builds) is refused: its exports could not reproduce the run.

typedef struct {
    int step, phase;
    int64_t epoch, shard, row;
    uint64_t sample_rng;
} TrainPos;

static void put_u64(int32_t *h, int at, uint64_t v) { memcpy(h + at, &v, 8); }
static uint64_t get_u64(const int32_t *h, int at) { uint64_t v; memcpy(&v, h + at, 8); return v; }

static int save_state(const char *path, GPT2 *m, AdamW *opt, const TrainPos *pos, char *err, size_t errlen) {
    Adapter *ad = m->adapter;
    int32_t h[256] = {0};
    h[0] = 20241121; h[1] = 1; h[2] = ad ? (int)ad->cfg.kind : 0; h[3] = pos->step; h[4] = pos->phase;
    h[5] = ad ? ad->stage : 0;
    h[6] = !ad || ad->cfg.kind == ADAPTER_PLORA; // the base changes only in full FT and PLoRA
    h[7] = ad && ad->mask;
    h[8] = opt->t;
    put_u64(h, 16, (uint64_t)pos->epoch); put_u64(h, 18, (uint64_t)pos->shard); put_u64(h, 20, (uint64_t)pos->row);
    put_u64(h, 22, opt->total); put_u64(h, 24, ad ? ad->drop_rng : 0); put_u64(h, 26, pos->sample_rng);
    put_u64(h, 28, ad ? ad->nA + ad->nB : 0);
    h[9] = ad ? ad->nhist : 0;
    memcpy(&h[30], &opt->beta1, 4); memcpy(&h[31], &opt->beta2, 4); memcpy(&h[32], &opt->eps, 4);
    const void *bufs[7] = {h, m->params_memory, ad ? ad->params : NULL, ad ? ad->mask : NULL, ad ? ad->hist : NULL, opt->m, opt->v};
    size_t sizes[7] = {sizeof(h), h[6] ? m->num_parameters * 4 : 0, ad ? (ad->nA + ad->nB) * 4 : 0,
                       h[7] ? ad->nB : 0, ad ? (size_t)ad->nhist * (ad->nA + ad->nB) * 4 : 0, opt->total * 4, opt->total * 4};
    return write_chunks_atomic(path, bufs, sizes, 7, err, errlen);
}

// Restores what save_state wrote. The optimizer is set up again afterwards by the caller when the
// mask changes its layout, so the mask is restored first: call with opt == NULL to restore the
// model/adapter/mask/position only, then with opt to fill the moments.
static int load_state(const char *path, GPT2 *m, AdamW *opt, TrainPos *pos, char *err, size_t errlen) {
    size_t size;
    uint8_t *buf = read_whole_file(path, &size, err, errlen);
    if (!buf) return -1;
    int32_t h[256];
    Adapter *ad = m->adapter;
    if (size < sizeof(h)) { snprintf(err, errlen, "%s: truncated state file", path); free(buf); return -1; }
    memcpy(h, buf, sizeof(h));
    if (h[0] != 20241121 || h[1] != 1) { snprintf(err, errlen, "%s: not a training state file (magic/version)", path); free(buf); return -1; }
    if (h[2] != (ad ? (int)ad->cfg.kind : 0)) {
        snprintf(err, errlen, "%s: saved with --adapter %s, resuming with --adapter %s", path,
                 variant_of((AdapterKind)h[2])->name, ad ? variant_of(ad->cfg.kind)->name : "none");
        free(buf); return -1;
    }
    size_t nad = get_u64(h, 28), ntot = get_u64(h, 22);
    if (nad != (ad ? ad->nA + ad->nB : 0)) { snprintf(err, errlen, "%s: adapter shape differs from the command line's (--rank/--targets)", path); free(buf); return -1; }
    if (h[3] < 0 || h[4] < 0 || h[4] > 1 || h[5] < 0 || h[8] < 0 || (h[6] != 0 && h[6] != 1) || (h[7] != 0 && h[7] != 1) ||
        h[9] < 0 || h[9] > h[5] || (h[9] > 0 && (!ad || nad > size / 4 / (size_t)h[9])) ||
        (int64_t)get_u64(h, 16) < 0 || (int64_t)get_u64(h, 18) < 0 || (int64_t)get_u64(h, 20) < 0 || ntot > size / 8) {
        snprintf(err, errlen, "%s: corrupt header (step, phase, stage, flags, data position or optimizer size out of range)", path);
        free(buf); return -1;
    }
    if (ad && ad->cfg.kind == ADAPTER_PLORA && h[9] != h[5]) {
        snprintf(err, errlen, "%s: a PLoRA state after %d unloads without their history (written by an older build): its adapter.bin "
                 "and PEFT export could not reproduce the run; start again, or use that run's model.bin", path, h[5]);
        free(buf); return -1;
    }
    size_t nhist = (size_t)h[9];
    size_t expect = sizeof(h) + (h[6] ? m->num_parameters * 4 : 0) + nad * 4 + (h[7] ? (ad ? ad->nB : 0) : 0) + nhist * nad * 4 + ntot * 8;
    if (size != expect) { snprintf(err, errlen, "%s: %zu bytes, expected %zu (truncated, or a different model)", path, size, expect); free(buf); return -1; }
    const uint8_t *p = buf + sizeof(h);
    if (h[7] && ad) {
        const uint8_t *mk = p + (h[6] ? m->num_parameters * 4 : 0) + nad * 4;
        for (size_t i = 0; i < ad->nB; i++)
            if (mk[i] > 1) { snprintf(err, errlen, "%s: mask entry %zu is %u, not 0 or 1", path, i, mk[i]); free(buf); return -1; }
    }
    if (h[6]) { memcpy(m->params_memory, p, m->num_parameters * 4); p += m->num_parameters * 4; }
    if (ad) {
        memcpy(ad->params, p, nad * 4); p += nad * 4;
        // the mask only on the first call: adapter_set_mask frees ad->kept, which adamw_setup has
        // since registered as the optimizer's index list for B
        if (h[7]) { if (!opt) adapter_set_mask(ad, p, 0); p += ad->nB; }
        if (!opt && nhist) { // the history (the first call; PLoRA's stages unloaded so far)
            if (plora_reserve_history(ad, (int)nhist) != 0) { snprintf(err, errlen, "%s: out of memory for the PLoRA history", path); free(buf); return -1; }
            memcpy(ad->hist, p, nhist * nad * 4);
        }
        if (!opt) ad->nhist = (int)nhist;
        p += nhist * nad * 4;
        ad->stage = h[5];
        ad->drop_rng = get_u64(h, 24);
    }
    pos->step = h[3]; pos->phase = h[4];
    pos->epoch = (int64_t)get_u64(h, 16); pos->shard = (int64_t)get_u64(h, 18); pos->row = (int64_t)get_u64(h, 20);
    pos->sample_rng = get_u64(h, 26);
    if (opt) {
        float hp[3] = {0.9f, 0.999f, 1e-8f}, want[3] = {opt->beta1, opt->beta2, opt->eps};
        static const char *hn[3] = {"beta1", "beta2", "eps"};
        if (h[30] || h[31] || h[32]) { memcpy(&hp[0], &h[30], 4); memcpy(&hp[1], &h[31], 4); memcpy(&hp[2], &h[32], 4); }
        for (int i = 0; i < 3; i++)
            if (hp[i] != want[i]) { snprintf(err, errlen, "%s: saved with --%s %g, resuming with --%s %g (resume is exact only with the same AdamW settings)", path, hn[i], hp[i], hn[i], want[i]); free(buf); return -1; }
        if (opt->total != ntot) { snprintf(err, errlen, "%s: the file has %zu optimizer entries, this run has %zu", path, ntot, opt->total); free(buf); return -1; }
        memcpy(opt->m, p, ntot * 4); p += ntot * 4;
        memcpy(opt->v, p, ntot * 4);
        opt->t = h[8];
    }
    free(buf);
    return 0;
}

#endif // LLMC_STATE_H
