#!/usr/bin/env python3
"""Chat-format parity fixtures: transformers' apply_chat_template ids for
conversations, for the two formats herd knows.

  chatml: SmolLM2-135M-Instruct's tokenizer and its own chat template
          (tests/reference/fixtures/smollm2_tokenizer/: tokenizer.json from
          make_tokenizer_fixtures.py, chat_template.jinja written here from
          the GGUF's tokenizer.chat_template through transformers).
  llama3: the Llama-3-style tokenizer trained by make_tokenizer_fixtures.py
          (tests/reference/fixtures/llama3_style_tokenizer/) with a Llama 3
          header template that trims content as Meta's does; written here as
          tokenizer_config.json's chat_template.

Writes cases.json beside each tokenizer: for every conversation and both
values of add_generation_prompt, the ids transformers gives. The C++ test
(ChatTemplateParity in tests/workers/model/chat_format_test.cpp) loads each
directory with LoadChatFormatter and compares token for token.

Run in a throwaway venv (tests/reference/README.md):
  python tests/reference/make_chat_fixtures.py --gguf PATH/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse
import json
import os
import tempfile

from transformers import AutoTokenizer, PreTrainedTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")

# A Llama 3 header format; content is trimmed, as in Meta's template.
LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Answer in one word."},
     {"role": "user", "content": "Colour of the sky?"},
     {"role": "assistant", "content": "Blue."}],
    [{"role": "user", "content": "12+34="},
     {"role": "assistant", "content": "46"},
     {"role": "user", "content": "And 99+1?"}],
    [{"role": "user", "content": "Переведи: «доброе утро» 🌅"},
     {"role": "assistant", "content": "Good morning! 早上好"}],
    [{"role": "user", "content": "def f(x):\n    return x * 2\n\nWhat does f(21) return?"},
     {"role": "assistant", "content": "It returns 42."}],
    [{"role": "user", "content": "  padded question?  "},
     {"role": "assistant", "content": " padded answer "}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "Hi"}],
]


def cases_for(tok):
    out = []
    for conv in CONVERSATIONS:
        for gen in (False, True):
            if gen and conv[-1]["role"] == "assistant":
                continue
            ids = tok.apply_chat_template(conv, add_generation_prompt=gen, tokenize=False)
            ids = tok(ids, add_special_tokens=False)["input_ids"]
            # herd encodes content on its own, so where content starts with
            # whitespace the pre-tokenizer may split differently from HF,
            # which encodes the rendered string whole: same text, other ids.
            boundary = any(m["content"][:1].isspace() for m in conv)
            out.append({"messages": conv, "add_generation_prompt": gen, "ids": ids,
                        "text": tok.decode(ids), "content_starts_with_space": boundary})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True, help="SmolLM2-135M-Instruct.Q4_1.gguf")
    args = ap.parse_args()

    # chatml: SmolLM2's own template, as transformers reads it from the GGUF.
    d = os.path.join(FIX, "smollm2_tokenizer")
    with tempfile.TemporaryDirectory() as tmp:
        src = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(args.gguf)),
                                            gguf_file=os.path.basename(args.gguf))
        template = src.chat_template
    with open(os.path.join(d, "chat_template.jinja"), "w") as f:
        f.write(template)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tokenizer.json"))
    tok.chat_template = template
    with open(os.path.join(d, "chat_cases.json"), "w") as f:
        json.dump(cases_for(tok), f, ensure_ascii=False, indent=1)

    # llama3: the trained Llama-3-style tokenizer with a Llama 3 template.
    d = os.path.join(FIX, "llama3_style_tokenizer")
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tokenizer.json"),
                                  bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    tok.chat_template = LLAMA3_TEMPLATE
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                   "chat_template": LLAMA3_TEMPLATE,
                   "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=2)
    with open(os.path.join(d, "chat_cases.json"), "w") as f:
        json.dump(cases_for(tok), f, ensure_ascii=False, indent=1)
    print("wrote chat_cases.json for smollm2 and llama3-style")


if __name__ == "__main__":
    main()
