"""EvalPlus-style differential test programs, run in the real reward sandbox (rewards.code.run_tests)."""

import pytest

from cluster.data.evalplus import differential_program
from rewards.code import run_tests

REF = "import re\ndef f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return [x / 3, re.match('a+', 'a' * (x + 1))]\n"


@pytest.mark.parametrize("candidate,passes", [
    ("import re\ndef f(x):\n    return [x / 3 * (1 + 1e-9), re.match('a+', 'a' * (x + 1))]\n", True),  # float within tol
    ("import re\ndef f(x):\n    return [x / 3 + 1e-3, re.match('a+', 'a' * (x + 1))]\n", False),
    ("import re\ndef f(x):\n    return (x / 3, re.match('a+', 'a' * (x + 1)))\n", False),  # tuple is not list
    ("import re\ndef f(x):\n    return [x / 3, re.match('a+', 'a' * x)]\n", False),  # different match span
])
def test_differential_program_compares_candidate_with_reference(candidate, passes):
    gold = differential_program(REF, "f", [[1], [2], [-1], [7]], atol=0)  # [-1]: reference raises, skipped
    res = run_tests(candidate, gold, timeout_s=30)
    assert res.passed is passes, res


def test_differential_program_fails_when_no_input_can_judge():
    gold = differential_program(REF, "f", [[-1], [-2]], atol=0)
    res = run_tests("def f(x):\n    return 0\n", gold, timeout_s=30)
    assert not res.passed and "reference solution failed on every input" in res.output


def test_differential_program_atol_allows_absolute_error():
    ref = "def g(x):\n    return x + 0.5\n"
    assert run_tests("def g(x):\n    return x + 0.5001\n", differential_program(ref, "g", [[0.0]], 1e-3), 30).passed
    assert not run_tests("def g(x):\n    return x + 0.5001\n", differential_program(ref, "g", [[0.0]], 0), 30).passed
