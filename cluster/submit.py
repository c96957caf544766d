"""`rlvr submit`: run a training recipe as a Ray job on an existing cluster.

The job's runtime environment carries the repository as its working directory (without the venv, runs and
caches) and the resolved config (in RLVR_JOB_CONFIG), so the cluster runs exactly this code and this config.
The config is validated here first: a bad recipe fails on the laptop instead of on the cluster. What a job's
Ray 2.60 head needs is handled here: the head's token is sent when one is available (RAY_AUTH_MODE=token),
the job and its workers run this Python (`--python`, default the one running rlvr, i.e. its venv), and relative
paths of the config (output.dir, the prior cache, the model, data and reward files) become absolute, because
a job's working directory is a temporary copy.
"""
from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

from cluster.config_error import ConfigError

REPO = Path(__file__).resolve().parent.parent
EXCLUDES = [".venv", ".git", "runs", ".cache", "**/__pycache__", "*.egg-info", ".whl"]
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
AGENT_WAIT_S = 120.0  # how long a submission waits for a freshly started head's job agent


def use_token_auth() -> bool:
    """Ray 2.60 heads refuse requests without their token. When a token is available here (RAY_AUTH_TOKEN,
    RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) and RAY_AUTH_MODE is unset, send it. Call before importing ray."""
    if os.environ.get("RAY_AUTH_MODE"):
        return os.environ["RAY_AUTH_MODE"].lower() == "token"
    have = (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or (Path.home() / ".ray" / "auth_token").is_file())
    if have:
        os.environ["RAY_AUTH_MODE"] = "token"
    return bool(have)


def _client(address: str):
    use_token_auth()
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(address)


def absolute_paths(data: dict, cwd: Path) -> dict:
    """The config with relative paths made absolute against `cwd` (the submitter's working directory): where
    outputs land and the prior cache always; the model, data files and reward files where they exist here."""
    from rewards.custom import is_file_ref, split_ref

    def here(p: str) -> Path:
        return (cwd / Path(p).expanduser()).resolve() if not Path(p).expanduser().is_absolute() else Path(p)

    data["output"]["dir"] = str(here(data["output"]["dir"]))
    model = data["model"]
    if model.get("embedded") and model["embedded"].get("cache_dir"):
        model["embedded"]["cache_dir"] = str(here(model["embedded"]["cache_dir"]))
    if model.get("path") and here(model["path"]).exists():
        model["path"] = str(here(model["path"]))
    for spec in data["data"]["train"] + data["data"]["eval"]:
        if spec.get("name") == "jsonl" and spec.get("path") and here(spec["path"]).exists():
            spec["path"] = str(here(spec["path"]))
        if spec.get("reward") and is_file_ref(spec["reward"]):
            target, fn = split_ref(spec["reward"])
            if here(target).is_file():
                spec["reward"] = f"{here(target)}:{fn}"
    return data


def submit(address: str, config: str, overrides: list[str], env_vars: dict | None = None,
           python: str | None = None) -> tuple[str, str]:
    """Validate here, then submit; the resolved config travels in the job's runtime environment.
    Returns (job id, the absolute output.dir)."""
    from cluster.config import load_config, to_yaml, validate_config
    from cluster.runtime import worker_env

    cfg = load_config(config, overrides)
    cfg = validate_config(absolute_paths(cfg.model_dump(mode="json"), Path.cwd()))
    python = python or sys.executable
    env = {**worker_env(cfg.rollout.device), "RLVR_JOB_CONFIG": to_yaml(cfg), "RLVR_JOB_NAME": Path(config).stem,
           **(env_vars or {})}
    runtime_env = {"working_dir": str(REPO), "excludes": EXCLUDES, "env_vars": env, "py_executable": python}
    client = _client(address)
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            job_id = client.submit_job(entrypoint=f"{shlex.quote(python)} -m cluster.job", runtime_env=runtime_env)
            return job_id, cfg.output.dir
        except RuntimeError as e:  # a head started moments ago has no job agent yet
            if "No available agent" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def _status(client, job_id: str) -> str:
    return str(client.get_job_status(job_id)).split(".")[-1]


def follow(address: str, job_id: str, poll_s: float = 1.0, out=sys.stdout) -> str:
    """Print the job's logs as they grow until it ends; return its final status."""
    client = _client(address)
    shown = 0
    while True:
        status = _status(client, job_id)
        logs = client.get_job_logs(job_id)
        if len(logs) > shown:
            out.write(logs[shown:])
            out.flush()
            shown = len(logs)
        if status in TERMINAL:
            return status
        time.sleep(poll_s)


def _known_job(client, address: str, job_id: str) -> None:
    """A ConfigError naming the job id and the jobs the cluster knows, instead of the client's traceback."""
    try:
        client.get_job_info(job_id)
    except Exception as e:  # the client raises RuntimeError with the HTTP body for an unknown id
        known = [j.submission_id for j in client.list_jobs()][-5:]
        raise ConfigError(f"no job {job_id!r} on {address} ({type(e).__name__}); recent job ids: {known}") from None


def submit_main(args) -> int:
    address = args.address
    try:
        return _submit_main(args, address)
    except Exception as e:  # connection and authentication failures: one line, not the client's traceback
        if isinstance(e, ConfigError) or type(e).__name__ not in ("AuthenticationError", "ConnectionError"):
            raise
        hint = ("; the head wants its token: copy its ~/.ray/auth_token here (or set RAY_AUTH_TOKEN) and "
                "RAY_AUTH_MODE=token" if type(e).__name__ == "AuthenticationError" else
                "; is the dashboard running there (ray start --head --include-dashboard=true)?")
        raise ConfigError(f"cannot reach the Ray job API at {address}: {str(e).splitlines()[0][:300]}{hint}") from None


def _submit_main(args, address: str) -> int:
    job = args.status or args.stop or args.logs
    if job:
        client = _client(address)
        _known_job(client, address, job)
        if args.status:
            print(_status(client, job))
        elif args.stop:
            print(f"stop requested for {job}" if client.stop_job(job) else f"{job} was not running")
        else:
            print(client.get_job_logs(job), end="")
        return 0
    if not args.config:
        print("rlvr submit: give a CONFIG to submit, or --status/--stop/--logs JOB_ID", file=sys.stderr)
        return 2
    job_id, out_dir = submit(address, args.config, args.overrides, python=args.python)
    print(f"submitted job {job_id}\noutputs go to {out_dir} on the node that runs the job's driver", flush=True)
    if args.no_follow:
        return 0
    status = follow(address, job_id)
    print(f"job {job_id} {status}")
    return 0 if status == "SUCCEEDED" else 1
