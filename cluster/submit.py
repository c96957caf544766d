"""`rlvr submit`: run a training recipe as a Ray job on an existing cluster.

The job's runtime environment carries the repository as its working directory (without the venv, runs and
caches) and the resolved config (in RLVR_JOB_CONFIG), so the cluster runs exactly this code and this config.
The config is validated here first: a bad recipe fails on the laptop instead of on the cluster.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXCLUDES = [".venv", ".git", "runs", ".cache", "**/__pycache__", "*.egg-info", ".whl"]
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def _client(address: str):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(address)


def submit(address: str, config: str, overrides: list[str], env_vars: dict | None = None) -> str:
    """Validate here, then submit; the resolved config travels in the job's runtime environment."""
    from cluster.config import load_config, to_yaml

    cfg = load_config(config, overrides)
    from cluster.runtime import worker_env

    env = {**worker_env(cfg.rollout.device), "RLVR_JOB_CONFIG": to_yaml(cfg), "RLVR_JOB_NAME": Path(config).stem,
           **(env_vars or {})}
    runtime_env = {"working_dir": str(REPO), "excludes": EXCLUDES, "env_vars": env}
    return _client(address).submit_job(entrypoint="python -m cluster.job", runtime_env=runtime_env)


def follow(address: str, job_id: str, poll_s: float = 1.0, out=sys.stdout) -> str:
    """Print the job's logs as they grow until it ends; return its final status."""
    client = _client(address)
    shown = 0
    while True:
        status = str(client.get_job_status(job_id)).split(".")[-1]
        logs = client.get_job_logs(job_id)
        if len(logs) > shown:
            out.write(logs[shown:])
            out.flush()
            shown = len(logs)
        if status in TERMINAL:
            return status
        time.sleep(poll_s)


def submit_main(args) -> int:
    client_addr = args.address
    if args.status:
        print(str(_client(client_addr).get_job_status(args.status)).split(".")[-1])
        return 0
    if args.stop:
        stopped = _client(client_addr).stop_job(args.stop)
        print(f"stop requested for {args.stop}" if stopped else f"{args.stop} was not running")
        return 0
    if not args.config:
        print("rlvr submit: give a CONFIG to submit, or --status/--stop JOB_ID", file=sys.stderr)
        return 2
    job_id = submit(client_addr, args.config, args.overrides)
    print(f"submitted job {job_id}", flush=True)
    if args.no_follow:
        return 0
    status = follow(client_addr, job_id)
    print(f"job {job_id} {status}")
    return 0 if status == "SUCCEEDED" else 1
