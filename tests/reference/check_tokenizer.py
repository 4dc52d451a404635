#!/usr/bin/env python3
"""Checks herd's byte tokenizer files against HF tokenizers/transformers.

tests/reference/fixtures/byte_tokenizer/ holds what the C++ code writes
(tokenizer.json, tokenizer_config.json) and cases.json (encode, decode and
chat-format results computed by the C++ code); the C++ test
ByteTokenizerGolden keeps them in sync. This script loads the files with
`tokenizers` and transformers' AutoTokenizer and requires identical ids,
identical decoded text (also against Python's own UTF-8 decoder) and that
apply_chat_template reproduces FormatChat's ids. Exit status 0 on success.
"""
import json
import os
import sys

from tokenizers import Tokenizer
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "fixtures", "byte_tokenizer")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|eot_id|>", "<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>"]


def main():
    cases = json.load(open(os.path.join(DIR, "cases.json"), encoding="utf-8"))
    raw = Tokenizer.from_file(os.path.join(DIR, "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(DIR)
    failures = 0

    def check(ok, what):
        nonlocal failures
        if not ok:
            failures += 1
            print("FAIL:", what)

    check(raw.get_vocab_size(with_added_tokens=True) == 264, "vocab size 264")
    check(len(hf) == 264, f"len(AutoTokenizer) == 264 (got {len(hf)})")
    for i, s in enumerate(SPECIALS):
        check(hf.convert_tokens_to_ids(s) == 256 + i, f"{s} has id {256 + i}")
    check(hf.bos_token == "<|begin_of_text|>" and hf.eos_token == "<|eot_id|>", "bos/eos tokens")

    for c in cases["encode"]:
        text, ids = c["text"], c["ids"]
        check(ids == list(text.encode("utf-8")), f"C++ ids are the UTF-8 bytes of {text!r}")
        got = raw.encode(text, add_special_tokens=False).ids
        check(got == ids, f"tokenizers encode {text!r}: {got} vs {ids}")
        got = hf(text, add_special_tokens=False)["input_ids"]
        check(got == ids, f"AutoTokenizer encode {text!r}: {got} vs {ids}")
        got = hf(text)["input_ids"]
        check(got == [256] + ids, f"AutoTokenizer adds <|begin_of_text|> for {text!r}: {got}")
        check(hf.decode(ids) == text, f"decode(encode({text!r}))")

    for c in cases["decode"]:
        ids, text = c["ids"], c["text"]
        got = hf.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        check(got == text, f"decode {ids}: {got!r} vs C++ {text!r}")
        out, buf = "", bytearray()
        for t in ids:
            if t < 256:
                buf.append(t)
            else:
                out += bytes(buf).decode("utf-8", "replace") + SPECIALS[t - 256]
                buf.clear()
        out += bytes(buf).decode("utf-8", "replace")
        check(out == text, f"Python utf-8 'replace' of {ids}: {out!r} vs C++ {text!r}")

    for c in cases["chat"]:
        got = hf.apply_chat_template(c["messages"], add_generation_prompt=c["add_generation_prompt"],
                                     tokenize=True)
        if isinstance(got, dict) or hasattr(got, "keys"):
            got = got["input_ids"]
        check(list(got) == c["ids"], f"apply_chat_template {c['messages']}:\n  {list(got)}\n  vs C++\n  {c['ids']}")
        # The masks agree with the ids: every special is formatting, and
        # SFT targets are content or <|eot_id|> of assistant turns.
        for t, f, s in zip(c["ids"], c["is_formatting"], c["sft_target"]):
            if t >= 256:
                check(f == 1, f"special {t} marked formatting")
            if s:
                check(f == 0 or t == 260, f"SFT target {t} is content or <|eot_id|>")

    n = len(cases["encode"]) + len(cases["decode"]) + len(cases["chat"])
    print(f"{n} cases checked against tokenizers {__import__('tokenizers').__version__}, "
          f"transformers {__import__('transformers').__version__}: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
