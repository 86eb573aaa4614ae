"""Independent reference for the Swift MiniLM: Hugging Face `tokenizers` for the token ids and a
plain numpy (float64) BERT forward pass with mean pooling and L2 normalisation.

usage: python3 minilm_reference.py MODEL_DIR < texts.json  →  {"ids": [[...]], "embeddings": [[...]]}
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

model_dir = sys.argv[1]
texts = json.load(sys.stdin)
tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tok.no_padding()
tok.enable_truncation(256)
w = {k: v.astype(np.float64) for k, v in load_file(f"{model_dir}/model.safetensors").items()}


def layer_norm(x, p):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-12) * w[p + ".weight"] + w[p + ".bias"]


def dense(x, p):
    return x @ w[p + ".weight"].T + w[p + ".bias"]


erf = np.vectorize(math.erf)
ids_out, emb_out = [], []
for text in texts:
    ids = tok.encode(text).ids
    ids_out.append(ids)
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] \
        + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, "embeddings.LayerNorm")
    for i in range(6):
        p = f"encoder.layer.{i}"
        q = dense(x, p + ".attention.self.query").reshape(n, 12, 32).transpose(1, 0, 2)
        k = dense(x, p + ".attention.self.key").reshape(n, 12, 32).transpose(1, 0, 2)
        v = dense(x, p + ".attention.self.value").reshape(n, 12, 32).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(32)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, 384)
        x = layer_norm(dense(ctx, p + ".attention.output.dense") + x, p + ".attention.output.LayerNorm")
        h = dense(x, p + ".intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = layer_norm(dense(h, p + ".output.dense") + x, p + ".output.LayerNorm")
    e = x.mean(0)
    emb_out.append((e / np.linalg.norm(e)).tolist())
print(json.dumps({"ids": ids_out, "embeddings": emb_out}))
