"""Writes the GGUF fixtures of tests/workers/model/gguf_test.cpp into
tests/reference/fixtures/gguf/ (see tests/reference/README.md).

Every file is written by gguf-py's GGUFWriter and every expected value is
gguf-py's own dequantization (gguf.quants.dequantize), so the C++ reader is
checked against an independent implementation, bit for bit.

  types.gguf                 one tensor per ggml type herd dequantizes, odd
                             shapes, alignment 64, a metadata key of every
                             value type, and one IQ2_XXS tensor (unsupported)
  types_expected.safetensors gguf-py's fp32 dequantization of each tensor,
                             under the same name, in the GGUF shape reversed
                             (outermost first, as numpy holds it)
  tiny_llama.gguf            a tiny untied llama (d 64, 2 layers, 4 heads, 2 KV
                             heads, f 128, vocab 300, a gpt2 tokenizer with
                             ChatML template), Q/K permuted as llama.cpp's
                             convert_hf_to_gguf does, tensors in F32, F16,
                             BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
  tiny_llama_expected.safetensors  the HF tensors (HF names and shapes) the
                             import must produce: gguf-py's dequantization,
                             with q_proj/k_proj rows un-permuted
  tiny_llama_tied.gguf       d 32, 1 layer, no output.weight (tied), F32 only,
                             tokenizer.ggml.pre "llama-bpe"
  tiny_llama_tokenizer.json  transformers' own GGUF tokenizer conversion of
                             tiny_llama.gguf (the reference for vocab, merges
                             and added_tokens)

Run: /tmp/venv-ref/bin/python tests/reference/make_gguf_fixture.py
(needs gguf, numpy, safetensors; transformers + tokenizers for the last file).
"""
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize, quantize
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "gguf")
rng = np.random.default_rng(20261202)

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.LlamaModel.permute: HF rotate_half rows -> interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def stored(data, qtype):
    """(array for GGUFWriter.add_tensor, raw_dtype, gguf-py's fp32 dequantization)."""
    data = data.astype(np.float32)
    if qtype == T.F32:
        return data, None, data.copy()
    if qtype == T.F16:
        h = data.astype(np.float16)
        return h, None, dequantize(h.view(np.uint8), T.F16).reshape(data.shape)
    q = quantize(data, qtype)
    return q, qtype, dequantize(q, qtype)


def random_blocks(qtype, rows, cols):
    """Random bytes for a type gguf-py cannot quantize (the K-quants, IQ2_XXS),
    with every f16 scale set to a finite value so dequantization has no NaN."""
    from gguf.constants import GGML_QUANT_SIZES
    bs, ts = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // bs, ts), dtype=np.uint8)
    scale_offsets = {T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [ts - 2], T.IQ2_XXS: [0]}[qtype]
    for off in scale_offsets:
        f16 = rng.uniform(0.001, 0.05, size=(rows, cols // bs)).astype(np.float16)
        raw[:, :, off:off + 2] = f16.view(np.uint8).reshape(rows, cols // bs, 2)
    return raw.reshape(rows, cols // bs * ts)


def write_types():
    w = GGUFWriter(os.path.join(OUT, "types.gguf"), "herd-types")
    w.add_custom_alignment(64)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.1)
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float64("t.f64", 0.1)
    w.add_bool("t.bool", True)
    w.add_string("t.string", "héllo ✓")
    w.add_array("t.arr_i32", [1, -2, 3])
    w.add_array("t.arr_str", ["a", "", "ccc"])
    w.add_array("t.arr_f32", [0.5, -1.25])
    expected = {}
    cases = [
        ("f32", T.F32, (3, 5)),
        ("f16", T.F16, (2, 3, 7)),
        ("bf16", T.BF16, (5, 9)),
        ("q8_0", T.Q8_0, (3, 96)),
        ("q4_0", T.Q4_0, (5, 64)),
        ("q4_1", T.Q4_1, (3, 160)),
        ("q5_0", T.Q5_0, (2, 2, 32)),
        ("q5_1", T.Q5_1, (3, 64)),
    ]
    for name, qtype, shape in cases:
        x = rng.normal(0, 0.3, size=shape).astype(np.float32)
        x.flat[0] = 0.0  # an exact zero, and a block whose values are all equal below
        if x.shape[-1] >= 32:
            x.reshape(-1, x.shape[-1])[-1, :32] = 0.25
        arr, raw, deq = stored(x, qtype)
        w.add_tensor(name, arr, raw_dtype=raw)
        expected[name] = deq.reshape(shape)
    for name, qtype, rows, cols in [("q4_k", T.Q4_K, 3, 512), ("q5_k", T.Q5_K, 2, 256), ("q6_k", T.Q6_K, 3, 256)]:
        raw = random_blocks(qtype, rows, cols)
        w.add_tensor(name, raw, raw_dtype=qtype)
        expected[name] = dequantize(raw, qtype).reshape(rows, cols)
    w.add_tensor("unsupported_iq2_xxs", random_blocks(T.IQ2_XXS, 1, 256), raw_dtype=T.IQ2_XXS)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in expected.items()},
              os.path.join(OUT, "types_expected.safetensors"))


def tokenizer_metadata(w, pre):
    spelling = bytes_to_unicode()
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [3, 3, 3]
    tokens += [spelling[b] for b in range(256)]
    types += [1] * 256
    merges = []
    words = ["Ġthe", "Ġand", "Ġhello", "Ġworld", "ing", "Ġis", "er", "Ġa", "Ġto", "ĠHerd"]
    for word in words:
        cur = word[0]
        for ch in word[1:]:
            new = cur + ch
            if new not in tokens:
                merges.append(f"{cur} {ch}")
                tokens.append(new)
                types.append(1)
            cur = new
    tokens.append("<think>")  # user-defined: an added token that is not special
    types.append(4)
    while len(tokens) < 300:
        tokens.append(f"<unused{len(tokens)}>")
        types.append(5)  # unused
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)
    return tokens


def write_llama(fname, expected_name, d, layers, H, Hkv, f, tied, pre, types_of):
    hd = d // H
    w = GGUFWriter(os.path.join(OUT, fname), "llama")
    w.add_name("herd tiny llama")
    w.add_context_length(256)
    w.add_embedding_length(d)
    w.add_block_count(layers)
    w.add_feed_forward_length(f)
    w.add_head_count(H)
    w.add_head_count_kv(Hkv)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_dimension_count(hd)
    w.add_file_type(1)
    tokens = tokenizer_metadata(w, pre)
    V = len(tokens)
    w.add_vocab_size(V)
    expected = {}

    def put(gguf_name, hf_name, hf_value, qtype, n_head=None):
        value = permute(hf_value, n_head) if n_head else hf_value
        arr, raw, deq = stored(value, qtype)
        w.add_tensor(gguf_name, arr, raw_dtype=raw)
        deq = deq.reshape(value.shape)
        expected[hf_name] = unpermute(deq, n_head) if n_head else deq

    def normal(*shape, scale=0.15):
        return rng.normal(0, scale, size=shape).astype(np.float32)

    put("token_embd.weight", "model.embed_tokens.weight", normal(V, d), types_of("embd", 0))
    for i in range(layers):
        p, h = f"blk.{i}.", f"model.layers.{i}."
        put(p + "attn_norm.weight", h + "input_layernorm.weight", 1 + normal(d, scale=0.2), T.F32)
        put(p + "attn_q.weight", h + "self_attn.q_proj.weight", normal(H * hd, d), types_of("q", i), n_head=H)
        put(p + "attn_k.weight", h + "self_attn.k_proj.weight", normal(Hkv * hd, d), types_of("k", i), n_head=Hkv)
        put(p + "attn_v.weight", h + "self_attn.v_proj.weight", normal(Hkv * hd, d), types_of("v", i))
        put(p + "attn_output.weight", h + "self_attn.o_proj.weight", normal(d, H * hd), types_of("o", i))
        put(p + "ffn_norm.weight", h + "post_attention_layernorm.weight", 1 + normal(d, scale=0.2), T.F32)
        put(p + "ffn_gate.weight", h + "mlp.gate_proj.weight", normal(f, d), types_of("gate", i))
        put(p + "ffn_up.weight", h + "mlp.up_proj.weight", normal(f, d), types_of("up", i))
        put(p + "ffn_down.weight", h + "mlp.down_proj.weight", normal(d, f), types_of("down", i))
    put("output_norm.weight", "model.norm.weight", 1 + normal(d, scale=0.2), T.F32)
    if not tied:
        put("output.weight", "lm_head.weight", normal(V, d), types_of("out", 0))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if expected_name:
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in expected.items()},
                  os.path.join(OUT, expected_name))


def reference_tokenizer(gguf_path, out_path):
    """transformers' GGUF tokenizer conversion (AutoTokenizer.from_pretrained(..., gguf_file=...)),
    called through its builders so that torch is not needed."""
    from transformers.integrations.gguf import gguf_tokenizer_mapping as m
    r = GGUFReader(gguf_path)
    meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}
    tdict = {name: meta[f"tokenizer.{key}"] for key, name in m.GGUF_TOKENIZER_MAPPING["tokenizer"].items()
             if f"tokenizer.{key}" in meta}
    tok = m.select_tokenizer_builder(meta["general.architecture"], tdict.get("tokenizer_type"))(tdict)
    tok = m.add_gguf_special_tokens(tok, tdict)
    tok = m.set_split_regex(tok, tdict)
    tok.backend_tokenizer.save(out_path)


def main():
    os.makedirs(OUT, exist_ok=True)
    write_types()
    mixed = {
        ("embd", 0): T.Q8_0, ("out", 0): T.F16,
        ("q", 0): T.Q4_0, ("k", 0): T.Q4_1, ("v", 0): T.Q8_0, ("o", 0): T.F16,
        ("gate", 0): T.BF16, ("up", 0): T.Q5_0, ("down", 0): T.Q5_1,
        ("q", 1): T.Q4_1, ("k", 1): T.Q4_0, ("v", 1): T.Q5_1, ("o", 1): T.Q8_0,
        ("gate", 1): T.F32, ("up", 1): T.F16, ("down", 1): T.BF16,
    }
    write_llama("tiny_llama.gguf", "tiny_llama_expected.safetensors", d=64, layers=2, H=4, Hkv=2, f=128,
                tied=False, pre="smollm", types_of=lambda kind, i: mixed[(kind, i)])
    write_llama("tiny_llama_tied.gguf", None, d=32, layers=1, H=2, Hkv=1, f=32, tied=True, pre="llama-bpe",
                types_of=lambda kind, i: T.F32)
    try:
        reference_tokenizer(os.path.join(OUT, "tiny_llama.gguf"), os.path.join(OUT, "tiny_llama_tokenizer.json"))
    except ImportError as e:
        print(f"skipping tiny_llama_tokenizer.json (transformers missing: {e})", file=sys.stderr)
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
