"""A tiny Llama causal LM built from scratch, saved as a Hugging Face directory that vLLM can serve.

Llama rather than Qwen2: transformers 5 loads any `qwen2` directory with its byte-level Qwen2Tokenizer,
replacing our character-level pre-tokenizer (spaces and newlines vanish); for `llama` it keeps the
tokenizer.json as saved, and so does vLLM (it calls AutoTokenizer). Head size is 32 (vLLM's CPU attention accepts 32, 64, 80, ...). Sizes are named so configs say `size: small`
rather than repeating dimensions; `tiny` exists for fast tests.

    build_model("runs/prior/init", seed=0, size="small")   # config.json, model.safetensors, tokenizer files
"""

from __future__ import annotations

import os

from cluster.embedded.tokenizer import BOS, EOS, PAD, vocab

HEAD_DIM = 32
# name -> (layers, hidden, intermediate); heads = hidden / HEAD_DIM
SIZES = {
    "tiny": (1, 64, 128),  # 42,944 params: tests only
    "small": (3, 128, 512),  # 790,912 params: the embedded default
    "medium": (4, 192, 768),  # 2,366,400 params
}


def model_config(size: str = "small", max_positions: int = 512, task: str = "arith"):
    """The LlamaConfig of a named size, with the vocabulary of `task`'s tokenizer."""
    from transformers import LlamaConfig

    if size not in SIZES:
        raise ValueError(f"model.embedded.size={size!r}: expected one of {sorted(SIZES)}")
    layers, hidden, intermediate = SIZES[size]
    ids = {tok: i for i, tok in enumerate(vocab(task))}
    return LlamaConfig(vocab_size=len(ids), hidden_size=hidden, intermediate_size=intermediate,
                       num_hidden_layers=layers, num_attention_heads=hidden // HEAD_DIM,
                       num_key_value_heads=hidden // HEAD_DIM, head_dim=HEAD_DIM,
                       max_position_embeddings=max_positions, tie_word_embeddings=True, rope_theta=10000.0,
                       bos_token_id=ids[BOS], eos_token_id=ids[EOS], pad_token_id=ids[PAD])


def build_model(out_dir: str, seed: int = 0, size: str = "small", task: str = "arith"):
    """Write a randomly initialised model and its tokenizer to `out_dir`; returns the model (fp32, train mode)."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(model_config(size, task=task))
    save_model(model, out_dir, task)
    return model


def save_model(model, out_dir: str, task: str = "arith") -> str:
    """Save weights (safetensors), config, generation config and the tokenizer, so the directory is servable."""
    from cluster.embedded.tokenizer import build_tokenizer

    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    build_tokenizer(task).save_pretrained(out_dir)
    return out_dir


def count_params(model) -> int:
    """Distinct parameters (the tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())
