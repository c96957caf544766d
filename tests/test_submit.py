"""`rlvr submit` against a real Ray head started here with `ray start --head` (and stopped afterwards), as a user
would: Ray 2.60 defaults (token auth), the venv not on the head's PATH, no RAY_AUTH_MODE on the client, and a
recipe with relative paths submitted from its own directory."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from learner.group import free_port
from tiny_models import make_tiny_qwen2

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rayhead")
    temp_dir = Path("/tmp") / f"rlvr-head-{os.getpid()}"  # Ray's socket paths must stay short
    gcs, dash = free_port(), free_port()
    # The user's shell: venv not activated (so `python` on PATH cannot import torch), no Ray auth settings.
    path = ":".join(p for p in os.environ["PATH"].split(":") if Path(p).resolve() != VENV_BIN.resolve())
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "VIRTUAL_ENV")}
    env.update(PATH=path, OMP_NUM_THREADS="1")
    # Free ports for every agent too: the defaults (e.g. 52365) collide with heads other tests run in parallel.
    agents = [f"--{name}={free_port()}" for name in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                                     "metrics-export-port", "runtime-env-agent-port",
                                                     "ray-client-server-port")]
    start = subprocess.run(
        [str(VENV_BIN / "ray"), "start", "--head", f"--port={gcs}", f"--dashboard-port={dash}",
         "--dashboard-host=127.0.0.1", "--include-dashboard=true", "--num-cpus=2", f"--temp-dir={temp_dir}",
         "--disable-usage-stats", *agents], env=env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stdout + start.stderr
    address = f"http://127.0.0.1:{dash}"
    try:
        _wait_for_dashboard(address)
        yield address, tmp, env
    finally:
        _stop_head(temp_dir)


def _stop_head(temp_dir: Path, grace_s: float = 10) -> None:
    """Stop this head only: `ray stop` would end every Ray runtime on the machine, other tests' included. The
    head's processes carry its private temp dir on their command lines; its workers exit with the raylet."""
    import signal

    def ours() -> list[int]:
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and str(temp_dir).encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
        return pids

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in ours():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace_s
        while ours() and time.time() < deadline:
            time.sleep(0.5)


def _wait_for_dashboard(address: str, timeout: float = 120) -> None:
    """Until the job API answers at all (a 401 without the token counts: it is up)."""
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{address}/api/version", timeout=5)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(1)


def rlvr(env: dict, *args, cwd=REPO, timeout=900) -> subprocess.CompletedProcess:
    """`rlvr ARGS` with this checkout's code (what `pip install -e .` gives a user)."""
    return subprocess.run([str(VENV_BIN / "python"), "-m", "cluster.cli", *args], cwd=cwd, capture_output=True,
                          env={**env, "PYTHONPATH": str(REPO)}, text=True, timeout=timeout)


def test_submit_runs_training_as_a_ray_job_and_reports_status(head):
    address, tmp, env = head
    make_tiny_qwen2(str(tmp / "model"), seed=0)
    data = tmp / "sums.jsonl"
    data.write_text("".join(json.dumps({"q": f"{a}+{a}=", "a": str(2 * a)}) + "\n" for a in range(1, 5)))
    runs = tmp / "runs"
    cfg = {  # relative paths, as a user writes them next to their data
        "model": {"path": "model"},
        "data": {"train": [{"name": "jsonl", "path": "sums.jsonl", "kind": "math",
                            "fields": {"prompt": "q", "answer": "a"}}]},
        "rollout": {"dtype": "float32", "max_model_len": 96, "kv_cache_gib": 0.25,
                    "prompt": {"format": "base", "template": "{prompt}"}},
        "sampling": {"n": 2, "max_tokens": 8},
        "learner": {"lr": 1e-3, "micro_batch_tokens": 256},
        "train": {"steps": 2, "prompts_per_step": 2, "reward_workers": 1},
        "output": {"dir": "runs", "name": "submitted", "tensorboard": False},
    }
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    out = rlvr(env, "submit", "--address", address, "recipe.yaml", cwd=tmp)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert f"outputs go to {runs}" in out.stdout
    job_id = out.stdout.split("submitted job ")[1].split()[0]
    assert f"job {job_id} SUCCEEDED" in out.stdout
    assert "rl steps" in out.stdout or "rl steps" in out.stderr  # the job's own logs were followed
    rows = [json.loads(line) for line in (runs / "submitted" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    status = rlvr(env, "submit", "--address", address, "--status", job_id, timeout=60)
    assert status.stdout.strip() == "SUCCEEDED"
    logs = rlvr(env, "submit", "--address", address, "--logs", job_id, timeout=60)
    assert logs.returncode == 0 and "report.json" in logs.stdout, logs.stdout[-2000:] + logs.stderr[-2000:]


def test_unknown_job_id_is_a_clean_error(head):
    address, _, env = head
    for flag in ("--status", "--logs", "--stop"):
        out = rlvr(env, "submit", "--address", address, flag, "raysubmit_nosuchjob", timeout=60)
        assert out.returncode == 2 and "no job 'raysubmit_nosuchjob'" in out.stderr, out.stderr[-2000:]
        assert "Traceback" not in out.stderr


def test_submit_rejects_a_bad_config_before_contacting_the_cluster(head, tmp_path):
    address, _, env = head
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": {"path": "x"}, "data": {"train": []}, "train": {"steps": 0}}))
    out = rlvr(env, "submit", "--address", address, str(bad), timeout=60)
    assert out.returncode == 2 and "train.steps=0" in out.stderr and "Traceback" not in out.stderr
