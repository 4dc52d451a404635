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
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification,
                          AutoTokenizer)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "llama_tiny")


def logits_of(model, fx):
    with torch.no_grad():
        return model(input_ids=fx["input_ids"], position_ids=fx["position_ids"],
                     use_cache=False).logits.float()


def main(export):
    fx = load_file(os.path.join(FIXTURE, "fixture.safetensors"))
    ref = AutoModelForCausalLM.from_pretrained(FIXTURE, dtype=torch.float32)
    failures = 0
    for name, tol in (("f32_sharded", 1e-4), ("bf16", 0.5)):
        path = os.path.join(export, name)
        model, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                           output_loading_info=True)
        bad = {k: v for k, v in info.items() if v}
        if bad:
            print(f"FAIL {name}: loading info {bad}")
            failures += 1
        inv_ref = ref.model.rotary_emb.inv_freq
        inv = model.model.rotary_emb.inv_freq
        if not torch.allclose(inv, inv_ref):
            print(f"FAIL {name}: rope inv_freq differs from the fixture's")
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
        os.path.join(export, "reward"), dtype=torch.float32, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad or rm.config.num_labels != 1 or tuple(rm.score.weight.shape) != (1, 64):
        print(f"FAIL reward: {bad}, num_labels {rm.config.num_labels}")
        failures += 1
    else:
        with torch.no_grad():
            r = rm(input_ids=fx["input_ids"]).logits
        print(f"ok   reward: loads as LlamaForSequenceClassification, scores shape {tuple(r.shape)}")
    print(f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/herd-export"))
