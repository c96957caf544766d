"""rewards.countdown: dataset solutions score 1, wrong or cheating equations score 0, no eval of model text."""

import gzip
import json

import pytest

from cluster.data.root import data_root
from rewards.countdown import check_equation, score

DATA = data_root() / "countdown"  # tests/fixtures/data (tests/conftest.py)


def _rows(name):
    return [json.loads(line) for line in gzip.open(DATA / name)]


@pytest.mark.parametrize("name", ["countdown_3to4_test.jsonl.gz", "countdown_4to6_test.jsonl.gz"])
def test_reference_expressions_score_one(name):
    rows = _rows(name)
    assert all(score(f"<think>...</think> <answer>{r['answer']}</answer>", r["nums"], r["target"]) == 1.0 for r in rows)
    assert all(score(f"<answer>{r['answer']} = {r['target']}</answer>", r["nums"], r["target"]) == 1.0 for r in rows[:50])


def test_wrong_target_and_number_misuse_score_zero():
    rows = _rows("countdown_3to4_test.jsonl.gz")[:200]
    for r in rows:
        assert score(f"<answer>{r['answer']}</answer>", r["nums"], r["target"] + 1) == 0.0
        assert score(f"<answer>{r['answer']} + 0</answer>", r["nums"], r["target"]) == 0.0  # extra number
        assert score(f"<answer>{r['target']}</answer>", r["nums"], r["target"]) == 0.0


@pytest.mark.parametrize("equation", [
    "76 + 72 - 91 - 0", "76 + 72", "76 + 72 - 91 + 91 - 91", "(76 + 72 - 91", "76 ** 1 + 72 - 91",
    "__import__('os').system('true')", "76 + 72 - 91 # comment", "76 + 72 - -91", "7 6 + 72 - 91", "76.0 + 72 - 91",
    "(" * 100 + "76" + ")" * 100 + " + 72 - 91", "9" * 5000, "76 / 0 + 72 - 91",
])
def test_invalid_or_hostile_equations_are_rejected(equation):
    assert not check_equation(equation, [76, 91, 72], 57)


def test_division_is_exact():
    assert check_equation("(6 / 4) * 2", [6, 4, 2], 3)
    assert not check_equation("6 / 4", [6, 4], 1)
