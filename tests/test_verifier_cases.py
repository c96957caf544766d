"""rewards.math against the labelled case file (tests/fixtures/verifier_cases.jsonl, in the repository)."""

import json
import pathlib
import statistics
import time

from rewards.math import Rules, is_equivalent, score

CASES = pathlib.Path(__file__).resolve().parent / "fixtures" / "verifier_cases.jsonl"


def _verdict(case: dict) -> bool:
    rules = Rules(**case.get("rules", {}))
    if case.get("kind") == "completion":
        return score(case["prediction"], case["gold"], rules) == 1.0
    return is_equivalent(case["prediction"], case["gold"], rules)


def test_case_file_is_large_and_labelled():
    cases = [json.loads(line) for line in CASES.open()]
    assert len(cases) >= 300
    assert all({"prediction", "gold", "verdict", "source"} <= set(c) for c in cases)
    assert sum(c["tag"] == "near-miss" for c in cases) >= 100 and sum(c["verdict"] for c in cases) >= 150


def test_verifier_agrees_with_labels_and_accepts_no_near_miss():
    cases = [json.loads(line) for line in CASES.open()]
    for c in cases[:50]:  # warm the imports and the LaTeX parser before timing
        _verdict(c)
    times, wrong = [], []
    for c in cases:
        start = time.perf_counter()
        got = _verdict(c)
        times.append(time.perf_counter() - start)
        if got != c["verdict"]:
            wrong.append((c["tag"], c["prediction"][-80:], c["gold"], c["verdict"]))
    false_accepts = [w for w in wrong if w[0] == "near-miss" or not w[3]]
    assert false_accepts == []
    assert len(wrong) / len(cases) <= 0.05, wrong
    assert statistics.median(times) < 1e-3  # measured ~0.1 ms on the 2-core dev machine
