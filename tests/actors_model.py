"""Test helper: a tiny random Qwen2ForCausalLM saved as an HF directory (vLLM's CPU attention needs head_dim
64; stories260K has 8). The tokenizer is stories260K's (vocab 512), copied into the target directory."""

import shutil
from pathlib import Path

from cluster.datasets import data_root

STORIES_DIR = data_root() / "models" / "stories260K-hf"


def build_tiny_qwen2(out_dir, hidden: int = 128, layers: int = 2, heads: int = 2, kv_heads: int = 1,
                     intermediate: int = 256, init_std: float = 0.1, seed: int = 0) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(STORIES_DIR / name, out_dir / name)
    cfg = Qwen2Config(vocab_size=512, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=512,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, initializer_range=init_std)
    torch.manual_seed(seed)
    Qwen2ForCausalLM(cfg).to(torch.float32).save_pretrained(out_dir)
    return out_dir
