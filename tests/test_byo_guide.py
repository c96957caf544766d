"""The README's "Train your own model on your own data" example (examples/byo), run as the guide says: from its
directory, with a Hugging Face model directory of one's own, for 2 steps on the real stack. Also the zero-signal
guard stopping a run whose reward is constant, and an overlong prompt named by file:line before Ray starts."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tiny_models import make_tiny_qwen2

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "byo"


@pytest.fixture
def workdir(tmp_path):
    """A copy of the example directory holding a small HF model of the user's own at ./my-model."""
    work = tmp_path / "byo"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("runs", "__pycache__"))
    make_tiny_qwen2(str(work / "my-model"), seed=0, hidden=64, layers=2)
    tmp = tempfile.mkdtemp(prefix="byo", dir="/tmp")  # short: Ray's socket paths have a 107-byte limit
    (work / "tmp").symlink_to(tmp)
    yield work
    shutil.rmtree(tmp, ignore_errors=True)


def rlvr(work: Path, *args, timeout=900) -> subprocess.CompletedProcess:
    # PYTHONPATH stands in for `pip install -e .`, so this checkout's code runs; a private TMPDIR shows whether
    # Ray started.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO),
           "TMPDIR": os.path.realpath(work / "tmp")}
    return subprocess.run([sys.executable, "-m", "cluster.cli", *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=timeout)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.mark.slow
def test_guide_example_trains_two_steps_with_its_custom_reward(workdir):
    res = rlvr(workdir, "train", "config.yaml", "train.steps=2", "train.samples_per_step_logged=16")
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    (run,) = (workdir / "runs").glob("config-*")  # relative output.dir: under the working directory
    assert [r["step"] for r in rows(run / "metrics.jsonl")] == [1, 2]
    # Every logged reward is what the user's reward.py gives that completion.
    spec = importlib.util.spec_from_file_location("user_reward", workdir / "reward.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    answers = {r["id"]: r["solution"] for r in rows(workdir / "problems.jsonl")}
    samples = rows(run / "samples.jsonl")
    assert len(samples) == 2 * 16
    for s in samples:
        assert s["reward"] == hook.score(s["completion"], {"answer": answers[s["id"]]})
    report = json.loads((run / "report.json").read_text())
    assert report["eval_problems"] == 4 and report["accuracy_after"] is not None
    assert (run / "checkpoints" / "step-000002" / "hf" / "config.json").is_file()
    assert "count/reward_errors" in rows(run / "metrics.jsonl")[-1]
    assert all("extracted" in s for s in samples)
    assert "rl steps 2/2: reward " in res.stdout  # plain progress lines: stdout is not a terminal here


@pytest.mark.slow
def test_constant_reward_is_warned_about_then_stops_the_run(workdir):
    with open(workdir / "reward.py", "a") as f:
        f.write("\n\ndef constant(completion, problem):\n    return 0.0\n")
    res = rlvr(workdir, "train", "config.yaml", "data.train.0.reward=reward.py:constant", "data.eval=[]",
               "train.zero_signal_warn_steps=1", "train.zero_signal_stop_steps=2", "train.steps=5")
    out = res.stdout + res.stderr
    assert res.returncode == 1, out[-4000:]
    assert "WARNING step 1: no learning signal: every reward of the last 1 step(s) was 0" in out
    assert "step 2: no learning signal" in out and "Stopped after train.zero_signal_stop_steps=2" in out
    assert "Traceback" not in res.stderr
    (run,) = (workdir / "runs").glob("config-*")
    assert [r["step"] for r in rows(run / "metrics.jsonl")] == [1]


def test_overlong_prompt_is_named_by_file_and_line_before_ray_starts(workdir):
    with open(workdir / "problems.jsonl", "a") as f:
        f.write(json.dumps({"id": "long", "question": "1+1= " * 100, "solution": "2", "digits": 1}) + "\n")
    res = rlvr(workdir, "train", "config.yaml", timeout=300)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"data.train: 1 of 21 prompts do not fit" in res.stderr
    assert f"{workdir / 'problems.jsonl'}:21 ('1+1= " in res.stderr
    assert not list((workdir / "tmp").glob("rlvr-ray-*")), "Ray started before the prompts were checked"


def test_broken_reward_hook_fails_before_ray_starts(workdir):
    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    cfg["data"]["train"][0]["reward"] = "reward.py:scroe"
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    res = rlvr(workdir, "train", "config.yaml", timeout=300)
    assert res.returncode == 2 and "has no function 'scroe'" in res.stderr and "score" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
