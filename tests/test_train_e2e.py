"""The whole loop on the real stack (Ray, vLLM, DeepSpeed, the math verifier) with a tiny model, run as the
user runs it: `python -m cluster.cli train CONFIG`. Also: kill -9 mid-run, then --resume, reproduces the
uninterrupted run's metrics."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_recipe import write_recipe

from tiny_models import make_tiny_qwen2

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    model = make_tiny_qwen2(str(root / "model"), seed=0, hidden=64, layers=2)
    data = root / "sums.jsonl"
    with open(data, "w") as f:
        for a in range(1, 9):
            f.write(json.dumps({"question": f"{a}+{a}=", "answer": str(2 * a)}) + "\n")
    return root, model, data


def recipe(root: Path, model: str, data: Path, name: str, steps: int, **extra) -> Path:
    """The shared tiny recipe with held-out evaluation (4 problems), 12 tokens and 5 checkpoints kept."""
    spec = {"name": "jsonl", "path": str(data), "kind": "math", "limit": 4,
            "fields": {"prompt": "question", "answer": "answer"}}
    return write_recipe(root, name, data, model, steps=steps, data__eval=[spec], sampling__max_tokens=12,
                        train__keep_checkpoints=5, **extra)


def rlvr(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "cluster.cli", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def finish(proc, timeout=600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]


COMPARED = ("reward/mean", "response_length/mean", "learner/loss", "learner/grad_norm")


def test_train_run_writes_metrics_checkpoints_report_and_plots(setup):
    root, model, data = setup
    out = finish(rlvr("train", recipe(root, model, data, "plain", steps=3)))
    run = root / "runs" / "plain"
    rows = metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    for key in ("reward/mean", "accuracy", "response_length/mean", "time/generate", "time/train",
                "time/weight_sync", "learner/engine_kl_k3", "learner/entropy", "learner/clip_frac",
                "policy_version"):
        assert key in rows[0], key
    assert rows[-1]["policy_version"] == 3
    report = json.loads((run / "report.json").read_text())
    for key in ("accuracy_before", "accuracy_after", "mean_response_length_before", "mean_response_length_after",
                "eval_problems", "wall_seconds"):
        assert report[key] is not None, key
    assert (run / "plots" / "training.png").stat().st_size > 1000
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step-000001", "step-000002", "step-000003"]
    assert (run / "checkpoints" / "step-000003" / "hf" / "config.json").is_file()
    assert "report.json" in out


def test_kill9_then_resume_reproduces_uninterrupted_metrics(setup):
    root, model, data = setup
    finish(rlvr("train", recipe(root, model, data, "straight", steps=4)))
    reference = metrics(root / "runs" / "straight")

    cfg = recipe(root, model, data, "killed", steps=4)
    proc = rlvr("train", cfg, start_new_session=True)
    ckpt2 = root / "runs" / "killed" / "checkpoints" / "step-000002" / "COMPLETE"
    deadline = time.time() + 600
    while not ckpt2.exists():
        assert proc.poll() is None, proc.stdout.read()[-4000:]
        assert time.time() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the trainer and every process it started
    proc.wait()
    finish(rlvr("train", cfg, "--resume"))
    resumed = metrics(root / "runs" / "killed")
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    for a, b in zip(reference[2:], resumed[2:]):
        for key in COMPARED:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (a["step"], key)
