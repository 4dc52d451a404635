"""Digest of a GGUF Llama model as gguf-py dequantizes it, in HF layout, for
the C++ real-model test (GgufRealModel in tests/workers/model/gguf_test.cpp).

Per HF tensor: the GGUF name and type, the HF shape, the float64 sum and sum
of squares, the first 8 values, and the sha256 of the fp32 little-endian
bytes; q_proj/k_proj rows are un-permuted (llama.cpp's converter interleaves
the rotary halves). Equal sha256 means the C++ import is bit-for-bit gguf-py.

Run: /tmp/venv-ref/bin/python tests/reference/dump_gguf_digest.py \
       MODEL.gguf tests/reference/fixtures/gguf/smollm2_135m_instruct_q4_1_digest.json
"""
import hashlib
import json
import os
import re
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

LAYER = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}


def hf_name(name):
    fixed = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    if name in fixed:
        return fixed[name]
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", name)
    return f"model.layers.{m.group(1)}.{LAYER[m.group(2)]}.weight"


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    path, out = sys.argv[1], sys.argv[2]
    r = GGUFReader(path)
    field = lambda k: r.fields[k].contents()
    H, Hkv = field("llama.attention.head_count"), field("llama.attention.head_count_kv")
    tensors = {}
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape)]
        w = dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
        if ".attn_q." in t.name:
            w = unpermute(w, H)
        elif ".attn_k." in t.name:
            w = unpermute(w, Hkv)
        w = np.ascontiguousarray(w, dtype="<f4")
        w64 = w.astype(np.float64)
        tensors[hf_name(t.name)] = {
            "gguf_name": t.name,
            "type": t.tensor_type.name,
            "shape": shape,
            "sum": float(w64.sum()),
            "sum_sq": float((w64 * w64).sum()),
            "first": [float(x) for x in w.ravel()[:8]],
            "sha256": hashlib.sha256(w.tobytes()).hexdigest(),
        }
    doc = {
        "file": os.path.basename(path),
        "file_sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
        "made_by": "tests/reference/dump_gguf_digest.py (gguf-py dequantize)",
        "tensors": tensors,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{len(tensors)} tensors -> {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
