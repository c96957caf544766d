"""PNG plots for evaluation and training (matplotlib, Agg backend: no display needed).

- `plot_accuracy_vs_k`: pass@k (solid) and maj@k (dashed) against k on a log2 axis, one colour per
  checkpoint, from `cluster.eval.pass_at_k.summarize` blocks.
- `plot_accuracy_vs_tokens`: accuracy against token budget, one line per checkpoint.
- `plot_training_curves`: one panel per metric of a metrics.jsonl (one JSON object per step), a smoothed line
  over long noisy curves, optional extra points (held-out evaluations) on a panel.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)

_STYLES = {"pass@k": "-", "maj@k": "--", "mean@k": ":", "pass^k": "-."}


def _save(fig, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_accuracy_vs_k(summaries: Mapping[str, Mapping], path: str | Path, metrics: Sequence[str] = ("pass@k", "maj@k"),
                       title: str = "accuracy vs k") -> Path:
    """summaries: checkpoint label -> a summarize() block ({"ks": [...], "pass@k": [...], ...}).

    Metrics missing from a block (maj@k without extracted answers) are left out; CIs are shaded when present.
    """
    if not summaries:
        raise ValueError("plot_accuracy_vs_k needs at least one checkpoint")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for ci, (label, block) in enumerate(summaries.items()):
        color = f"C{ci % 10}"
        for metric in metrics:
            if metric not in block:
                continue
            ks, vals = block["ks"], block[metric]
            if len(ks) != len(vals):
                raise ValueError(f"{label}: {metric} has {len(vals)} values for {len(ks)} ks")
            ax.plot(ks, vals, _STYLES.get(metric, "-."), marker="o", ms=3, color=color, label=f"{label} {metric}")
            if f"{metric}_ci" in block:
                lo, hi = zip(*block[f"{metric}_ci"])
                ax.fill_between(ks, lo, hi, color=color, alpha=0.12, lw=0)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="k (samples per problem)", ylabel="accuracy", title=title, ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_accuracy_vs_tokens(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path,
                            title: str = "accuracy vs token budget") -> Path:
    """curves: checkpoint label -> (token budgets, accuracies)."""
    if not curves:
        raise ValueError("plot_accuracy_vs_tokens needs at least one curve")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, (budgets, acc) in curves.items():
        if len(budgets) != len(acc) or not budgets:
            raise ValueError(f"{label}: {len(budgets)} budgets vs {len(acc)} accuracies (need equal, non-zero)")
        ax.plot(budgets, acc, marker="o", ms=3, label=label)
    ax.set(xlabel="token budget", ylabel="accuracy", title=title, ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def read_metrics_jsonl(path: str | Path, step_key: str = "step") -> list[dict]:
    """Records of a metrics.jsonl in file order; each must be a JSON object with a numeric `step_key`."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ValueError(f"cannot read metrics file {p}: {e}") from e
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}:{n}: malformed JSON ({e.msg})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get(step_key), (int, float)):
            raise ValueError(f"{p}:{n}: expected an object with a numeric {step_key!r}, got {line[:80]!r}")
        rows.append(rec)
    if not rows:
        raise ValueError(f"{p}: no metrics records")
    return rows


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def smoothed(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average: point i is the mean of values[max(0, i-window+1) : i+1]."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


SMOOTH_MIN_POINTS = 10  # a curve with fewer points is drawn as is


def plot_training_curves(metrics_path: str | Path, path: str | Path, keys: Sequence[str] | None = None,
                         step_key: str = "step", ncols: int = 3, titles: Mapping[str, str] | None = None,
                         points: Mapping[str, Sequence[tuple[float, float, str]]] | None = None) -> Path:
    """One panel per metric over steps; keys=None plots every numeric key. Steps lacking a key are gaps.

    Curves of SMOOTH_MIN_POINTS or more points get a smoothed line (moving average over a tenth of the run) over
    the faint raw one. `points` adds labelled markers to a panel, e.g. held-out evaluations on 'accuracy':
    {"accuracy": [(0, 0.31, "eval"), (40, 0.52, "eval")]}; `titles` renames panels.
    """
    rows = read_metrics_jsonl(metrics_path, step_key)
    present = [k for k in dict.fromkeys(k for r in rows for k in r) if k != step_key]
    numeric = [k for k in present if any(_numeric(r.get(k)) for r in rows)]
    if keys is None:
        keys = numeric
    missing = [k for k in keys if k not in numeric]
    if missing:
        raise ValueError(f"{metrics_path}: no numeric values for {missing}; numeric keys are {numeric}")
    if not keys:
        raise ValueError(f"{metrics_path}: no numeric metrics besides {step_key!r}")
    nrows = math.ceil(len(keys) / ncols)
    cols = min(ncols, len(keys))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        pts = [(r[step_key], r[key]) for r in rows if _numeric(r.get(key))]
        xs, ys = zip(*pts)
        if len(pts) >= SMOOTH_MIN_POINTS:
            ax.plot(xs, ys, lw=0.8, color="C0", alpha=0.35, label="per step")
            ax.plot(xs, smoothed(ys, max(3, len(ys) // 10)), lw=1.6, color="C0", label="smoothed")
        else:  # sparse series (evals, short runs) get dots
            ax.plot(xs, ys, lw=1.2, marker="o", ms=3, color="C0", label="per step")
        for label in dict.fromkeys(lab for *_, lab in (points or {}).get(key, ())):
            ex, ey = zip(*[(x, y) for x, y, lab in points[key] if lab == label])
            ax.plot(ex, ey, "s--", color="C3", ms=5, lw=1.0, label=label)
        if (points or {}).get(key) or len(pts) >= SMOOTH_MIN_POINTS:
            ax.legend(fontsize=7)
        ax.set(title=(titles or {}).get(key, key), xlabel=step_key)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.tight_layout()
    return _save(fig, path)
