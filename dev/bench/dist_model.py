#!/usr/bin/env python3
"""dev/bench/dist_model.py — the scaling model of data-parallel training (README, "Data parallel").

Bytes all-reduced per step = 4 x the trainable values (float32 gradients, one bucket). The time of
one all-reduce of S bytes over N ranks is the ring's
    t = alpha + 2 (N-1)/N * S / bw
inside a node (bw: NCCL's bus bandwidth over NVLink), and across M nodes of G GPUs the hierarchical
one: the node's reduce-scatter and all-gather over NVLink plus the all-reduce between nodes of what
the node holds, 2 (M-1)/M * S through the node's network link. Efficiency = t_step / (t_step + t),
the all-reduce after the backward as built (no overlap); 'overlapped' hides it behind the backward
(2/3 of the step) as far as it fits. Step times: measured (README: H200, B=16, T=1024 per GPU, bf16,
our own attention kernels (2026-12-01); with USE_CUDNN=1 the steps are 9-11% shorter and the all-reduce's share that much larger;
CPU: 2 threads, B=4, T=64). Bandwidths and latencies: assumptions, stated below; issue #17 measures
them on 2-8 H200s.
"""

# GPT-2 124M (d12: L=12, C=768, vocab padded to 50304, context 1024)
L, C, VP, T = 12, 768, 50304, 1024
full = VP * C + T * C + L * (2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C) + 2 * C
targets = [(C, 3 * C), (C, C), (C, 4 * C), (4 * C, C)]  # qkv, attn_proj, fc, fc_proj: (in, out)
r = 16
lora = L * sum(r * (i + o) for i, o in targets)
lori_b = L * sum(r * o for i, o in targets)
lori_s_kept = round(0.1 * lori_b)  # sparsity 0.9: the CPU packs the kept entries; the GPU sends all of B

variants = [  # name, values all-reduced, GPU step ms (measured), CPU step ms (measured)
    ("full fine-tuning", full, 16384 / 496485 * 1000, 1509.0),
    ("LoRA r=16 (PLoRA the same)", lora, 16384 / 600147 * 1000, 794.0),
    ("LoRI-D r=16 (B only)", lori_b, 16384 / 622966 * 1000, None),
    ("LoRI-S r=16, GPU (all of B)", lori_b, 16384 / 622966 * 1000, None),
    ("LoRI-S r=16, CPU (kept 10% of B)", lori_s_kept, None, 794.0),
]

NVLINK_BW, NVLINK_ALPHA = 360e9, 20e-6   # NCCL ring bus bandwidth, H200 NVLink 4, NVLS off; per all-reduce
NET_ALPHA = 50e-6                        # between nodes
SHM_BW, SHM_ALPHA = 5e9, 10e-6           # CPU ranks of one machine (MPI over shared memory): 5 GB/s


def ring(S, n, bw, alpha):
    return 0.0 if n == 1 else alpha + 2 * (n - 1) / n * S / bw


def eff(step, t, overlap=False):
    hidden = min(t, 2 / 3 * step) if overlap else 0.0
    return step / (step + t - hidden)


def main():
    print("| variant | values | MB/step | GPU step ms | 2 GPUs | 4 GPUs | 8 GPUs | 2x8, 100 Gb/s | 2x8, 200 Gb/s | 2x8, 400 Gb/s | 2x8, 100 Gb/s overlapped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, gstep, _ in variants:
        if gstep is None:
            continue
        S = 4 * n
        step = gstep / 1000
        cells = [f"{eff(step, ring(S, g, NVLINK_BW, NVLINK_ALPHA)):.1%}" for g in (2, 4, 8)]
        for gbit in (100, 200, 400):
            t = ring(S, 8, NVLINK_BW, NVLINK_ALPHA) + ring(S, 2, gbit / 8 * 1e9, NET_ALPHA)
            cells.append(f"{eff(step, t):.1%}")
        t = ring(S, 8, NVLINK_BW, NVLINK_ALPHA) + ring(S, 2, 100 / 8 * 1e9, NET_ALPHA)
        cells.append(f"{eff(step, t, True):.1%}")
        print(f"| {name} | {n:,} | {S / 1e6:.2f} | {gstep:.1f} | " + " | ".join(cells) + " |")
    print()
    print("| variant (CPU, 124M, B=4 T=64, 2 threads a rank) | MB/step | CPU step ms | 2 ranks, one machine | 2 machines, 100 Gb/s | 8 machines, 100 Gb/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, n, _, cstep in variants:
        if cstep is None:
            continue
        S = 4 * n
        step = cstep / 1000
        print(f"| {name} | {S / 1e6:.2f} | {cstep:.0f} | {eff(step, ring(S, 2, SHM_BW, SHM_ALPHA)):.1%} | "
              f"{eff(step, ring(S, 2, 12.5e9, NET_ALPHA)):.1%} | {eff(step, ring(S, 8, 12.5e9, NET_ALPHA)):.1%} |")


if __name__ == "__main__":
    main()
