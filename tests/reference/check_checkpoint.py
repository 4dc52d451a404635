#!/usr/bin/env python3
"""Loads checkpoints that herd's SaveCheckpoint wrote into transformers and
compares them with the HF fixture they were re-saved from.

  HERD_EXPORT_DIR=/tmp/herd-export <build>/tests/herd_workers_model_tests \\
      --gtest_filter='CheckpointTest.ResavesTheFixtureInEveryForm'
  /tmp/venv-ref/bin/python tests/reference/check_checkpoint.py /tmp/herd-export

Checks: every tensor loads (no missing or unexpected keys), the config
round-trips (rope scaling included), logits on the fixture batch match the
fixture (F32: max abs diff <= 1e-4; BF16 weights: finite and within 0.5),
and the tokenizer saved beside the F32 checkpoint loads with vocab 264.
"""
import math
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification,
                          AutoTokenizer)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "llama_tiny")


def llama3_inv_freq(theta=500000.0, hd=16, factor=4.0, low=1.0, high=4.0, orig=16):
    """The fixture's RoPE frequencies, from the llama3 scaling formula."""
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    wavelen = 2 * math.pi / inv
    smooth = (orig / wavelen - low) / (high - low)
    ramp = (1 - smooth) * inv / factor + smooth * inv
    return torch.where(wavelen < orig / high, inv,
                       torch.where(wavelen > orig / low, inv / factor, ramp))


def logits_of(model, fx):
    with torch.no_grad():
        return model(input_ids=fx["input_ids"], position_ids=fx["position_ids"],
                     use_cache=False).logits.float()


def main(export):
    fx = load_file(os.path.join(FIXTURE, "fixture.safetensors"))
    want_inv = llama3_inv_freq()
    failures = 0
    for name, tol in (("f32_sharded", 1e-4), ("bf16", 0.5)):
        path = os.path.join(export, name)
        # No dtype argument (its name changed between transformers 4 and 5);
        # compute in float32 whatever the stored dtype.
        model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
        model = model.float()
        bad = {k: v for k, v in info.items() if v}
        if bad:
            print(f"FAIL {name}: loading info {bad}")
            failures += 1
        inv = model.model.rotary_emb.inv_freq.double()
        if not torch.allclose(inv, want_inv, rtol=1e-6, atol=0):
            print(f"FAIL {name}: rope inv_freq {inv.tolist()} != llama3 formula {want_inv.tolist()}")
            failures += 1
        diff = (logits_of(model, fx) - fx["logits"]).abs().max().item()
        ok = diff <= tol
        failures += 0 if ok else 1
        print(f"{'ok  ' if ok else 'FAIL'} {name}: max |logits - fixture| = {diff:.3e} (tol {tol})")
    tok = AutoTokenizer.from_pretrained(os.path.join(export, "f32_sharded"))
    if len(tok) != 264 or tok("hi", add_special_tokens=False)["input_ids"] != [104, 105]:
        print("FAIL tokenizer beside the checkpoint")
        failures += 1
    rm, info = AutoModelForSequenceClassification.from_pretrained(
        os.path.join(export, "reward"), output_loading_info=True)
    rm = rm.float()
    bad = {k: v for k, v in info.items() if v}
    if bad or rm.config.num_labels != 1 or tuple(rm.score.weight.shape) != (1, 64):
        print(f"FAIL reward: {bad}, num_labels {rm.config.num_labels}")
        failures += 1
    else:
        with torch.no_grad():
            r = rm(input_ids=fx["input_ids"]).logits
        print(f"ok   reward: loads as LlamaForSequenceClassification, scores shape {tuple(r.shape)}")
    print(f"{failures} failures (transformers {__import__('transformers').__version__})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/herd-export"))
