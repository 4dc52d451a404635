"""Checks a checkpoint written by `herd-model import` against transformers'
own GGUF loading of the same file.

  herd-model import MODEL.gguf OUT_DIR
  /tmp/venv-ref/bin/python tests/reference/check_gguf_import.py MODEL.gguf OUT_DIR

1. AutoModelForCausalLM.from_pretrained(OUT_DIR) loads with no missing or
   unexpected keys.
2. Every parameter equals transformers' dequantization of the GGUF
   (from_pretrained(dir, gguf_file=...)), max abs difference per tensor.
3. Logits on a few prompts match (float32, max abs difference).
4. AutoTokenizer.from_pretrained(OUT_DIR) gives the same ids as the GGUF
   tokenizer transformers builds, and the same chat-template rendering.
Exits 1 when a check fails.
"""
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "The capital of France is",
    "In 2024, 1234567 people paid $3.50 each for 12 apples.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "  Leading spaces, ÜNICODE, émojis 🦙 and <|im_end|> typed by a user.",
]
CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2+2?"},
]


def main():
    gguf_path, out_dir = sys.argv[1], sys.argv[2]
    gguf_dir, gguf_file = os.path.dirname(os.path.abspath(gguf_path)), os.path.basename(gguf_path)
    failures = []

    def check(ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            failures.append(what)

    herd, info = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32,
                                                      output_loading_info=True)
    check(not info["missing_keys"] and not info["unexpected_keys"],
          f"herd checkpoint loads: missing {info['missing_keys']} unexpected {info['unexpected_keys']}")
    ref = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    herd.eval(), ref.eval()

    ref_state = ref.state_dict()
    worst, worst_name, compared = 0.0, "", 0
    for name, p in herd.state_dict().items():
        if name not in ref_state:
            check(False, f"{name} missing from transformers' GGUF load")
            continue
        q = ref_state[name]
        if q.shape != p.shape:
            check(False, f"{name}: shape {tuple(p.shape)} vs transformers {tuple(q.shape)}")
            continue
        d = (p.float() - q.float()).abs().max().item()
        compared += 1
        if d > worst:
            worst, worst_name = d, name
    check(worst == 0.0, f"{compared} parameters equal transformers' GGUF dequantization "
                        f"(max abs diff {worst:.3g}{' in ' + worst_name if worst_name else ''})")

    tok_herd = AutoTokenizer.from_pretrained(out_dir)
    tok_ref = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    for text in PROMPTS:
        a = tok_herd(text, add_special_tokens=True)["input_ids"]
        b = tok_ref(text, add_special_tokens=True)["input_ids"]
        check(a == b, f"ids of {text[:40]!r}: {len(a)} tokens" + ("" if a == b else f" herd {a} vs {b}"))
        check(tok_herd.decode(a) == text, f"decode(encode({text[:40]!r})) round-trips")
    chat_a = tok_herd.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    chat_b = tok_ref.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    check(chat_a == chat_b, f"chat template renders the same ({len(chat_a)} chars)")
    check(tok_herd.eos_token == tok_ref.eos_token and tok_herd.bos_token == tok_ref.bos_token,
          f"bos/eos: herd {tok_herd.bos_token}/{tok_herd.eos_token}, transformers {tok_ref.bos_token}/{tok_ref.eos_token}")

    with torch.no_grad():
        worst_logit = 0.0
        for text in PROMPTS + [chat_a]:
            ids = torch.tensor([tok_ref(text)["input_ids"]])
            la = herd(ids).logits
            lb = ref(ids).logits
            worst_logit = max(worst_logit, (la - lb).abs().max().item())
            same_top = bool((la.argmax(-1) == lb.argmax(-1)).all())
            check(same_top, f"argmax tokens agree on {text[:40]!r} ({ids.shape[1]} tokens)")
        check(worst_logit <= 1e-4, f"logits match transformers' GGUF load: max abs diff {worst_logit:.3g}")

    print("FAILED: " + "; ".join(failures) if failures else "all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
