#!/usr/bin/env python3
"""
PyTorch + PEFT on GPT-2 124M's shape, the baseline of dev/bench/gpu.sh.

    python3 dev/bench/peft_bench.py --mode eager|compile [--steps 20] [--warmup 5] [--full]

transformers' GPT2LMHeadModel from a GPT2Config (12 layers, 12 heads, 768 channels, vocab 50257,
context 1024; dropout off, as in our trainer), random init, LoRA r=16 alpha=32 on c_attn, c_proj
(both attention's and the MLP's) and c_fc through PEFT, bf16 autocast (fp32 weights, as PEFT users
run it), AdamW (fused) on the trainable parameters, gradient clipping at 1.0, B=16, T=1024 random
tokens. --full: full fine-tuning, no PEFT. --mode compile wraps the model in torch.compile (default
mode); compilation happens in the warm-up steps, which are not timed.
Prints one JSON line: tokens/s over the timed steps (CUDA-synchronized wall clock), and peak GPU
memory (torch.cuda.max_memory_allocated over the whole run, warm-up included).
"""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--full", action="store_true")
    a = ap.parse_args()

    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    cfg = GPT2Config(n_positions=1024, n_embd=768, n_layer=12, n_head=12, vocab_size=50257,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg).cuda()
    if not a.full:
        from peft import LoraConfig, get_peft_model
        lcfg = LoraConfig(r=a.rank, lora_alpha=2 * a.rank, target_modules=["c_attn", "c_proj", "c_fc"],
                          lora_dropout=0.0, fan_in_fan_out=True, bias="none")
        model = get_peft_model(model, lcfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    fwd = torch.compile(model) if a.mode == "compile" else model
    x = torch.randint(0, 50257, (a.batch, a.seq), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = fwd(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    torch.cuda.reset_peak_memory_stats()
    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    print(json.dumps({
        "mode": a.mode, "full": a.full, "tok_per_s": a.batch * a.seq * a.steps / dt, "ms_per_step": 1000 * dt / a.steps,
        "peak_bytes": torch.cuda.max_memory_allocated(), "loss": float(loss),
        "trainable": sum(p.numel() for p in params), "attn": getattr(model.config, "_attn_implementation", "?"),
        "torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
    }))


if __name__ == "__main__":
    main()
