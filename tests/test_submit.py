"""`rlvr submit` against a real Ray head started here with `ray start --head` (and stopped afterwards)."""
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
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           "RAY_ADDRESS": ""}
    env.pop("RAY_ADDRESS")
    start = subprocess.run(
        [str(VENV_BIN / "ray"), "start", "--head", f"--port={gcs}", f"--dashboard-port={dash}",
         "--dashboard-host=127.0.0.1", "--include-dashboard=true", "--num-cpus=2", f"--temp-dir={temp_dir}",
         "--disable-usage-stats"], env=env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stdout + start.stderr
    address = f"http://127.0.0.1:{dash}"
    try:
        _wait_for_dashboard(address)
        yield address, tmp, env
    finally:
        subprocess.run([str(VENV_BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)


def _wait_for_dashboard(address: str, timeout: float = 120) -> None:
    from ray.job_submission import JobSubmissionClient

    deadline = time.time() + timeout
    while True:
        try:
            JobSubmissionClient(address).list_jobs()
            return
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(1)


def test_submit_runs_training_as_a_ray_job_and_reports_status(head):
    address, tmp, env = head
    model = make_tiny_qwen2(str(tmp / "model"), seed=0)
    data = tmp / "sums.jsonl"
    data.write_text("".join(json.dumps({"q": f"{a}+{a}=", "a": str(2 * a)}) + "\n" for a in range(1, 5)))
    runs = tmp / "runs"
    cfg = {
        "model": {"path": model},
        "data": {"train": [{"name": "jsonl", "path": str(data), "kind": "math",
                            "fields": {"prompt": "q", "answer": "a"}}]},
        "rollout": {"dtype": "float32", "max_model_len": 96, "kv_cache_gib": 0.25,
                    "prompt": {"format": "base", "template": "{prompt}"}},
        "sampling": {"n": 2, "max_tokens": 8},
        "learner": {"lr": 1e-3, "micro_batch_tokens": 256},
        "train": {"steps": 2, "prompts_per_step": 2, "reward_workers": 1},
        "output": {"dir": str(runs), "name": "submitted", "tensorboard": False},
    }
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    out = subprocess.run([str(VENV_BIN / "rlvr"), "submit", "--address", address, str(recipe)], env=env,
                         capture_output=True, text=True, timeout=900, cwd=REPO)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    job_id = out.stdout.split("submitted job ")[1].split()[0]
    assert f"job {job_id} SUCCEEDED" in out.stdout
    assert "rl steps" in out.stdout or "rl steps" in out.stderr  # the job's own logs were followed
    rows = [json.loads(line) for line in (runs / "submitted" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    status = subprocess.run([str(VENV_BIN / "rlvr"), "submit", "--address", address, "--status", job_id],
                            env=env, capture_output=True, text=True, timeout=60)
    assert status.stdout.strip() == "SUCCEEDED"


def test_submit_rejects_a_bad_config_before_contacting_the_cluster(head, tmp_path):
    address, _, env = head
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": {"path": "x"}, "data": {"train": []}, "train": {"steps": 0}}))
    out = subprocess.run([str(VENV_BIN / "rlvr"), "submit", "--address", address, str(bad)], env=env,
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 2 and "train.steps=0" in out.stderr and "Traceback" not in out.stderr
