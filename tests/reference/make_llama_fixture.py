#!/usr/bin/env python3
"""Generates tests/reference/fixtures/llama_tiny: a tiny random HF
LlamaForCausalLM checkpoint plus fixture.safetensors with the logits, the loss
and the gradient of that loss w.r.t. every parameter, computed in float64 by
transformers (the independent reference for the engine's parity test).

Run inside a throwaway venv (see tests/reference/README.md); needs torch,
transformers and safetensors. Output is deterministic for a given torch
version (seeded); the committed fixture is what the tests use.
"""
import json
import math
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "llama_tiny")

B, T = 2, 11


def main():
    torch.manual_seed(20261201)
    cfg = LlamaConfig(
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,   # GQA: 2 query heads per KV head
        head_dim=16,
        vocab_size=101,          # odd on purpose
        max_position_embeddings=64,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        # original_max_position_embeddings 16: wavelengths above 16 positions
        # are divided by factor, those between 4 and 16 are ramped, so every
        # frequency of head_dim 16 is changed by the scaling.
        rope_scaling={"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
    )
    model = LlamaForCausalLM(cfg).to(torch.float32)
    # Weights larger than the default init (std 0.02) so the logits are far
    # from uniform and every gradient is well above float32 noise; norm
    # weights away from 1 so their gradients matter.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    os.makedirs(OUT, exist_ok=True)
    model.save_pretrained(OUT, safe_serialization=True)

    # The frequencies really are scaled for this config.
    rot = model.model.rotary_emb
    plain = 1.0 / 500000.0 ** (torch.arange(0, 16, 2, dtype=torch.float64) / 16)
    scaled = rot.inv_freq.double()
    assert (scaled - plain).abs().max() > 1e-3 * plain.abs().max(), "rope scaling inactive"

    # float64 reference from the very float32 values saved above.
    model = model.double()
    model.config._attn_implementation = "eager"
    g = torch.Generator().manual_seed(7)
    input_ids = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
    # Row 0 starts at position 0; row 1 at 3 (a plain causal row whose
    # positions are offset, which RoPE must honour).
    position_ids = torch.stack([torch.arange(0, T), torch.arange(3, 3 + T)])
    # Next-token targets; row 0's last target is a fresh random token, row
    # 1's last target is -1 (no target), so 21 of the 22 positions count.
    targets = torch.full((B, T), -1, dtype=torch.long)
    targets[:, :-1] = input_ids[:, 1:]
    targets[0, -1] = torch.randint(0, cfg.vocab_size, (1,), generator=g)

    out = model(input_ids=input_ids, position_ids=position_ids, use_cache=False)
    logits = out.logits  # (B, T, V) float64
    valid = targets >= 0
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    loss = (nll * valid).sum() / valid.sum()   # mean over valid targets
    loss.backward()

    tensors = {
        "input_ids": input_ids.to(torch.int64).contiguous(),
        "position_ids": position_ids.to(torch.int64).contiguous(),
        "targets": targets.to(torch.int64).contiguous(),
        "logits": logits.detach().float().contiguous(),
        "loss": loss.detach().float().reshape(()),
    }
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().float().contiguous()
        print(f"  grad.{name}: {tuple(p.shape)} max|g| {p.grad.abs().max().item():.3e}")
    meta = {
        "loss": "mean over positions with targets >= 0 of -log softmax(logits)[target]",
        "reference": "transformers LlamaForCausalLM in float64 (eager attention)",
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
    }
    save_file(tensors, os.path.join(OUT, "fixture.safetensors"), metadata=meta)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT}: loss {loss.item():.6f}, {len(tensors)} tensors, {total} bytes")
    assert total < 1 << 20, "fixture must stay under 1 MB"


if __name__ == "__main__":
    sys.exit(main())
