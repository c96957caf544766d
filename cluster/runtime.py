"""Starting or joining Ray, and resolving the policy model a run starts from.

Local mode starts a private Ray runtime (its own temp dir, no dashboard); `--address` or $RAY_ADDRESS joins an
existing cluster. Environment every worker needs (one OpenMP thread per process on shared cores, DeepSpeed's
CPU accelerator where there is no GPU) goes into the job-wide runtime_env.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from cluster.paths import resolve_model_path


# Printed by every run's workers and never actionable: weight-loading progress bars (vLLM's shard loader,
# transformers' "Loading weights"), which Ray forwards line by line; a deprecation inside vLLM's Triton shim.
QUIET_ENV = {
    "TQDM_DISABLE": "1",  # worker processes only: the driver's own progress (rl steps) stays
    "PYTHONWARNINGS": "ignore:`torch.distributed.reduce_op` is deprecated:FutureWarning",
}


def worker_env(device: str) -> dict:
    env = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "RAY_DEDUP_LOGS": "0", **QUIET_ENV}
    if device == "cpu":
        env["DS_ACCELERATOR"] = "cpu"
    return env


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def _quiet_token_auth_notice() -> None:
    """A private runtime uses token auth (Ray 2.60's default), and Ray says so on every start; drop that one
    notice. (RAY_AUTH_MODE=token would also skip it, but Ray's core reads it before rlvr could set it.)"""
    log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(f, _DropMessage) for f in log.filters):
        log.addFilter(_DropMessage("Token authentication is enabled for this Ray cluster"))


def ray_running() -> bool:
    import ray

    return ray.is_initialized()


def stop_ray() -> float:
    """Shut this process's Ray runtime down; returns the seconds it took."""
    import time

    import ray

    t0 = time.time()
    ray.shutdown()
    return time.time() - t0


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
        _quiet_token_auth_notice()
        ray.init(num_cpus=cfg.ray.num_cpus, num_gpus=cfg.ray.num_gpus, include_dashboard=False,
                 _temp_dir=tmp, runtime_env=runtime_env, log_to_driver=True)
    return ray


def resolve_model(cfg) -> str:
    """The HF directory (or hub id) the run starts from."""
    if cfg.model.embedded is not None:
        from cluster.embedded.prior import prepare_prior

        return str(prepare_prior(cfg.model.embedded, seed=cfg.model.embedded.seed))
    return resolve_model_path(cfg.model.path)


def link_prior(run_dir: Path, model_path: str) -> Path | None:
    """run_dir/prior -> the model the run starts from (the step-0 policy), so `rlvr eval model.path=RUN/prior`
    evaluates it without looking up the prior's cache directory. None for a hub id (nothing local to link)."""
    target = Path(model_path)
    if not target.is_dir():
        return None
    link = run_dir / "prior"
    if link.is_symlink():  # a resumed run: the same prior, linked again
        link.unlink()
    link.symlink_to(target.resolve(), target_is_directory=True)
    return link


__all__ = ["init_ray", "link_prior", "resolve_model", "resolve_model_path", "worker_env"]
