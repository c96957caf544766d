"""The tiny run recipe of the end-to-end and reliability tests: a few GRPO steps on a JSONL math file."""

from pathlib import Path

import yaml


def write_recipe(root: Path, name: str, data: Path, model: str = "/nonexistent/model", out_dir: Path | None = None,
                 steps: int = 3, **extra) -> Path:
    """A short run: 2 prompts x n=2, max_tokens 8, a checkpoint every step (2 kept). extra: section__key=value."""
    spec = {"name": "jsonl", "path": str(data), "kind": "math", "fields": {"prompt": "question", "answer": "answer"}}
    cfg = {
        "model": {"path": model},
        "data": {"train": [spec]},
        "rollout": {"dtype": "float32", "max_model_len": 128, "kv_cache_gib": 0.25,
                    "prompt": {"format": "base", "template": "{prompt}"}},
        "sampling": {"n": 2, "temperature": 1.0, "max_tokens": 8},
        "learner": {"zero_stage": 2, "lr": 1e-3, "micro_batch_tokens": 512},
        "algo": {"advantage": "grpo"},
        "train": {"steps": steps, "prompts_per_step": 2, "seed": 3, "checkpoint_every": 1, "keep_checkpoints": 2,
                  "reward_workers": 1},
        "output": {"dir": str(out_dir or root / "runs"), "name": name, "tensorboard": False},
        "ray": {"num_cpus": 2},
    }
    for k, v in extra.items():
        section, key = k.split("__")
        cfg[section][key] = v
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
