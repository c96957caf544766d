"""Support vs sharpening arithmetic: support, the pass@k curve over all k, and where the prior meets the policy."""

import pytest

from cluster.eval.support import compare, pass_curve


def _eval(correct, n):
    return {"n": n, "correct_per_problem": correct, "support": sum(c > 0 for c in correct) / len(correct)}


def test_pass_curve_runs_from_the_mean_accuracy_to_the_support():
    curve = pass_curve([0, 1, 4], 4)  # per problem c of n=4 correct
    assert curve[0] == pytest.approx((0 + 1 / 4 + 1) / 3) and curve[-1] == pytest.approx(2 / 3)
    assert curve == sorted(curve)


def test_sharpened_policy_meets_the_prior_at_the_first_k_where_the_prior_catches_up():
    n = 8
    prior, policy = _eval([1, 1, 1, 0], n), _eval([8, 8, 0, 0], n)  # policy: 2 problems always, 2 never
    s = compare(prior, policy)
    assert s["support_before"] == 0.75 and s["support_after"] == 0.5
    assert s["pass@1_before"] == pytest.approx(3 / 32) and s["pass@1_after"] == pytest.approx(0.5)
    # prior pass@k = 0.75 * k/8 reaches 0.5 at k = 6 (0.5625); at k = 5 it is 0.46875
    assert s["curves_meet_at_k"] == 6


def test_curves_that_never_meet_say_so():
    s = compare(_eval([0, 1], 4), _eval([2, 4], 4))
    assert s["curves_meet_at_k"] is None and s["support_after"] == 1.0
