#!/usr/bin/env python3
"""
dev/peft_compare.py — do Hugging Face transformers + PEFT give our logits for an exported adapter?

    python3 dev/peft_compare.py --model BASE.bin --peft DIR --tokens FILE.tokens --logits FILE [--device cuda]

  --model   our base as an llm.c checkpoint (lora/METHODS.md §5; version 3 fp32 or 5 bf16). For PLoRA,
            the base with the earlier stages folded in: the one the exported adapter sits on.
  --peft    a directory written by --export-peft (adapter_config.json + adapter_model.safetensors)
  --tokens  raw int32 tokens (T,), and --logits raw float32 (T, V): what the trainer's
            --dump-logits FILE writes (FILE.tokens and FILE: the first validation row, adapter on)

Builds GPT2LMHeadModel from a GPT2Config with our shapes (gelu_new = llm.c's tanh GELU, eps 1e-5,
no dropout), copies our weights in (HF's Conv1D weights are (in, out): the transpose of llm.c's
(out, in); wte is tied to lm_head; the padded vocabulary rows are dropped), loads the adapter with
PeftModel.from_pretrained, runs the tokens in fp32 (TF32 off) and prints the max abs difference
of the logits, next to the same difference for the base alone (how much the adapter moves them).
Exit status 1 when the adapter's logits differ by more than --tol (default 1e-3).
"""
import argparse
import sys

import numpy as np


def load_llmc(path):
    raw = open(path, "rb").read()
    h = np.frombuffer(raw[:1024], dtype="<i4")
    if h[0] != 20240326 or h[1] not in (3, 5):
        sys.exit(f"{path}: not an llm.c v3/v5 checkpoint (magic {h[0]}, version {h[1]})")
    maxT, V, L, NH, C, Vp = (int(x) for x in (h[2], h[3], h[4], h[5], h[6], h[7]))
    if h[1] == 3:
        flat = np.frombuffer(raw[1024:], dtype="<f4")
    else:  # bf16: the high half of a float32
        flat = (np.frombuffer(raw[1024:], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    shapes = [("wte", (Vp, C)), ("wpe", (maxT, C)), ("ln1w", (L, C)), ("ln1b", (L, C)),
              ("qkvw", (L, 3 * C, C)), ("qkvb", (L, 3 * C)), ("attprojw", (L, C, C)), ("attprojb", (L, C)),
              ("ln2w", (L, C)), ("ln2b", (L, C)), ("fcw", (L, 4 * C, C)), ("fcb", (L, 4 * C)),
              ("fcprojw", (L, C, 4 * C)), ("fcprojb", (L, C)), ("lnfw", (C,)), ("lnfb", (C,))]
    n = sum(int(np.prod(s)) for _, s in shapes)
    if flat.size != n:
        sys.exit(f"{path}: {flat.size} values, the header implies {n}")
    p, off = {}, 0
    for name, s in shapes:
        k = int(np.prod(s))
        p[name] = flat[off:off + k].reshape(s)
        off += k
    return dict(maxT=maxT, V=V, L=L, NH=NH, C=C, Vp=Vp), p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--peft", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--logits", required=True)
    ap.add_argument("--device", default=None)
    ap.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args()

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from peft import PeftModel

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg, p = load_llmc(args.model)
    V, L, C = cfg["V"], cfg["L"], cfg["C"]
    tokens = np.fromfile(args.tokens, dtype="<i4")
    ours = np.fromfile(args.logits, dtype="<f4")
    T = tokens.size
    if ours.size != T * V:
        sys.exit(f"{args.logits}: {ours.size} floats, expected T*V = {T}*{V}")
    ours = ours.reshape(T, V)
    if tokens.min() < 0 or tokens.max() >= V or T > cfg["maxT"]:
        sys.exit(f"{args.tokens}: tokens out of range or longer than {cfg['maxT']}")

    hf_cfg = GPT2Config(vocab_size=V, n_positions=cfg["maxT"], n_embd=C, n_layer=L, n_head=cfg["NH"],
                        activation_function="gelu_new", layer_norm_epsilon=1e-5,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
                        bos_token_id=min(50256, V - 1), eos_token_id=min(50256, V - 1))
    model = GPT2LMHeadModel(hf_cfg)
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))  # a writable copy
    sd = {"transformer.wte.weight": t(p["wte"][:V]), "transformer.wpe.weight": t(p["wpe"]),
          "transformer.ln_f.weight": t(p["lnfw"]), "transformer.ln_f.bias": t(p["lnfb"])}
    for l in range(L):
        h = f"transformer.h.{l}."
        sd[h + "ln_1.weight"], sd[h + "ln_1.bias"] = t(p["ln1w"][l]), t(p["ln1b"][l])
        sd[h + "attn.c_attn.weight"], sd[h + "attn.c_attn.bias"] = t(p["qkvw"][l].T), t(p["qkvb"][l])
        sd[h + "attn.c_proj.weight"], sd[h + "attn.c_proj.bias"] = t(p["attprojw"][l].T), t(p["attprojb"][l])
        sd[h + "ln_2.weight"], sd[h + "ln_2.bias"] = t(p["ln2w"][l]), t(p["ln2b"][l])
        sd[h + "mlp.c_fc.weight"], sd[h + "mlp.c_fc.bias"] = t(p["fcw"][l].T), t(p["fcb"][l])
        sd[h + "mlp.c_proj.weight"], sd[h + "mlp.c_proj.bias"] = t(p["fcprojw"][l].T), t(p["fcprojb"][l])
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith(("attn.bias", "attn.masked_bias"))]
    if missing or unexpected:
        sys.exit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    model = model.to(dev).eval()
    peft_model = PeftModel.from_pretrained(model, args.peft).to(dev).eval()
    x = torch.from_numpy(tokens.astype(np.int64)).unsqueeze(0).to(dev)
    with torch.no_grad():
        hf = peft_model(x).logits[0].float().cpu().numpy()
        with peft_model.disable_adapter():
            base = peft_model(x).logits[0].float().cpu().numpy()
    d = float(np.abs(hf - ours).max())
    d_base = float(np.abs(base - ours).max())
    print(f"T={T} V={V} L={L} C={C} device={dev}")
    print(f"max |logits_peft - logits_ours|  = {d:.3e}   (tolerance {args.tol:g})")
    print(f"max |logits_base - logits_ours|  = {d_base:.3e}   (the adapter's effect, for scale)")
    print(f"max |logits_ours|                = {float(np.abs(ours).max()):.3e}")
    sys.exit(0 if d <= args.tol else 1)


if __name__ == "__main__":
    main()
