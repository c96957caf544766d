"""Starting or joining Ray, and resolving the policy model a run starts from.

Local mode starts a private Ray runtime (its own temp dir, no dashboard); `--address` or $RAY_ADDRESS joins an
existing cluster. Environment every worker needs (one OpenMP thread per process on shared cores, DeepSpeed's
CPU accelerator where there is no GPU) goes into the job-wide runtime_env.
"""
from __future__ import annotations

import os
import tempfile

from cluster.paths import resolve_model_path


def worker_env(device: str) -> dict:
    env = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "RAY_DEDUP_LOGS": "0"}
    if device == "cpu":
        env["DS_ACCELERATOR"] = "cpu"
    return env


def init_ray(cfg, address: str | None):
    """Join `address` (or $RAY_ADDRESS, or cfg.ray.address); otherwise start a local runtime."""
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or cfg.ray.address
    runtime_env = {"env_vars": worker_env(cfg.rollout.device)}
    if os.environ.get("RAY_JOB_ID") or os.environ.get("RLVR_JOB_CONFIG"):
        ray.init()  # a submitted job's driver: the job's runtime_env (cluster/submit.py) already applies
    elif address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
    else:
        tmp = tempfile.mkdtemp(prefix="rlvr-ray-")
        ray.init(num_cpus=cfg.ray.num_cpus, num_gpus=cfg.ray.num_gpus, include_dashboard=False,
                 _temp_dir=tmp, runtime_env=runtime_env, log_to_driver=True)
    return ray


def resolve_model(cfg) -> str:
    """The HF directory (or hub id) the run starts from."""
    if cfg.model.embedded is not None:
        from cluster.embedded.prior import prepare_prior

        return str(prepare_prior(cfg.model.embedded, seed=cfg.model.embedded.seed))
    return resolve_model_path(cfg.model.path)


__all__ = ["init_ray", "resolve_model", "resolve_model_path", "worker_env"]
