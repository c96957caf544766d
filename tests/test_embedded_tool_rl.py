"""The embedded tool demo, shortened: GRPO with calculator calls in the rollout loop raises held-out accuracy and
the share of answers that call the tool, and the calls answer with fewer model-written tokens than the rest.

Same recipe as `rlvr train configs/local_tool.yaml` (same cached prior and settings) with fewer RL steps and a
smaller eval set; the margins asserted are well below what the full recipe reaches (README, "Tool use").
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_rl_with_tools_raises_accuracy_and_tool_use(tmp_path):
    overrides = ["train.steps=20", "data.eval.0.limit=100", "train.checkpoint_every=0",
                 f"output.dir={tmp_path}", "output.name=ci", "output.tensorboard=false"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "cluster.cli", "train", "configs/local_tool.yaml", *overrides],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    run = tmp_path / "ci"
    report = json.loads((run / "report.json").read_text())
    assert report["accuracy_after"] >= report["accuracy_before"] + 0.25, report
    assert report["tool_call_rate_after"] >= report["tool_call_rate_before"] + 0.1, report
    rows = [json.loads(line) for line in (run / "eval_after.jsonl").read_text().splitlines()]
    called = [r for r in rows if r["tool_calls"]]
    other = [r for r in rows if not r["tool_calls"]]
    assert called and other
    # a call is short: its model-written tokens (the call and EOS) are fewer than a chain of thought's
    assert sum(r["model_tokens"] for r in called) / len(called) < sum(r["model_tokens"] for r in other) / len(other)
    assert all(r["model_tokens"] < r["tokens"] for r in called)  # the observation is not the model's
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(m["tools/timeouts"] == 0 for m in metrics) and "tools/call_rate" in metrics[-1]
    assert (run / "plots" / "tools.png").is_file()
