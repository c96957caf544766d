"""Evaluation metrics over n sampled responses per problem: pass@k, pass^k, maj@k, mean@k, bootstrap CIs.

pass@k: the unbiased estimator of Chen et al. 2021 (https://arxiv.org/abs/2107.03374, eq. 1 and its
numerically stable product form), 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k / i).
pass^k: all k correct, C(c, k) / C(n, k) (tau-bench's reliability metric, Yao et al. 2024).
maj@k: the exact expected accuracy of a majority vote over k of the n samples drawn without replacement
(every k-subset weighted equally; ties broken uniformly at random), answers grouped by an equivalence function
(the controller passes the verifier's, e.g. `rewards.math.is_equivalent`), so '0.5' and '\\frac12' vote
together. mean@k: mean correctness of the first k samples (its expectation is c / n for every k).
All functions are pure; per-problem inputs are plain lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

Equiv = Callable[[str, str], bool]


def _check_k(n: int, k: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"k={k}: expected 1 <= k <= n={n} (number of samples per problem)")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is correct."""
    _check_k(n, k)
    if not 0 <= c <= n:
        raise ValueError(f"c={c}: expected 0 <= c <= n={n} correct samples")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_at_k(correct: Sequence[bool], k: int) -> float:
    """Mean correctness of the first k samples."""
    _check_k(len(correct), k)
    return float(np.mean(np.asarray(correct[:k], dtype=float)))


def vote_classes(answers: Sequence[str | None], correct: Sequence[bool],
                 equiv: Equiv = str.__eq__) -> tuple[list[int], list[bool]]:
    """Group answers into vote classes: (class sizes, class correctness), None (no answer) left out (abstains).

    An answer joins the first earlier class whose representative (its first member) is equivalent; identical
    strings join without calling `equiv` (it may be slow, e.g. sympy). A class is as correct as its first member
    (its members are equivalent answers).
    """
    if len(answers) != len(correct):
        raise ValueError(f"answers ({len(answers)}) and correct ({len(correct)}) must have one entry per sample")
    reps: list[int] = []  # sample index of each class's first member
    sizes: list[int] = []
    by_text: dict[str, int] = {}  # answer string -> class
    for i, ans in enumerate(answers):
        if ans is None:
            continue
        cls = by_text.get(ans)
        if cls is None:
            cls = next((j for j, r in enumerate(reps) if equiv(ans, answers[r])), None)  # type: ignore[arg-type]
            if cls is None:
                reps.append(i)
                sizes.append(0)
                cls = len(reps) - 1
            by_text[ans] = cls
        sizes[cls] += 1
    return sizes, [bool(correct[r]) for r in reps]


def _binomial_row(m: int, n: int) -> np.ndarray:
    """C(m, s) for s = 0..n as floats (0 past m). Exact up to float64 rounding; C(256, 128) ~ 6e75 fits."""
    row = np.zeros(n + 1)
    row[0] = 1.0
    for s in range(1, min(m, n) + 1):
        row[s] = row[s - 1] * (m - s + 1) / s
    return row


def expected_maj_at_k(sizes: Sequence[int], class_correct: Sequence[bool], n: int, ks: Sequence[int]) -> list[float]:
    """Exact expected majority-vote accuracy over all k-subsets of the n samples, for each k in ks.

    sizes: votes per answer class (the n - sum(sizes) other samples abstain); a subset with no votes scores 0.
    Tie rule: a tie between classes is broken uniformly at random, so a tied correct class earns 1/(number tied).
    For a correct class j with t of its m_j samples in the subset, the other classes must hold at most t each;
    a generating function in (z: samples drawn, w: classes tied at t) counts those subsets:
      prod_{i != j, m_i >= t} (sum_{x<t} C(m_i, x) z^x + C(m_i, t) z^t w) * (1 + z)^(samples of smaller classes),
    and P(j wins) = sum_t C(m_j, t) sum_r [z^(k-t) w^r] / (1 + r) / C(n, k).
    """
    for k in ks:
        _check_k(n, k)
    if sum(sizes) > n:
        raise ValueError(f"class sizes sum to {sum(sizes)} > n={n} samples")
    wins = np.zeros(n + 1)  # wins[k]: weighted number of k-subsets that the correct answer wins
    for j in (j for j, ok in enumerate(class_correct) if ok):
        others = [m for i, m in enumerate(sizes) if i != j]
        m_j = sizes[j]
        choose_j = _binomial_row(m_j, n)
        for t in range(1, m_j + 1):
            big = [m for m in others if m >= t]  # classes that could tie or beat j's t votes
            poly = np.zeros((n + 1, len(big) + 1))  # poly[s, r]: subsets of s samples with r classes tied at t
            poly[:, 0] = _binomial_row(n - m_j - sum(big), n)  # abstainers and smaller classes: any number
            for m in big:
                c = _binomial_row(m, t)
                new = np.zeros_like(poly)
                for x in range(t):
                    new[x:] += c[x] * poly[: n + 1 - x]
                new[t:, 1:] += c[t] * poly[: n + 1 - t, :-1]
                poly = new
            weighted = poly @ (1.0 / np.arange(1, len(big) + 2))  # (n+1,): sum_r poly[s, r] / (1 + r)
            wins[t:] += choose_j[t] * weighted[: n + 1 - t]
    return [float(wins[k] / _binomial_row(n, k)[k]) for k in ks]


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int, equiv: Equiv = str.__eq__) -> float:
    """Expected majority-vote accuracy of k samples drawn without replacement from the n given (exact)."""
    sizes, ok = vote_classes(answers, correct, equiv)
    return expected_maj_at_k(sizes, ok, len(answers), [k])[0]


def pass_all_at_k(n: int, c: int, k: int) -> float:
    """pass^k: probability that all k samples drawn without replacement from n (c correct) are correct,
    C(c, k) / C(n, k) = prod_{i=0}^{k-1} (c - i) / (n - i) (the reliability counterpart of pass@k)."""
    _check_k(n, k)
    if not 0 <= c <= n:
        raise ValueError(f"c={c}: expected 0 <= c <= n={n} correct samples")
    return float(np.prod((c - np.arange(k)) / (n - np.arange(k)))) if c >= k else 0.0


@dataclass(frozen=True)
class ConfidenceInterval:
    mean: float
    low: float
    high: float


def bootstrap_ci(values: Sequence[float], n_resamples: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> ConfidenceInterval:
    """Percentile bootstrap CI of the mean over problems (resampled with replacement, seeded)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha}: expected 0 < alpha < 1 (0.05 gives a 95% interval)")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)  # (n_resamples,)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return ConfidenceInterval(float(x.mean()), float(low), float(high))


@dataclass
class ProblemResult:
    """The n samples of one problem: correctness, extracted answers (None: none found), response lengths."""

    correct: list[bool]
    answers: list[str | None] | None = None
    num_tokens: list[int] | None = None


def default_ks(n: int) -> list[int]:
    """Powers of two up to n, plus n itself."""
    ks = [2 ** i for i in range(n.bit_length()) if 2 ** i <= n]
    return ks if ks[-1] == n else ks + [n]


CURVES = ("pass@k", "pass^k", "mean@k", "maj@k")  # the per-k metrics of problem_curves, in report order


def problem_curves(res: ProblemResult, ks: Sequence[int], equiv: Equiv = str.__eq__) -> dict[str, list[float]]:
    """pass@k, pass^k, mean@k and (when answers are given) maj@k of one problem for each k."""
    n, c = len(res.correct), int(sum(map(bool, res.correct)))
    curves = {"pass@k": [pass_at_k(n, c, k) for k in ks], "pass^k": [pass_all_at_k(n, c, k) for k in ks],
              "mean@k": [mean_at_k(res.correct, k) for k in ks]}
    if res.answers is not None:
        sizes, ok = vote_classes(res.answers, res.correct, equiv)
        curves["maj@k"] = expected_maj_at_k(sizes, ok, n, ks)
    return curves


def accuracy_at_token_budget(res: ProblemResult, budgets: Sequence[int]) -> list[float]:
    """Per budget B: fraction of samples correct and finished within B tokens (longer ones count as wrong)."""
    if res.num_tokens is None or len(res.num_tokens) != len(res.correct):
        raise ValueError("accuracy_at_token_budget needs num_tokens with one entry per sample")
    ok = np.asarray(res.correct, dtype=bool)
    toks = np.asarray(res.num_tokens)
    return [float(np.mean(ok & (toks <= b))) for b in budgets]


def summarize(results: Mapping[str, Sequence[ProblemResult]], ks: Sequence[int] | None = None,
              equiv: Equiv = str.__eq__, n_resamples: int = 1000, alpha: float = 0.05,
              seed: int = 0) -> dict[str, dict]:
    """Per-dataset and overall metrics: {name: {"n_problems", "ks", "pass@k": [..], "pass@k_ci": [(lo, hi)], ...}}.

    'overall' pools every problem (micro average); 'macro' averages the dataset means. CIs bootstrap
    over problems. ks defaults to powers of two up to the smallest n over all problems.
    """
    if not results or any(len(v) == 0 for v in results.values()):
        raise ValueError("summarize needs at least one problem per dataset")
    if {"overall", "macro"} & set(results):
        raise ValueError(f"dataset names {sorted(results)}: 'overall' and 'macro' are reserved for the aggregates")
    n_min = min(len(r.correct) for rs in results.values() for r in rs)
    ks = list(ks) if ks is not None else default_ks(n_min)
    _check_k(n_min, max(ks))
    per_problem = {name: [problem_curves(r, ks, equiv) for r in rs] for name, rs in results.items()}

    def block(curves: list[dict[str, list[float]]]) -> dict:
        out: dict = {"n_problems": len(curves), "ks": ks}
        for metric in curves[0]:
            if not all(metric in c for c in curves):
                continue  # maj@k only where every problem has answers
            vals = np.array([c[metric] for c in curves])  # (problems, len(ks))
            cis = [bootstrap_ci(vals[:, j], n_resamples, alpha, seed) for j in range(len(ks))]
            out[metric] = [ci.mean for ci in cis]
            out[f"{metric}_ci"] = [(ci.low, ci.high) for ci in cis]
        return out

    summary = {name: block(curves) for name, curves in per_problem.items()}
    overall = block([c for curves in per_problem.values() for c in curves])
    summary["macro"] = {key: np.mean([summary[n][key] for n in results], axis=0).tolist()
                        for key in CURVES if key in overall and all(key in summary[n] for n in results)}
    summary["overall"] = overall
    return summary
