"""The embedded code task, shortened: RL through the real stack, with the code sandbox as the reward, raises the
held-out pass rate well above the prior's.

Same recipe as `rlvr train configs/local_code.yaml` (same cached prior, task, algorithm and settings) with fewer
RL steps and a smaller support evaluation. The assertions are issue #22's target. Skipped for now: the measured
600-step prior copies the intercept but has not learned the slope's subtraction, so RL starts from ~7% sampled
reward and 30 steps do not reach +25 points (README, "The embedded code task"). Remove the skip with the prior fix.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow,
              pytest.mark.skip(reason="code prior does not learn the slope yet; target not met (README, embedded code task)")]


def test_rl_raises_heldout_pass_rate_of_the_code_task(tmp_path):
    overrides = ["train.steps=15", "eval.support.n=32", "eval.support.problems=20",
                 f"output.dir={tmp_path}", "output.name=ci", "output.tensorboard=false"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "cluster.cli", "train", "configs/local_code.yaml", *overrides],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    report = json.loads((tmp_path / "ci" / "report.json").read_text())
    assert report["eval_problems"] == 100
    assert report["accuracy_before"] <= 0.5, report  # an imperfect prior
    assert report["accuracy_after"] >= report["accuracy_before"] + 0.25, report
    s = report["support"]  # the same curves as the math default
    assert s["pass@1_after"] >= s["pass@1_before"] + 0.2, s
    assert (tmp_path / "ci" / "plots" / "support.png").is_file()
