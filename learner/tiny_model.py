"""A tiny random Qwen2 causal LM (~110K params) written as an HF directory, for tests and benchmarks.

Uses the stories260K tokenizer (512-token vocab) when available; head size 32 is one vLLM's CPU attention takes.
"""

import os
import shutil

# The shared data root sits beside the repository (override with RLVR_DATA_DIR).
DATA_DIR = os.environ.get("RLVR_DATA_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
STORIES_DIR = os.path.normpath(os.path.join(DATA_DIR, "models", "stories260K-hf"))


def make_tiny_qwen2(out_dir: str, seed: int = 0, hidden: int = 64, layers: int = 2, vocab: int = 512,
                    tokenizer_dir: str | None = STORIES_DIR, heads: int = 2, kv_heads: int = 1,
                    intermediate: int | None = None, init_std: float = 0.02) -> str:
    """Write config + random weights (+ tokenizer files if tokenizer_dir exists) to out_dir; returns out_dir.
    `intermediate` defaults to 2 * hidden; `init_std` is the weights' normal init scale."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate or 2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0, initializer_range=init_std)
    torch.manual_seed(seed)
    Qwen2ForCausalLM(config).save_pretrained(out_dir)
    if tokenizer_dir and os.path.isdir(tokenizer_dir):
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if os.path.exists(os.path.join(tokenizer_dir, name)):
                shutil.copy(os.path.join(tokenizer_dir, name), os.path.join(out_dir, name))
    return out_dir
