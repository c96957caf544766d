"""rewards.score_batch / VerifierPool: bounded time, survives hung and crashed workers, any thread."""

import threading
import time

import pytest

from rewards import score_batch
from rewards.pool import VerifierPool


@pytest.fixture(scope="module")
def pool():
    p = VerifierPool(workers=2, timeout_s=2.0, code_timeout_s=3.0)
    yield p
    p.close()


def test_mixed_kinds_in_one_batch(pool):
    kinds = ["math", "math", "countdown", "code", "code"]
    completions = [r"\boxed{\frac{1}{2}}", r"\boxed{3}", "<answer>76 + 72 - 91</answer>",
                   "```python\ndef f(x):\n    return 2 * x\n```", "```python\ndef f(x):\n    return x\n```"]
    golds = ["0.5", "4", {"nums": [76, 91, 72], "target": 57}, "assert f(2) == 4", {"tests": "assert f(2) == 4"}]
    assert pool.score(kinds, completions, golds) == [1.0, 0.0, 1.0, 1.0, 0.0]


def test_pathological_math_input_scores_zero_in_time_and_pool_stays_usable(pool):
    hostile = ["\\boxed{" + "x" * 1_000_000 + "}", r"\boxed{10^{10^{10}}}", r"\boxed{9^{9^{9^{9}}}}",
               "\\boxed{" + "{" * 5000 + "}" * 5000 + "}", "\\boxed{\ud800}", r"\boxed{\frac{1}{}}", "\x00" * 1000]
    start = time.monotonic()
    assert pool.score("math", hostile, ["1"] * len(hostile)) == [0.0] * len(hostile)
    assert time.monotonic() - start < 2.0 * len(hostile)
    assert pool.score("math", [r"\boxed{1}"], ["1"]) == [1.0]


def test_hung_worker_is_killed_and_replaced(pool, monkeypatch):
    # A verifier that hangs: a code item whose sandbox sleeps, with the pool's deadline below the sandbox's.
    tight = VerifierPool(workers=1, timeout_s=1.0, code_timeout_s=30.0)
    try:
        tight.code_deadline_s = 1.0  # the pool gives up after 1 s; the sandbox itself would wait 30 s
        start = time.monotonic()
        out = tight.score(["code", "math"], ["import time\ntime.sleep(60)", r"\boxed{2}"], ["", "2"])
        assert out == [0.0, 1.0] and tight.replaced == 1 and time.monotonic() - start < 20
        # The killed worker never cleaned its sandbox dir; the replacement sweeps it on its first code item.
        tight.code_deadline_s = 35.0
        assert tight.score("code", ["x = 1"], ["assert x == 1"]) == [1.0]
        import pathlib
        import tempfile

        stale = [d for d in pathlib.Path(tempfile.gettempdir()).glob("rlvr-sandbox-*-*")
                 if not pathlib.Path(f"/proc/{d.name.split('-')[2]}").exists()]
        assert stale == []
    finally:
        tight.close()


def test_crashed_worker_is_replaced(pool):
    import os
    import signal

    victim = pool._workers[0].proc.pid
    os.kill(victim, signal.SIGKILL)
    assert pool.score("math", [r"\boxed{7}"] * 4, ["7"] * 4) == [1.0] * 4
    assert all(w.proc.pid != victim for w in pool._workers)


def test_score_batch_works_off_the_main_thread():
    out = []
    thread = threading.Thread(target=lambda: out.append(score_batch("math", [r"\boxed{\pi/2}"], [r"\frac{\pi}{2}"])))
    thread.start()
    thread.join(120)
    assert out == [[1.0]]


def test_bad_batch_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown verifier kind"):
        score_batch(["maths"], ["x"], ["x"])
    with pytest.raises(ValueError, match="equal lengths"):
        score_batch("math", ["x", "y"], ["x"])


@pytest.mark.slow  # measured 13 s: a Ray runtime starts (2 cores, loaded)
def test_score_batch_inside_a_ray_actor():
    import shutil
    import tempfile

    import ray

    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a 107-byte limit
    ray.init(num_cpus=1, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    try:
        @ray.remote
        class Scorer:
            def run(self):
                from rewards import score_batch

                return score_batch(["math", "countdown"], [r"\boxed{4}", "<answer>1+2</answer>"],
                                   ["4", {"nums": [1, 2], "target": 3}], timeout_s=3)

        assert ray.get(Scorer.remote().run.remote(), timeout=180) == [1.0, 1.0]
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_verdicts_carry_timeout_and_error_status_and_count_as_metrics():
    import pickle

    from rewards.verdict import Verdict, status_counts

    tight = VerifierPool(workers=1, timeout_s=1.0, code_timeout_s=30.0)
    try:
        tight.code_deadline_s = 1.0
        # a hung verifier, a verifier that raises (a math gold that is not a string), and two decided items
        out = tight.score(["code", "math", "math", "math"], ["import time\ntime.sleep(60)", r"\boxed{2}",
                                                              r"\boxed{2}", r"\boxed{3}"], ["", None, "2", "2"])
    finally:
        tight.close()
    assert out == [0.0, 0.0, 1.0, 0.0]
    assert [v.status for v in out] == ["timeout", "error", "ok", "ok"]
    assert status_counts(out) == {"reward/timeouts": 1, "reward/errors": 1}
    assert pickle.loads(pickle.dumps(out[0])).status == "timeout" and isinstance(out[0], float)
    assert status_counts([1.0, 0.0]) == {"reward/timeouts": 0, "reward/errors": 0}
    with pytest.raises(ValueError, match="expected one of"):
        Verdict(0.0, "lost")
