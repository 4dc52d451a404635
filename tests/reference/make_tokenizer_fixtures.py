#!/usr/bin/env python3
"""Fixtures for herd's HF tokenizer (workers/model/hf_tokenizer.h).

Writes, under tests/reference/fixtures/:
  smollm2_tokenizer/     tokenizer.json of SmolLM2-135M-Instruct, as transformers
                         converts it from the GGUF (written compact), + cases.json
  llama3_style_tokenizer/ a small BPE trained here the way Llama 3's is built
                         (Split on Llama 3's regex, ByteLevel without regex,
                         ignore_merges, specials after the vocab) + cases.json
  misc_tokenizer/        a small BPE exercising the rarer features: Split on a
                         string (merged_with_previous), Digits, ByteLevel with
                         add_prefix_space and GPT-2's regex, added tokens with
                         lstrip / rstrip / single_word / normalized / non-special
                         + cases.json

cases.json: {"meta": {...}, "cases": [{"name", "text", "ids", "ids_plain",
"decoded", "decoded_skip_special", "decoded_plain"}]}
  ids           HF tokenizers encode(text, add_special_tokens=False): added
                tokens in the text become their ids
  ids_plain     the same tokenizer with no added tokens: every character is
                ordinary text (herd's parse_special = false)
  decoded       decode(ids, skip_special_tokens=False)
  decoded_skip_special  decode(ids, skip_special_tokens=True)
  decoded_plain decode(ids_plain)

Runs in a throwaway venv (tokenizers, transformers, gguf, torch, numpy):
  python tests/reference/make_tokenizer_fixtures.py --gguf PATH/SmolLM2-135M-Instruct.Q4_1.gguf
"""

import argparse
import json
import os
import sys
import tempfile

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

LLAMA3_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]

PROSE = (
    "The quick brown fox jumps over the lazy dog. It wasn't the first time; the dog, "
    "being lazy, didn't care. Meanwhile, in a laboratory across town, researchers were "
    "measuring how fast a language model could read: 3.2 million tokens per second, "
    "they claimed, although nobody had checked the figure twice."
)

PYTHON = '''def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


if __name__ == "__main__":
    print([fib(i) for i in range(10)])  # [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
'''

CPP = (
    "#include <vector>\n\nint Sum(const std::vector<int>& v) {\n\tint s = 0;\n"
    "\tfor (int x : v) s += x;  // no overflow check\n\treturn s;\n}\n"
)

CASES = [
    ("empty", ""),
    ("one_space", " "),
    ("english", PROSE),
    ("english_short", "Hello, world!"),
    ("contractions", "don't I'LL we've she'd THEY'RE it's you'M O'Neil's"),
    ("python", PYTHON),
    ("cpp_tabs", CPP),
    ("cyrillic", "Съешь же ещё этих мягких французских булок, да выпей чаю. Привет, мир!"),
    ("cjk", "我能吞下玻璃而不伤身体。日本語のテキストも少し。한국어 문장도 있습니다."),
    ("arabic", "مرحبا بالعالم! هذه جملة عربية قصيرة مع أرقام ١٢٣ و 456."),
    ("hindi", "नमस्ते दुनिया, यह एक परीक्षण है।"),
    ("emoji", "I ❤️ emoji 😀🎉 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 done."),
    ("digits", "1234567890 3.14159 1,000,000 007 2024-06-01 12:30:45 1e-9 ０１２"),
    ("whitespace_runs", "a  b   c\t\td\n\n\ne\r\nf   \n  g\u3000h\u00a0i   "),
    ("trailing_spaces", "line with trailing spaces   \nnext line\t \n"),
    ("leading_spaces", "    indented four\n        indented eight"),
    ("newlines_only", "\n\n\n"),
    ("crlf", "first\r\nsecond\r\n\r\nthird"),
    ("nel_and_odd_spaces", "a\u0085b\u2028c\u2029d\u200be\ufefff"),
    ("punctuation", "!!! ??? ... --- *** ((())) [[]] {{}} <<>> @#$%^&* ~`|\\"),
    ("url_email", "See https://example.com/path?q=1&r=two#frag or mail me@example.org."),
    ("mixed_scripts", "English, русский, 中文, العربية, עברית, ελληνικά and 日本語 in one line."),
    ("latin1_accents", "Ça va? Él está aquí. Größe, Straße, naïve café, façade, Ærø."),
    ("control_chars", "tab\tbell\x07null\x00esc\x1b[0m del\x7f"),
    # SmolLM2 has no token for bytes 0x04, 0x06, 0xF1, ...: HF drops them.
    ("bytes_without_tokens", "a\x04b\x06c \U00050000 d\U000a0000e"),
    ("special_im_end", "before <|im_end|> after<|im_start|>user\nhi<|im_end|>"),
    ("special_eot", "text<|eot_id|>more <|begin_of_text|><|start_header_id|>x<|end_header_id|>"),
    ("special_partial", "<|im_end <|eot_id| <|endoftext|> <|endoftext|><|endoftext|>"),
    ("special_adjacent_spaces", "  <|eot_id|>  \n<|im_end|>\n  "),
    ("misc_added", "a <mask> b [SEP]  c custom d<tool>e xyz axyz xyz_ 9xyz"),
    ("long_word", "a" * 300 + " " + "ab" * 200 + " " + "Supercalifragilisticexpialidocious" * 8),
    ("long_space_run", " " * 500 + "x" + "\n" * 100 + "y" + "\t" * 50),
    ("long_paragraph_en", " ".join([PROSE] * 6)),
    (
        "long_paragraph_mixed",
        "\n\n".join(
            [
                PROSE,
                "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 3,
                "我能吞下玻璃而不伤身体。" * 5,
                PYTHON,
                "Numbers: " + " ".join(str(i * 7919) for i in range(60)),
            ]
        ),
    ),
]


def training_corpus():
    """Text to train the small tokenizers on: the cases plus variations."""
    out = []
    for _, text in CASES:
        if text:
            out.append(text)
    words = PROSE.split() + "Привет мир данные модель 数据 模型 训练 الكلمة بيانات".split()
    for i in range(400):
        out.append(" ".join(words[(i * 7 + k) % len(words)] for k in range(12 + i % 9)))
        out.append(f"x_{i} = compute({i}, {i * i}, '{words[i % len(words)]}')\n\tif x_{i} > {i}:\n\t\treturn")
    return out


def train_llama3_style():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_corpus(), trainer)
    # Llama 3 puts its specials after the BPE vocab, outside model.vocab.
    tok.add_special_tokens(LLAMA3_SPECIALS)
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = True  # the trainer may rebuild the model
    return Tokenizer.from_str(json.dumps(j))


def train_misc():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="merged_with_previous"),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1200,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_corpus(), trainer)
    from tokenizers import AddedToken

    tok.add_special_tokens(
        [
            AddedToken("<mask>", lstrip=True, special=True, normalized=False),
            AddedToken("[SEP]", rstrip=True, special=True, normalized=False),
            AddedToken("<|eot_id|>", special=True, normalized=False),
        ]
    )
    tok.add_tokens(
        [
            AddedToken(" custom", normalized=True, special=False),
            AddedToken("<tool>", normalized=False, special=False),
            AddedToken("xyz", single_word=True, normalized=False, special=False),
        ]
    )
    return tok


def smollm2_from_gguf(gguf_path):
    from transformers import AutoTokenizer

    d, name = os.path.split(os.path.abspath(gguf_path))
    t = AutoTokenizer.from_pretrained(d, gguf_file=name)
    with tempfile.TemporaryDirectory() as tmp:
        t.save_pretrained(tmp)
        return Tokenizer.from_file(os.path.join(tmp, "tokenizer.json"))


def without_added_tokens(tok):
    j = json.loads(tok.to_str())
    j["added_tokens"] = []
    return Tokenizer.from_str(json.dumps(j))


def write_fixture(out_dir, tok, meta):
    os.makedirs(out_dir, exist_ok=True)
    # Compact: the same tokenizer, a third of the pretty-printed size.
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(tok.to_str(pretty=False))
    plain = without_added_tokens(tok)
    cases = []
    for name, text in CASES:
        ids = tok.encode(text, add_special_tokens=False).ids
        ids_plain = plain.encode(text, add_special_tokens=False).ids
        cases.append(
            {
                "name": name,
                "text": text,
                "ids": ids,
                "ids_plain": ids_plain,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
                "decoded_plain": tok.decode(ids_plain, skip_special_tokens=False),
            }
        )
    meta = dict(meta, tokenizers=tokenizers.__version__, cases=len(cases))
    with open(os.path.join(out_dir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    size = os.path.getsize(os.path.join(out_dir, "tokenizer.json"))
    print(f"{out_dir}: {len(cases)} cases, tokenizer.json {size} bytes", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", required=True, help="SmolLM2-135M-Instruct GGUF (deploy/fetch-real-model.sh)")
    ap.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"),
        help="fixtures folder (default: tests/reference/fixtures)",
    )
    args = ap.parse_args()
    import transformers

    write_fixture(
        os.path.join(args.out, "smollm2_tokenizer"),
        smollm2_from_gguf(args.gguf),
        {
            "source": "transformers AutoTokenizer.from_pretrained(gguf_file="
            + os.path.basename(args.gguf)
            + ").save_pretrained",
            "transformers": transformers.__version__,
        },
    )
    write_fixture(
        os.path.join(args.out, "llama3_style_tokenizer"),
        train_llama3_style(),
        {"source": "trained by make_tokenizer_fixtures.py (Llama 3 layout)"},
    )
    write_fixture(
        os.path.join(args.out, "misc_tokenizer"),
        train_misc(),
        {"source": "trained by make_tokenizer_fixtures.py (rarer pre-tokenizer and added-token features)"},
    )


if __name__ == "__main__":
    main()
