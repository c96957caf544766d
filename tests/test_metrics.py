"""Metrics against hand-computed values and brute-force enumeration: pass@k and pass^k (combinatorics), exact
expected maj@k (ties, abstentions, equivalence), mean@k, bootstrap CIs, token budgets, aggregation."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from cluster.eval.pass_at_k import (ProblemResult, accuracy_at_token_budget, bootstrap_ci, default_ks, maj_at_k,
                             mean_at_k, pass_all_at_k, pass_at_k, summarize, vote_classes)


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


def test_maj_at_k_of_two_equal_classes_is_one_half_for_every_k():
    # '1' (right) and '2' (wrong) have two votes each: by symmetry every k-subset size gives 1/2 (ties split)
    answers, correct = ["1", "2", "2", "1"], [True, False, False, True]
    assert [maj_at_k(answers, correct, k) for k in (1, 2, 3, 4)] == pytest.approx([0.5] * 4, abs=1e-12)


def test_maj_at_k_missing_answers_abstain():
    # the one answer wins whenever it is drawn: P = k / 4; a subset of abstentions scores 0
    answers, correct = [None, None, "4", None], [False, False, True, False]
    assert [maj_at_k(answers, correct, k) for k in (1, 2, 3, 4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert vote_classes([None, None], [False, False]) == ([], [])


def _brute_force_maj(answers, correct, k):
    """Independent reference: enumerate every k-subset, vote by answer string, split ties evenly."""
    total = 0.0
    subsets = list(itertools.combinations(range(len(answers)), k))
    for idx in subsets:
        votes: dict[str, int] = {}
        for i in idx:
            if answers[i] is not None:
                votes[answers[i]] = votes.get(answers[i], 0) + 1
        if votes:
            top = max(votes.values())
            tied = [a for a, v in votes.items() if v == top]
            right = {answers[i] for i in range(len(answers)) if correct[i] and answers[i] is not None}
            total += sum(a in right for a in tied) / len(tied)
    return total / len(subsets)


@pytest.mark.parametrize("seed", range(40))
def test_maj_at_k_equals_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10))
    pool = [None, "a", "b", "c", "d"][: int(rng.integers(2, 6))]
    answers = [pool[i] for i in rng.integers(0, len(pool), n)]
    good = pool[1] if rng.random() < 0.8 else None  # sometimes no answer is right
    correct = [a is not None and a == good for a in answers]
    for k in range(1, n + 1):
        assert maj_at_k(answers, correct, k) == pytest.approx(_brute_force_maj(answers, correct, k), abs=1e-12)


def test_maj_at_k_is_exact_at_large_n():
    # n = 256 with a 40-vote right answer against 30 + 30 wrong votes and many abstentions: finite, in [0, 1],
    # rising with k, and 1.0 at k = n (40 beats 30)
    answers = ["r"] * 40 + ["w1"] * 30 + ["w2"] * 30 + [None] * 156
    correct = [a == "r" for a in answers]
    curve = [maj_at_k(answers, correct, k) for k in (1, 2, 8, 64, 128, 256)]
    assert curve[0] == pytest.approx(40 / 256) and curve[-1] == pytest.approx(1.0)
    assert all(0 <= x <= 1 for x in curve) and curve == sorted(curve)


def test_pass_all_at_k_matches_the_binomial_ratio():
    for n, c, k in [(5, 2, 1), (5, 2, 2), (5, 2, 3), (10, 10, 10), (16, 12, 8), (256, 200, 64)]:
        exact = Fraction(math.comb(c, k), math.comb(n, k))
        assert pass_all_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9, abs=1e-15)
    assert pass_all_at_k(4, 3, 1) == pytest.approx(0.75) and pass_all_at_k(4, 3, 4) == 0.0


def _fraction_equiv(a: str, b: str) -> bool:
    return Fraction(a) == Fraction(b)


def test_maj_at_k_groups_by_the_equivalence_not_by_string():
    answers, correct = ["3", "0.5", "1/2", "2/4", "3"], [False, True, True, True, False]
    assert maj_at_k(answers, correct, 5, equiv=_fraction_equiv) == 1.0  # the 0.5 class has 3 votes against 2
    assert maj_at_k(answers, correct, 5, equiv=str.__eq__) == 0.0  # as strings '3' wins 2 to 1


def test_vote_classes_call_equiv_only_for_new_strings():
    calls = []

    def equiv(a, b):
        calls.append((a, b))
        return a == b

    assert vote_classes(["a", "a", "b", "a", "b", "c"], [True] * 6, equiv) == ([3, 2, 1], [True, True, True])
    assert calls == [("b", "a"), ("c", "a"), ("c", "b")]


def test_maj_at_k_with_the_math_verifier_equivalence():
    from rewards.math import is_equivalent  # the function the controller passes

    answers = ["\\frac{1}{2}", "0.5", "2", "2", None]
    correct = [True, True, False, False, False]
    # 4 of 5: dropping a '2' wins (2 ways), dropping None ties 2-2 (1/2), dropping a half loses: (2 + 1/2) / 5
    assert maj_at_k(answers, correct, 4, equiv=is_equivalent) == pytest.approx(0.5)
    # as strings: dropping a '2' leaves a three-way tie, two of them right (2/3 each), else '2' wins: (4/3) / 5
    assert maj_at_k(answers, correct, 4) == pytest.approx(4 / 15)
    assert maj_at_k(["2", "\\frac{1}{2}", "0.5", "2", "0.5"], [False, True, True, False, True], 5,
                    equiv=is_equivalent) == 1.0
    assert maj_at_k(["2", "\\frac{1}{2}", "0.5", "2", "0.5"], [False, True, True, False, True], 5) == 0.5


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
    # maj (exact over subsets): a1 k=1 1/4, k=2 the 3 pairs holding '1' tie (1/2 each) of 6 -> 1/4, k=4 '2' wins;
    # a2 always right; b: k=1 2/4, k=2 {z,z} wins + 4 ties at 1/2 of 6 pairs -> 1/2, k=4 z wins
    assert s["a"]["maj@k"] == pytest.approx([0.625, 0.625, 0.5]) and s["b"]["maj@k"] == pytest.approx([0.5, 0.5, 1.0])
    assert s["b"]["pass^k"] == pytest.approx([0.5, 1 / 6, 0.0])
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
