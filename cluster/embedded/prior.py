"""The embedded prior for a run: `model.embedded` settings -> a cached, pre-trained HF model directory.

    path = prepare_prior(cfg.model.embedded, seed=0)   # trains once (minutes), then loads from the cache
"""

from __future__ import annotations

from pathlib import Path

from cluster.embedded.code_task import CodeMix
from cluster.embedded.pretrain import PretrainConfig, cached_stats, pretrain
from cluster.embedded.tasks import DEFAULT_DIGITS, CorpusMix

# model.embedded.prior -> the corpus mix: 'tool' also answers some problems with a calculator call
PRIORS = {"natural": {"answer_form": "marker"}, "no_answer_form": {"answer_form": "none"},
          "tool": {"answer_form": "marker", "tool": 0.15}}


def pretrain_config(embedded, seed: int) -> PretrainConfig:
    """Map the run config's `model.embedded` section onto the pre-training settings. Its task, size and prior
    are Literals of the config schema, checked when the config loads (tasks 'arith' and 'code')."""
    mix = CodeMix() if embedded.task == "code" else CorpusMix(**PRIORS[embedded.prior])
    return PretrainConfig(task=embedded.task, size=embedded.size, seed=seed, steps=embedded.pretrain_steps,
                          lr=embedded.pretrain_lr, batch=embedded.pretrain_batch, corpus_size=embedded.corpus_size,
                          digits=DEFAULT_DIGITS, mix=mix)


def prepare_prior(embedded, seed: int = 0, progress: bool = True) -> Path:
    """The pre-trained prior's directory, from the cache under `model.embedded.cache_dir` when present."""
    from cluster.paths import prior_cache_dir

    cfg = pretrain_config(embedded, seed)
    cache_dir = prior_cache_dir(embedded.cache_dir)
    cached = (cache_dir / cfg.key()).is_dir()
    path = pretrain(cfg, cache_dir, progress=progress)
    stats = cached_stats(path)["stats"]
    print(f"prior {'loaded from cache' if cached else 'pre-trained'}: {path} ({stats['params']:,} params, "
          f"{stats['seconds']}s, final loss {stats['final_loss']:.3f})", flush=True)
    return path
