"""End-of-run report: report.json, a short printed summary, and the training-curve plots."""
from __future__ import annotations

import json
import time
from pathlib import Path

CURVES = ("reward/mean", "accuracy", "response_length/mean", "response_length/clipped_frac", "learner/kl_old_ref",
          "learner/engine_kl_k3",
          "learner/entropy", "learner/clip_frac", "time/step")


def eval_points(run_dir: Path, rows: list[dict]) -> list[tuple[float, float, str]]:
    """Held-out accuracy as (step, accuracy, label): before RL at step 0, every eval_every steps, after RL."""
    pts = [(r["step"], r["eval/accuracy"], "held-out eval") for r in rows if "eval/accuracy" in r]
    report = run_dir / "report.json"
    evals = json.loads(report.read_text()).get("evals", {}) if report.is_file() else {}
    for tag in ("before", "after"):
        if (evals.get(tag) or {}).get("accuracy") is not None:
            pts.append((evals[tag]["step"], evals[tag]["accuracy"], "held-out eval"))
    return sorted(set(pts))


def headline(rows: list[dict], extra_points: dict) -> tuple[list[str], dict[str, str]]:
    """The headline panels (CURVES present, minus constant ones and duplicates) and their titles."""
    def values(k):
        return [r[k] for r in rows if isinstance(r.get(k), (int, float))]

    keys = [k for k in CURVES if values(k)]
    titles = {}
    if "accuracy" in keys and "reward/mean" in keys and values("accuracy") == values("reward/mean"):
        keys.remove("accuracy")  # a 0/1 reward: accuracy is the same curve, shown once
        titles["reward/mean"] = "reward/mean (= accuracy)"
    varying = [k for k in keys if len(set(values(k)) | {y for _, y, _ in extra_points.get(k, ())}) > 1]
    return varying or keys[:1], titles


def plot_run(run_dir: str | Path) -> list[Path]:
    """PNG plots of a run's metrics.jsonl: the headline curves (with held-out evaluations on the accuracy
    panel), and every numeric metric."""
    from cluster.plots import plot_training_curves, read_metrics_jsonl

    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        raise FileNotFoundError(f"{metrics} does not exist: give a run directory written by `rlvr train`")
    rows = read_metrics_jsonl(metrics)
    evals = eval_points(run_dir, rows)
    keys, titles = headline(rows, {"accuracy": evals})
    target = "accuracy" if "accuracy" in keys else "reward/mean"
    if target not in keys:  # only possible when both are constant: evaluations still get their panel
        keys.append(target)
    points = {target: evals} if evals else {}
    out = [plot_training_curves(metrics, run_dir / "plots" / "training.png", keys=keys, titles=titles,
                                points=points)]
    out.append(plot_training_curves(metrics, run_dir / "plots" / "all_metrics.png"))
    tool_keys = [k for k in ("accuracy", "tools/call_rate", "tools/model_tokens", "tools/calls_per_sample",
                             "tools/errors", "tools/timeouts", "tools/seconds_per_sample") if rows and k in rows[-1]]
    if "tools/call_rate" in tool_keys:  # multi-turn rollouts with tools
        out.append(plot_training_curves(metrics, run_dir / "plots" / "tools.png", keys=tool_keys))
    return out


def tool_use(run_dir: Path, tag: str) -> dict:
    """Share of held-out samples that called a tool and their mean model-written tokens, from eval_<tag>.jsonl
    (empty when the run used no tools)."""
    path = run_dir / f"eval_{tag}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    rows = [r for r in rows if "tool_calls" in r]
    if not rows:
        return {}
    return {f"tool_call_rate_{tag}": sum(r["tool_calls"] > 0 for r in rows) / len(rows),
            f"mean_model_tokens_{tag}": sum(r["model_tokens"] for r in rows) / len(rows)}


def write_report(run_dir: Path, cfg, evals: dict, seconds: dict, perf: dict | None = None) -> dict:
    """report.json (evaluations, phase_seconds: fixed costs and loop, plots timed too; perf: the matmul peaks
    that the perf/*_mfu metrics divide by), the plots, and the printed summary."""
    before, after = evals.get("before") or {}, evals.get("after") or {}
    report = {
        "accuracy_before": before.get("accuracy"),
        "accuracy_after": after.get("accuracy"),
        "mean_response_length_before": before.get("mean_response_length"),
        "mean_response_length_after": after.get("mean_response_length"),
        "eval_problems": after.get("problems", before.get("problems", 0)),
        "wall_seconds": seconds["wall"],
        "phase_seconds": seconds,
        "steps": cfg.train.steps,
        "perf": perf or {},
        "evals": evals,
        **tool_use(run_dir, "before"), **tool_use(run_dir, "after"),
    }
    plots = []
    if "support_before" in evals and "support_after" in evals:
        from cluster.eval.support import compare, plot_support

        report["support"] = compare(evals["support_before"], evals["support_after"])
        plots.append(plot_support(evals["support_before"], evals["support_after"], run_dir / "plots" / "support.png"))
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))  # plot_run reads the evaluations from it
    t0 = time.time()
    try:
        plots = plot_run(run_dir) + plots
    except (FileNotFoundError, ValueError) as e:  # a run with no steps has nothing to plot
        print(f"no plots: {e}")
    report["phase_seconds"] = {**seconds, "plots": time.time() - t0}
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    _print(report, run_dir, plots)
    return report


def _fmt(v, pct=False):
    if v is None:
        return "n/a"
    return f"{100 * v:.1f}%" if pct else f"{v:.1f}"


def _print(report: dict, run_dir: Path, plots: list[Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"rlvr report ({report['eval_problems']} held-out problems)")
    t.add_column("")
    t.add_column("before RL", justify="right")
    t.add_column("after RL", justify="right")
    t.add_row("accuracy", _fmt(report["accuracy_before"], True), _fmt(report["accuracy_after"], True))
    t.add_row("mean response length (tokens)", _fmt(report["mean_response_length_before"]),
              _fmt(report["mean_response_length_after"]))
    before_b = (report["evals"].get("before") or {}).get("by_difficulty", {})
    after_b = (report["evals"].get("after") or {}).get("by_difficulty", {})
    for bucket in sorted(set(before_b) | set(after_b)):
        b, a = before_b.get(bucket, {}), after_b.get(bucket, {})
        t.add_row(f"  {bucket}: accuracy / length",
                  f"{_fmt(b.get('accuracy'), True)} / {_fmt(b.get('mean_response_length'))}",
                  f"{_fmt(a.get('accuracy'), True)} / {_fmt(a.get('mean_response_length'))}")
    if "support" in report:
        s = report["support"]
        n = report["evals"]["support_before"]["n"]
        t.add_row(f"support: problems solved at least once in {n} samples", _fmt(s["support_before"], True),
                  _fmt(s["support_after"], True))
        t.add_row(f"pass@1 / pass@{n} (temperature sampling)",
                  f"{_fmt(s['pass@1_before'], True)} / {_fmt(s[f'pass@{n}_before'], True)}",
                  f"{_fmt(s['pass@1_after'], True)} / {_fmt(s[f'pass@{n}_after'], True)}")
    console = Console()
    console.print(t)
    if "support" in report:
        meet = report["support"]["curves_meet_at_k"]
        console.print("pass@k curves of prior and policy " + (f"meet at k={meet}" if meet else "do not meet up to k=n"))
    phases = ", ".join(f"{k} {v:.0f}s" for k, v in report["phase_seconds"].items())
    console.print(f"time: {phases}")
    console.print(f"report: {run_dir / 'report.json'}")
    for p in plots:
        console.print(f"plot: {p}")
