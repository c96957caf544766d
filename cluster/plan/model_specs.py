"""Model shapes for planning: parameter count and the dimensions that size the KV cache and activations.

A local Hugging Face directory is read directly (config.json; the parameter count is summed from the
safetensors headers when the weights are there, else computed from the dimensions). A hub id is looked up
in the Hugging Face cache, then in a small table of published configs (the config.json of each hub repo),
so `rlvr plan` works on a machine without the weights and without network.

    model_spec("Qwen/Qwen2.5-Math-7B").params   # 7_615_616_512
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cluster.config_error import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """What the planner needs to know about a decoder-only transformer."""

    name: str
    params: int
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    tied: bool  # LM head shares the input embedding
    source: str  # where the numbers came from: 'config.json', 'safetensors', 'known hub id', 'hf cache'

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        """K and V for every layer, all KV heads (GQA: kv_heads, not heads)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


def _dims(layers, hidden, intermediate, heads, kv_heads, vocab, max_positions, tied, qkv_bias=True, head_dim=None):
    return {"num_hidden_layers": layers, "hidden_size": hidden, "intermediate_size": intermediate,
            "num_attention_heads": heads, "num_key_value_heads": kv_heads, "vocab_size": vocab,
            "max_position_embeddings": max_positions, "tie_word_embeddings": tied, "attention_bias": qkv_bias,
            "head_dim": head_dim or hidden // heads}


# Published config.json values of each hub repo (Qwen2 architecture: q/k/v projections carry a bias).
# Instruct, Math and Coder variants of one size share the dimensions; Math models have a 4k context.
_QWEN_05B = _dims(24, 896, 4864, 14, 2, 151936, 32768, tied=True)
_QWEN_15B = _dims(28, 1536, 8960, 12, 2, 151936, 32768, tied=True)
_QWEN_3B = _dims(36, 2048, 11008, 16, 2, 151936, 32768, tied=True)
_QWEN_7B = _dims(28, 3584, 18944, 28, 4, 152064, 32768, tied=False)
_QWEN_14B = _dims(48, 5120, 13824, 40, 8, 152064, 32768, tied=False)
_QWEN_32B = _dims(64, 5120, 27648, 40, 8, 152064, 32768, tied=False)
KNOWN_MODELS: dict[str, dict] = {
    "Qwen/Qwen2.5-0.5B": _QWEN_05B,
    "Qwen/Qwen2.5-0.5B-Instruct": _QWEN_05B,
    "Qwen/Qwen2.5-1.5B": _QWEN_15B,
    "Qwen/Qwen2.5-1.5B-Instruct": _QWEN_15B,
    "Qwen/Qwen2.5-Coder-1.5B-Instruct": _QWEN_15B,
    "Qwen/Qwen2.5-Math-1.5B": {**_QWEN_15B, "max_position_embeddings": 4096},
    "Qwen/Qwen2.5-3B": _QWEN_3B,
    "Qwen/Qwen2.5-3B-Instruct": _QWEN_3B,
    "Qwen/Qwen2.5-7B": _QWEN_7B,
    "Qwen/Qwen2.5-7B-Instruct": _QWEN_7B,
    "Qwen/Qwen2.5-Coder-7B-Instruct": _QWEN_7B,
    "Qwen/Qwen2.5-Math-7B": {**_QWEN_7B, "max_position_embeddings": 4096},
    "Qwen/Qwen2.5-14B": _QWEN_14B,
    "Qwen/Qwen2.5-32B": _QWEN_32B,
}


def params_from_config(c: dict) -> int:
    """Parameter count of a Llama/Qwen2-style decoder from its config.json (embeddings, attention, SwiGLU MLP,
    RMSNorms); exact for those families, an estimate for others."""
    h, layers, inter, vocab = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["vocab_size"]
    heads = c["num_attention_heads"]
    kv_heads = c.get("num_key_value_heads") or heads
    head_dim = c.get("head_dim") or h // heads
    q, kv = heads * head_dim, kv_heads * head_dim
    bias = c.get("attention_bias", c.get("model_type") == "qwen2")
    attn = h * q + 2 * h * kv + q * h + (q + 2 * kv if bias else 0)
    mlp = 3 * h * inter + (2 * inter + h if c.get("mlp_bias") else 0)
    per_layer = attn + mlp + 2 * h  # two RMSNorm weights
    embed = vocab * h * (1 if c.get("tie_word_embeddings", False) else 2)
    return embed + layers * per_layer + h  # final norm


def safetensors_params(model_dir: Path) -> int | None:
    """Sum of tensor sizes from the safetensors headers (the 8-byte length + JSON; no weights are read)."""
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, meta in header.items():
            if name != "__metadata__":
                size = 1
                for d in meta["shape"]:
                    size *= d
                total += size
    return total


def _spec_from_config(name: str, c: dict, source: str, params: int | None = None) -> ModelSpec:
    c = c.get("text_config", c)  # multimodal configs nest the language model
    missing = [k for k in ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads",
                           "vocab_size") if k not in c]
    if missing:
        raise ConfigError(f"model {name!r}: config.json lacks {missing}; the planner needs a decoder-only "
                          "transformer config (Llama/Qwen2 style)")
    heads = c["num_attention_heads"]
    return ModelSpec(
        name=name, params=params if params is not None else params_from_config(c), layers=c["num_hidden_layers"],
        hidden=c["hidden_size"], intermediate=c["intermediate_size"], heads=heads,
        kv_heads=c.get("num_key_value_heads") or heads, head_dim=c.get("head_dim") or c["hidden_size"] // heads,
        vocab=c["vocab_size"], max_positions=c.get("max_position_embeddings", 0),
        tied=bool(c.get("tie_word_embeddings", False)), source=source)


def _hf_cache_config(hub_id: str) -> Path | None:
    root = os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub"
    snaps = Path(root) / f"models--{hub_id.replace('/', '--')}" / "snapshots"
    found = sorted(snaps.glob("*/config.json")) if snaps.is_dir() else []
    return found[-1] if found else None


def model_spec(path: str) -> ModelSpec:
    """Shape of `model.path`: a local HF dir (or an rlvr checkpoint dir holding `hf/`), else a hub id."""
    p = Path(path)
    if p.is_dir():
        d = p if (p / "config.json").is_file() else p / "hf"
        if not (d / "config.json").is_file():
            raise ConfigError(f"model.path={path!r} is a directory without config.json (nor hf/config.json); "
                              "point it at a Hugging Face model directory")
        cfg = json.loads((d / "config.json").read_text())
        counted = safetensors_params(d)
        return _spec_from_config(path, cfg, "safetensors" if counted else "config.json", counted)
    if path in KNOWN_MODELS:
        return _spec_from_config(path, KNOWN_MODELS[path], "known hub id")
    cached = _hf_cache_config(path)
    if cached is not None:
        return _spec_from_config(path, json.loads(cached.read_text()), "hf cache")
    raise ConfigError(f"model.path={path!r}: not a local directory, not in the Hugging Face cache, and not a known "
                      f"hub id; known: {sorted(KNOWN_MODELS)}. Point model.path at a local HF directory "
                      "(its config.json is enough for planning)")
