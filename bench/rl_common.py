"""Shared plumbing of the bench scripts: where benchmark data and the test-only model builders are, the embedded
recipe with benchmark sizes, a private Ray runtime, and one run of the real `cluster.train.Trainer` whose
per-step metrics rows are returned.

Not a benchmark itself; import it from the bench scripts (they put bench/ on sys.path by being run from it).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "configs" / "local.yaml"
TOKENIZER_DIR = REPO / "tests" / "fixtures" / "stories260K-tokenizer"  # stories260K's tokenizer, no weights
sys.path.insert(0, str(REPO / "tests"))  # tests/tiny_models.py builds the benchmarks' random Qwen2 models


def data_dir() -> Path:
    """Benchmark data: the data root (cluster.data.root.data_root: $RLVR_DATA_DIR), else an optional full mirror
    beside the checkout (../shared/data). The tests' smoke runs point RLVR_DATA_DIR at tests/fixtures/data."""
    from cluster.data.root import data_root

    path = data_root() or REPO.parent / "shared" / "data"
    if not path.is_dir():
        raise SystemExit(f"benchmark data not found at {path}: set RLVR_DATA_DIR to a local mirror of the datasets "
                         "(the layout of tests/fixtures/data; tests/fixtures/README.md lists the sources)")
    return path


def embedded_config(prompts: int, n: int, max_tokens: int, micro_batch_tokens: int, steps: int, lr: float,
                    kl_coef: float, schedule: str, out_dir: str, seed: int = 0, ray_cpus: float = 2.0,
                    learner_threads: int | None = 1):
    """configs/local.yaml with benchmark sizes: no evaluation, no intermediate checkpoints, no TensorBoard.
    `learner_threads` None keeps the recipe's learner.num_threads."""
    from cluster.config import validate_config
    from cluster.overrides import load_yaml

    raw = load_yaml(RECIPE)
    raw["data"]["eval"] = []
    raw["rollout"]["max_model_len"] = max_tokens + 32  # embedded prompts are ~15 tokens
    raw["sampling"].update({"n": n, "max_tokens": max_tokens, "temperature": 1.0})
    raw["learner"].update({"micro_batch_tokens": micro_batch_tokens, "lr": lr})
    if learner_threads is not None:
        raw["learner"]["num_threads"] = learner_threads
    raw["algo"]["kl_coef"] = kl_coef
    raw["train"].update({"steps": steps, "prompts_per_step": prompts, "schedule": schedule, "seed": seed,
                         "checkpoint_every": 0, "keep_checkpoints": 1})
    raw["output"] = {"dir": out_dir, "tensorboard": False}
    raw["ray"]["num_cpus"] = ray_cpus
    return validate_config(raw)


# --smoke: a tiny prior that pre-trains in seconds, so a smoke run on a fresh clone (empty prior cache) is quick
SMOKE_PRIOR = {"size": "tiny", "pretrain_steps": 20, "pretrain_batch": 8, "corpus_size": 200}


def prior_path(cfg, smoke: bool = False) -> str:
    """The cached pre-trained prior of the recipe (trained once, minutes, on first use; seconds with smoke)."""
    from cluster.embedded.prior import prepare_prior
    from cluster.paths import prior_cache_dir

    embedded = cfg.model.embedded.model_copy(update=SMOKE_PRIOR if smoke else {})
    cache = REPO / embedded.cache_dir if embedded.cache_dir else prior_cache_dir(None)  # the recipe's, or the user's
    seed = getattr(embedded, "seed", cfg.train.seed)  # the prior's own seed where the config has one
    return str(prepare_prior(embedded.model_copy(update={"cache_dir": str(cache)}), seed=seed, progress=False))


def start_ray(num_cpus: float, omp_threads: int = 1):
    """A private local Ray runtime with the workers' environment of cluster.runtime (OMP threads adjustable)."""
    import ray

    from cluster.runtime import worker_env

    env = {**worker_env("cpu"), "OMP_NUM_THREADS": str(omp_threads)}
    ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=tempfile.mkdtemp(prefix="rlvr-bench-ray-"),
             runtime_env={"env_vars": env}, log_to_driver=False)
    return ray


def run_trainer(cfg, model_path: str, name: str) -> list[dict]:
    """Train `cfg.train.steps` steps with the real Trainer; returns its metrics.jsonl rows (one per step)."""
    from cluster.data.loaders import load_specs
    from cluster.run_dir import prepare_run_dir
    from cluster.train import Trainer

    run_dir = prepare_run_dir(cfg.output.dir, name)
    trainer = Trainer(cfg, run_dir, model_path, load_specs(cfg.data.train), [])
    try:
        trainer.run(progress=False)
    finally:
        trainer.close()
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def run_in_fresh_ray(cfg, model_path: str, num_cpus: float = 2.0) -> tuple[list[dict], float]:
    """`run_trainer` in its own private Ray runtime; returns the rows and the wall seconds of the whole run
    (engine and learner start, steps, final checkpoint, shutdown)."""
    import time

    ray = start_ray(num_cpus)
    t0 = time.perf_counter()
    try:
        rows = run_trainer(cfg, model_path, "rlvr")
    finally:
        ray.shutdown()
    return rows, time.perf_counter() - t0


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def load_note() -> str:
    """1-minute load average and core count: the machine is shared, so every result says how busy it was."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
