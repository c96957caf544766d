"""The embedded default, shortened: RL through the real stack raises held-out accuracy well above the prior's.

Same recipe as `rlvr train configs/local.yaml` (same cached prior, task, algorithm and settings) with fewer RL
steps and a smaller fixed eval set. Seeds are fixed; the margin asserted is well below what the full recipe
reaches (README), so that it holds across seeds rather than by luck of one.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_rl_raises_heldout_accuracy_and_response_length(tmp_path):
    overrides = ["train.steps=15", "data.eval.0.limit=100", "train.checkpoint_every=0",
                 "eval.support.n=32", "eval.support.problems=20",
                 f"output.dir={tmp_path}", "output.name=ci", "output.tensorboard=false"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "cluster.cli", "train", "configs/local.yaml", *overrides],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    report = json.loads((tmp_path / "ci" / "report.json").read_text())
    assert report["eval_problems"] == 100
    assert report["accuracy_before"] <= 0.5, report  # an imperfect prior
    assert report["accuracy_after"] >= report["accuracy_before"] + 0.25, report
    assert report["mean_response_length_after"] > report["mean_response_length_before"] + 10, report
    assert (tmp_path / "ci" / "plots" / "training.png").is_file()
    # Support vs sharpening: RL lifts pass@1 far more than the share of problems solved at least once in 32
    # samples, which the prior already covers (RL re-weights what the prior can produce).
    s = report["support"]
    assert s["pass@1_after"] >= s["pass@1_before"] + 0.2, s
    assert s["support_after"] - s["support_before"] < s["pass@1_after"] - s["pass@1_before"], s
    assert s["support_before"] >= 0.5 and s["support_after"] >= s["pass@1_after"], s
    assert (tmp_path / "ci" / "plots" / "support.png").is_file()
