#!/usr/bin/env python3
"""Greedy generations of SmolLM2-135M-Instruct by transformers, for the
real-model parity test (RealModel.GreedyMatchesTransformers in
tests/integration/real_model_test.cpp).

transformers reads the Q4_1 GGUF itself (dequantized to float32, its own
GGUF-to-HF conversion), formats each conversation with the model's chat
template (apply_chat_template, add_generation_prompt) and decodes greedily
in float32. The fixture keeps the prompt ids and the generated ids (up to
and including <|im_end|>, or max_new_tokens).

Run in a throwaway venv with torch, transformers, gguf (tests/reference/README.md):
  python tests/reference/make_smollm2_greedy_fixture.py PATH/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "smollm2_greedy.json")

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "What is 3+4? Answer with the number only."}],
    [{"role": "system", "content": "You are a poet."},
     {"role": "user", "content": "Write one line about the sea."}],
    [{"role": "user", "content": "List three primary colours."}],
    [{"role": "user", "content": "Translate to French: good morning"}],
]
MAX_NEW = 24


def main():
    gguf = os.path.abspath(sys.argv[1])
    d, name = os.path.dirname(gguf), os.path.basename(gguf)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, torch_dtype=torch.float32)
    model.eval()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    cases = []
    for conv in CONVERSATIONS:
        text = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        prompt = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=MAX_NEW, do_sample=False,
                                 eos_token_id=eos, pad_token_id=eos)
        ids = out[0, len(prompt):].tolist()
        cases.append({"messages": conv, "prompt_ids": prompt, "ids": ids,
                      "text": tok.decode(ids, skip_special_tokens=True)})
        print(json.dumps(cases[-1]["text"]))
    with open(OUT, "w") as f:
        json.dump({"model": name, "max_new_tokens": MAX_NEW, "end_of_turn": eos, "cases": cases}, f,
                  ensure_ascii=False, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
