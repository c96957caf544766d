"""Metrics against hand-computed values: pass@k (combinatorics), maj@k (ties, abstentions, equivalence),
mean@k, bootstrap CIs, token budgets, per-dataset/overall aggregation."""

import math
from fractions import Fraction

import numpy as np
import pytest

from cluster.metrics import (ProblemResult, accuracy_at_token_budget, bootstrap_ci, default_ks, maj_at_k,
                             majority_curve, mean_at_k, pass_at_k, summarize)


def test_pass_at_k_matches_hand_computed_n5_c2():
    # 1 - C(3,k)/C(5,k): k=1: 1-3/5, k=2: 1-3/10, k=3: 1-1/10, k>=4: fewer than k wrong samples -> 1
    assert [pass_at_k(5, 2, k) for k in range(1, 6)] == pytest.approx([0.4, 0.7, 0.9, 1.0, 1.0], abs=1e-12)


@pytest.mark.parametrize("n,c,k", [(10, 0, 3), (10, 10, 1), (16, 3, 8), (200, 7, 50), (2000, 500, 1000), (64, 1, 1)])
def test_pass_at_k_equals_exact_binomial_ratio(n, c, k):
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9, abs=1e-12)


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match=r"k=6: expected 1 <= k <= n=5"):
        pass_at_k(5, 2, 6)
    with pytest.raises(ValueError, match=r"c=6"):
        pass_at_k(5, 6, 1)


def test_mean_at_k_uses_the_first_k_samples():
    assert [mean_at_k([True, False, True, True], k) for k in (1, 2, 3, 4)] == [1.0, 0.5, pytest.approx(2 / 3), 0.75]


def test_maj_at_k_ties_go_to_the_answer_seen_first():
    answers, correct = ["1", "2", "2", "1"], [True, False, False, True]
    # k=2: 1-1 tie -> '1' (first); k=3: '2' leads 2-1; k=4: 2-2 tie -> '1' again
    assert [maj_at_k(answers, correct, k) for k in (1, 2, 3, 4)] == [1.0, 1.0, 0.0, 1.0]
    assert majority_curve(answers) == [0, 0, 1, 0]


def test_maj_at_k_missing_answers_abstain():
    answers, correct = [None, None, "4", None], [False, False, True, False]
    assert [maj_at_k(answers, correct, k) for k in (1, 2, 3, 4)] == [0.0, 0.0, 1.0, 1.0]
    assert majority_curve([None, None]) == [None, None]


def _fraction_equiv(a: str, b: str) -> bool:
    return Fraction(a) == Fraction(b)


def test_maj_at_k_groups_by_the_equivalence_not_by_string():
    answers, correct = ["3", "0.5", "1/2", "2/4", "3"], [False, True, True, True, False]
    assert maj_at_k(answers, correct, 5, equiv=_fraction_equiv) == 1.0  # the 0.5 class has 3 votes against 2
    assert maj_at_k(answers, correct, 5, equiv=str.__eq__) == 0.0  # as strings '3' wins 2 to 1


def test_majority_curve_calls_equiv_only_for_new_strings():
    calls = []

    def equiv(a, b):
        calls.append((a, b))
        return a == b

    majority_curve(["a", "a", "b", "a", "b", "c"], equiv)
    assert calls == [("b", "a"), ("c", "a"), ("c", "b")]


def test_maj_at_k_with_the_math_verifier_equivalence():
    from rewards.math import is_equivalent  # the function the controller passes

    answers = ["\\frac{1}{2}", "0.5", "2", "2", None]
    correct = [True, True, False, False, False]
    assert maj_at_k(answers, correct, 4, equiv=is_equivalent) == 1.0  # 1/2 and 0.5 tie with 2; 1/2 came first
    assert maj_at_k(answers, correct, 4) == 0.0  # as strings '2' has 2 votes, the others 1 each
    assert maj_at_k(["2", "\\frac{1}{2}", "0.5", "2", "0.5"], [False, True, True, False, True], 5,
                    equiv=is_equivalent) == 1.0
    assert maj_at_k(["2", "\\frac{1}{2}", "0.5", "2", "0.5"], [False, True, True, False, True], 5) == 0.0


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    rng = np.random.default_rng(1)
    scores = rng.random(50)
    assert bootstrap_ci(scores, seed=7) == bootstrap_ci(scores, seed=7) != bootstrap_ci(scores, seed=8)
    vals = (rng.random(400) < 0.3).astype(float)
    a = bootstrap_ci(vals, seed=7)
    assert a.low < a.mean < a.high and a.mean == vals.mean()
    half = 1.96 * math.sqrt(a.mean * (1 - a.mean) / vals.size)  # normal approximation
    assert (a.high - a.low) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_ci([1.0, 1.0, 1.0]) == bootstrap_ci([1.0], n_resamples=10)
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_ci([])


def test_accuracy_at_token_budget_counts_long_correct_answers_as_wrong():
    res = ProblemResult(correct=[True, True, False, True], num_tokens=[10, 50, 5, 200])
    assert accuracy_at_token_budget(res, [5, 10, 50, 199, 200]) == [0.0, 0.25, 0.5, 0.5, 0.75]
    with pytest.raises(ValueError, match="num_tokens"):
        accuracy_at_token_budget(ProblemResult(correct=[True]), [1])


def test_default_ks_are_powers_of_two_plus_n():
    assert default_ks(1) == [1] and default_ks(5) == [1, 2, 4, 5] and default_ks(8) == [1, 2, 4, 8]


def test_summarize_reports_per_dataset_overall_and_macro():
    a = [ProblemResult([True, False, False, False], ["1", "2", "2", "3"]),
         ProblemResult([True, True, True, True], ["5", "5", "5", "5"])]
    b = [ProblemResult([False, False, True, True], ["x", "y", "z", "z"])]
    s = summarize({"a": a, "b": b}, ks=[1, 2, 4], n_resamples=200)
    # a: pass@1 = (1/4 + 1)/2, pass@2 = (1 - C(3,2)/C(4,2) + 1)/2 = (0.5 + 1)/2, pass@4 = 1
    assert s["a"]["pass@k"] == pytest.approx([0.625, 0.75, 1.0])
    # b: pass@1 = 2/4, pass@2 = 1 - C(2,2)/C(4,2) = 5/6
    assert s["b"]["pass@k"] == pytest.approx([0.5, 5 / 6, 1.0])
    # maj: a1 k=1 '1' ok, k=2 tie '1' ok, k=4 '2' wins wrong; a2 always ok; b: k=1 x, k=2 x (tie), k=4 z
    assert s["a"]["maj@k"] == [1.0, 1.0, 0.5] and s["b"]["maj@k"] == [0.0, 0.0, 1.0]
    assert s["a"]["mean@k"] == pytest.approx([1.0, 0.75, 0.625])
    assert s["overall"]["n_problems"] == 3
    assert s["overall"]["pass@k"] == pytest.approx([(0.25 + 1 + 0.5) / 3, (0.5 + 1 + 5 / 6) / 3, 1.0])
    assert s["macro"]["pass@k"] == pytest.approx([(0.625 + 0.5) / 2, (0.75 + 5 / 6) / 2, 1.0])
    lo, hi = zip(*s["overall"]["pass@k_ci"])
    assert all(lo_ <= m <= hi_ for lo_, m, hi_ in zip(lo, s["overall"]["pass@k"], hi))


def test_summarize_without_answers_omits_maj_and_default_ks_follow_smallest_n():
    s = summarize({"d": [ProblemResult([True] * 8), ProblemResult([False] * 5)]}, n_resamples=50)
    assert s["d"]["ks"] == [1, 2, 4, 5] and "maj@k" not in s["d"] and "maj@k" not in s["macro"]
    with pytest.raises(ValueError, match="reserved"):
        summarize({"overall": [ProblemResult([True])]})
