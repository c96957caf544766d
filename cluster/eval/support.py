"""Support vs sharpening: pass@k and maj@k for k = 1..n of the prior and of the RL policy, in the run report.

RL from verifiable rewards re-weights what the prior can already produce (Yue et al. 2025, "Does reinforcement
learning really incentivize reasoning capacity in LLMs beyond the base model?", https://arxiv.org/abs/2504.13837):
pass@1 rises, while pass@k at large k, the share of problems the model can solve at all, does not grow past the
prior's. With `eval.support.n` samples per held-out problem before and after training, the report gives
- the *support*: the share of problems with at least one correct sample among n, before and after RL;
- the k at which the curves meet: the smallest k where the prior's pass@k reaches the policy's (none if never);
- pass@k and maj@k (exact, cluster/eval/pass_at_k.py) for k = 1, 2, 4, ..., n, plotted in plots/support.png.
"""
from __future__ import annotations

import time

from cluster.eval.heldout import evaluate_policy
from cluster.eval.pass_at_k import default_ks, pass_at_k, summarize


def support_eval(pool, encoder, problems: list, support_cfg, sampling, seed: int, timeout_s: float,
                 workers: int) -> dict:
    """n samples of each of the first `support_cfg.problems` problems from the policy the pool serves."""
    t0 = time.perf_counter()
    sampling = sampling.model_copy(update={"n": support_cfg.n, "temperature": support_cfg.temperature,
                                           "seed": seed})  # seeded: the RL steps' own seeded streams are untouched
    results, _ = evaluate_policy(pool, encoder, problems[:support_cfg.problems], sampling, timeout_s, workers)
    from rewards.math import is_equivalent

    block = summarize({"heldout": results}, default_ks(support_cfg.n), equiv=is_equivalent, n_resamples=200)
    correct = [sum(r.correct) for r in results]
    return {"n": support_cfg.n, "problems": len(results), "correct_per_problem": correct,
            "support": sum(c > 0 for c in correct) / max(len(correct), 1),
            "curves": block["overall"], "seconds": time.perf_counter() - t0}


def pass_curve(correct_per_problem: list[int], n: int) -> list[float]:
    """Mean pass@k over problems for every k = 1..n."""
    return [sum(pass_at_k(n, c, k) for c in correct_per_problem) / len(correct_per_problem) for k in range(1, n + 1)]


def compare(before: dict, after: dict) -> dict:
    """Support before/after RL and the smallest k where the prior's pass@k reaches the policy's (None: never)."""
    n = before["n"]
    prior, policy = pass_curve(before["correct_per_problem"], n), pass_curve(after["correct_per_problem"], n)
    meet = next((k for k, (a, b) in enumerate(zip(prior, policy), start=1) if a >= b - 1e-9), None)
    return {"support_before": before["support"], "support_after": after["support"], "curves_meet_at_k": meet,
            "pass@1_before": prior[0], "pass@1_after": policy[0], f"pass@{n}_before": prior[-1],
            f"pass@{n}_after": policy[-1]}


def plot_support(before: dict, after: dict, path) -> object:
    from cluster.plots import plot_accuracy_vs_k

    return plot_accuracy_vs_k({"prior": before["curves"], "after RL": after["curves"]}, path,
                              title=f"support vs sharpening: {before['problems']} held-out problems, "
                                    f"n={before['n']} samples each")
