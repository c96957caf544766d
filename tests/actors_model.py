"""Test helper: a tiny random Qwen2ForCausalLM saved as an HF directory (vLLM's CPU attention needs head_dim
64; stories260K has 8). The tokenizer is stories260K's (vocab 512), copied into the target directory."""

from pathlib import Path

from cluster.datasets import data_root
from learner.tiny_model import make_tiny_qwen2

STORIES_DIR = data_root() / "models" / "stories260K-hf"


def build_tiny_qwen2(out_dir, hidden: int = 128, layers: int = 2, heads: int = 2, kv_heads: int = 1,
                     intermediate: int = 256, init_std: float = 0.1, seed: int = 0) -> Path:
    """Head size 64 by default (hidden 128, 2 heads), with larger init weights than the learner tests' model."""
    return Path(make_tiny_qwen2(str(out_dir), seed=seed, hidden=hidden, layers=layers, tokenizer_dir=str(STORIES_DIR),
                                heads=heads, kv_heads=kv_heads, intermediate=intermediate, init_std=init_std))
