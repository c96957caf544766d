"""Turn scored samples into the numbers, plots and table of `rlvr eval` (no Ray, no engines: pure bookkeeping).

- `metrics_block`: pass@k / pass^k / maj@k / mean@k per dataset, 'overall' (all problems pooled) and 'macro'
  (mean of dataset means), with bootstrap CIs over problems (cluster.eval.pass_at_k.summarize). maj@k groups
  answers by the math verifier's equivalence, so '0.5' and '\\frac{1}{2}' vote together; datasets without
  extracted answers (code, countdown) report no maj@k.
- `budget_block`: accuracy (mean correctness over samples, i.e. pass@1) per token budget, per dataset and overall.
- `write_plots`: accuracy vs k and accuracy vs token budget, models overlaid.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from cluster.eval.pass_at_k import ProblemResult, bootstrap_ci, summarize


def math_equiv(a: str, b: str) -> bool:
    """The math verifier's equivalence as a vote-grouping function; an answer it cannot parse groups alone."""
    from rewards.math import is_equivalent

    try:
        return bool(is_equivalent(a, b))
    except Exception:  # the verifier may reject odd inputs; for voting that just means "different answer"
        return False


def for_voting(problems: list, results: list[ProblemResult]) -> list[ProblemResult]:
    """Keep extracted answers only for math problems: other kinds have none, and an all-None maj@k would read 0."""
    return [r if p.kind == "math" else ProblemResult(r.correct, None, r.num_tokens) for p, r in zip(problems, results)]


def metrics_block(results: dict[str, list[ProblemResult]], ks: list[int], bootstrap: int) -> dict:
    """{dataset | 'overall' | 'macro': summarize block + mean_tokens} for one model's main (largest-budget) run."""
    summary = summarize(results, ks, equiv=math_equiv, n_resamples=bootstrap)
    for name, rs in results.items():
        summary[name]["mean_tokens"] = float(np.mean([t for r in rs for t in r.num_tokens]))
    summary["overall"]["mean_tokens"] = float(np.mean([t for rs in results.values() for r in rs
                                                       for t in r.num_tokens]))
    return summary


def _accuracy_point(results: list[ProblemResult], bootstrap: int) -> dict:
    per_problem = [float(np.mean(r.correct)) for r in results]
    ci = bootstrap_ci(per_problem, bootstrap)
    return {"accuracy": ci.mean, "accuracy_ci": (ci.low, ci.high),
            "mean_tokens": float(np.mean([t for r in results for t in r.num_tokens]))}


def budget_block(by_budget: dict[int, dict[str, list[ProblemResult]]], bootstrap: int) -> dict:
    """by_budget[B][dataset] -> {dataset | 'overall': {"budgets", "accuracy", "accuracy_ci", "mean_tokens"}}."""
    budgets = sorted(by_budget)
    names = list(by_budget[budgets[0]])
    out: dict = {}
    for name in names + ["overall"]:
        points = [_accuracy_point(by_budget[b][name] if name != "overall"
                                  else [r for n in names for r in by_budget[b][n]], bootstrap) for b in budgets]
        out[name] = {"budgets": budgets, **{k: [p[k] for p in points] for k in points[0]}}
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "dataset"


def write_plots(run_dir: Path, report: dict) -> list[Path]:
    """accuracy_vs_k[_<dataset>].png and accuracy_vs_tokens[_<dataset>].png, one line set per model."""
    from cluster.plots import plot_accuracy_vs_k, plot_accuracy_vs_tokens

    models = report["models"]
    datasets = list(next(iter(models.values()))["datasets"])
    scopes = ["overall"] + (datasets if len(datasets) > 1 else [])
    paths = []
    for scope in scopes:
        suffix = "" if scope == "overall" else f"_{_slug(scope)}"
        blocks = {m: r["metrics"][scope] for m, r in models.items()}
        paths.append(plot_accuracy_vs_k(blocks, run_dir / f"accuracy_vs_k{suffix}.png",
                                        title=f"accuracy vs k ({scope}, n={report['n']})"))
        curves = {}
        for m, r in models.items():
            for mode, block in r["token_budget"].items():
                curves[m if mode == "max_tokens" else f"{m} ({mode})"] = (block[scope]["budgets"],
                                                                          block[scope]["accuracy"])
        paths.append(plot_accuracy_vs_tokens(curves, run_dir / f"accuracy_vs_tokens{suffix}.png",
                                             title=f"accuracy (pass@1) vs token budget ({scope})"))
    return paths


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    ks = report["ks"]
    kmax = ks[-1]
    t = Table(title=f"rlvr eval: n={report['n']} samples per problem, max_tokens={report['budgets'][-1]}")
    for col in ("model", "dataset", "problems", f"pass@{ks[0]}", f"pass@{kmax}", f"maj@{kmax}", "mean tokens"):
        t.add_column(col, justify="left" if col in ("model", "dataset") else "right")
    for m, r in report["models"].items():
        for scope in list(r["datasets"]) + ["overall"]:
            b = r["metrics"][scope]
            maj = f"{b['maj@k'][-1]:.3f}" if "maj@k" in b else "-"
            t.add_row(m, scope, str(b["n_problems"]), f"{b['pass@k'][0]:.3f}", f"{b['pass@k'][-1]:.3f}", maj,
                      f"{b['mean_tokens']:.1f}")
    Console().print(t)
