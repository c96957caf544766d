"""Every benchmark in bench/ runs end to end at tiny sizes (`--smoke`) as a user runs it, and prints the table
or ratio line it exists for. A new bench script must be added to EXPECTED (and take --smoke), or this fails.

bench_trl compares against TRL, which is only in the `bench` extra: without it the test runs rlvr's side
(`--no-trl`), checks that the script says the TRL side was skipped, and warns, rather than skipping silently.
"""
import importlib.util
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

# script -> lines its smoke run must print (regexes, searched in stdout + stderr)
EXPECTED = {
    "bench_rollout.py": [r"ratio pool x1 / HF one batch: [\d.]+x", r"scaling 1 -> 2 engines: [\d.]+x"],
    "bench_learner.py": [r'"bench": "learner".*"tokens_per_s_mean": [\d.]+'],
    "bench_verifier.py": [r"speedup +[\d.]+x", r"agreement: \d+/\d+"],
    "bench_step.py": [r"time/step +[\d.]+ +[\d.]+", r"ratio async/sync: samples/s [\d.]+x",
                      r"balance \(sync run\): .* rollout/train = [\d.]+"],
    "bench_trl.py": [r"median s/step \(after warm-up\) +[\d.]+", r"reward at equal wall"],
    "bench_weight_sync.py": [r"push s +bare s +ratio"],
    "bench_budget_sweep.py": [r"largest accuracy difference between the two ways: [\d.]+",
                              r"cost ratio separate / prefix: [\d.]+x"],
    "bench_code_sandbox.py": [r"sandbox wall: \S+; N=5", r"wall per call: median \d+ ms", r"per-call overhead: -?\d+ ms",
                              r"pool workers=2: [\d.]+ s per step, [\d.]+ programs/s"],
    "bench_record.py": [r"train +[\d,]+ +[\d,]+ +[\d.]+", r"total +[\d,]+ +[\d,]+ +[\d.]+"],
    "bench_cot.py": [r"samples/s +[\d.]+", r"train MFU +\d+%", r"per step: [\d.]+ TFLOP generation"],
    "bench_gpu_learner.py": [r"packed vs unpacked log-probs, rlvr unshared: max \|diff\| \S+ nats \(OK",
                             r"packed vs unpacked log-probs, rlvr shared prompts: max \|diff\| \S+ nats \(OK",
                             r"ratio rlvr unshared / plain transformers tokens/s: [\d.]+x"],
}


def scripts() -> list[str]:
    return sorted(p.name for p in (REPO / "bench").glob("bench_*.py"))


def run_smoke(script: str, *extra: str, timeout: int = 600) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false",
           # a script's own directory comes first on sys.path, not the cwd: import this checkout's packages, not
           # whichever copy the environment has installed
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / script), "--smoke", *extra], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script} --smoke exited {proc.returncode}:\n{out[-4000:]}"
    return out


def test_every_bench_script_has_a_smoke_expectation():
    missing = [s for s in scripts() if s not in EXPECTED]
    assert not missing, f"bench scripts without an entry in EXPECTED (add their --smoke output lines): {missing}"


@pytest.mark.parametrize("script", [s for s in scripts() if s != "bench_trl.py"])
def test_bench_script_smoke_run_prints_its_table(script):
    out = run_smoke(script)
    for pattern in EXPECTED[script]:
        assert re.search(pattern, out), f"{script} --smoke did not print /{pattern}/:\n{out[-3000:]}"


def test_bench_trl_smoke_compares_rlvr_with_trl_or_says_trl_is_missing():
    have_trl = importlib.util.find_spec("trl") is not None
    out = run_smoke("bench_trl.py", *([] if have_trl else ["--no-trl"]))
    for pattern in EXPECTED["bench_trl.py"]:
        assert re.search(pattern, out), f"bench_trl.py --smoke did not print /{pattern}/:\n{out[-3000:]}"
    if have_trl:
        assert re.search(r"ratio rlvr async / TRL 1 thr step throughput: [\d.]+x", out), out[-3000:]
    else:
        assert "TRL side skipped" in out, out[-3000:]
        warnings.warn("trl is not installed: bench_trl.py smoke ran rlvr's side only (pip install trl==1.16.0)")
