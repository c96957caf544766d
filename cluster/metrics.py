"""Evaluation metrics over n sampled responses per problem: pass@k, maj@k, mean@k, bootstrap CIs.

pass@k: the unbiased estimator of Chen et al. 2021 (https://arxiv.org/abs/2107.03374, eq. 1 and its
numerically stable product form), 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k / i).
maj@k: majority vote over the first k extracted answers, answers grouped by an equivalence function
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


def majority_curve(answers: Sequence[str | None], equiv: Equiv = str.__eq__) -> list[int | None]:
    """For every prefix length k = 1..n, the index of the sample whose answer wins the vote (None: no votes).

    Answers join the first earlier class whose representative (its first member) is equivalent; identical
    strings join without calling `equiv` (it may be slow, e.g. sympy). None (no answer extracted) abstains.
    Ties go to the class whose first member came earliest, so the result depends only on sample order.
    """
    reps: list[int] = []  # sample index of each class's first member
    counts: list[int] = []
    by_text: dict[str, int] = {}  # answer string -> class
    winners: list[int | None] = []
    best: int | None = None
    for i, ans in enumerate(answers):
        if ans is not None:
            cls = by_text.get(ans)
            if cls is None:
                cls = next((j for j, r in enumerate(reps) if equiv(ans, answers[r])), None)  # type: ignore[arg-type]
                if cls is None:
                    reps.append(i)
                    counts.append(0)
                    cls = len(reps) - 1
                by_text[ans] = cls
            counts[cls] += 1
            # classes are numbered by first appearance, so '<' (not '<=') keeps the earliest on ties
            if best is None or counts[cls] > counts[best] or (counts[cls] == counts[best] and cls < best):
                best = cls
        winners.append(None if best is None else reps[best])
    return winners


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int, equiv: Equiv = str.__eq__) -> float:
    """1.0 if the majority answer among the first k samples is correct, else 0.0 (also when none answered).

    The winning class is judged by its first member's correctness flag (all members are equivalent).
    """
    if len(answers) != len(correct):
        raise ValueError(f"answers ({len(answers)}) and correct ({len(correct)}) must have one entry per sample")
    _check_k(len(answers), k)
    winner = majority_curve(answers[:k], equiv)[-1]
    return 0.0 if winner is None else float(bool(correct[winner]))


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


def problem_curves(res: ProblemResult, ks: Sequence[int], equiv: Equiv = str.__eq__) -> dict[str, list[float]]:
    """pass@k, mean@k and (when answers are given) maj@k of one problem for each k."""
    n, c = len(res.correct), int(sum(map(bool, res.correct)))
    curves = {"pass": [pass_at_k(n, c, k) for k in ks], "mean": [mean_at_k(res.correct, k) for k in ks]}
    if res.answers is not None:
        if len(res.answers) != n:
            raise ValueError(f"answers ({len(res.answers)}) and correct ({n}) must have one entry per sample")
        winners = majority_curve(res.answers, equiv)
        curves["maj"] = [0.0 if winners[k - 1] is None else float(bool(res.correct[winners[k - 1]])) for k in ks]
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
            out[f"{metric}@k"] = [ci.mean for ci in cis]
            out[f"{metric}@k_ci"] = [(ci.low, ci.high) for ci in cis]
        return out

    summary = {name: block(curves) for name, curves in per_problem.items()}
    overall = block([c for curves in per_problem.values() for c in curves])
    summary["macro"] = {key: np.mean([summary[n][key] for n in results], axis=0).tolist()
                        for key in overall if key.endswith("@k") and all(key in summary[n] for n in results)}
    summary["overall"] = overall
    return summary
