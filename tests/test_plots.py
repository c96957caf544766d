"""Plots write real, non-blank PNGs; bad inputs fail with the file/line or key at fault."""

import json
import struct

import matplotlib.image as mpimg
import numpy as np
import pytest

from cluster.eval.pass_at_k import ProblemResult, summarize
from cluster.plots import plot_accuracy_vs_k, plot_accuracy_vs_tokens, plot_training_curves, read_metrics_jsonl

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height, len(data)


def assert_real_png(path, min_bytes=8000):
    w, h, n = png_size(path)
    assert w >= 300 and h >= 200 and n > min_bytes, (w, h, n)
    pixels = mpimg.imread(path)
    assert pixels.std() > 0.01, "image is blank"
    return pixels


def summaries(seed):
    rng = np.random.default_rng(seed)
    res = [ProblemResult(list(rng.random(16) < p), [str(x) for x in rng.integers(0, 3, 16)]) for p in rng.random(20)]
    return summarize({"d": res}, n_resamples=50)["d"]


def test_accuracy_vs_k_overlays_checkpoints(tmp_path):
    one = assert_real_png(plot_accuracy_vs_k({"step 0": summaries(0)}, tmp_path / "one.png"))
    two = assert_real_png(plot_accuracy_vs_k({"step 0": summaries(0), "step 100": summaries(1)}, tmp_path / "k.png"))
    assert one.shape != two.shape or not np.array_equal(one, two), "second checkpoint must change the plot"


def test_accuracy_vs_k_checks_lengths(tmp_path):
    with pytest.raises(ValueError, match="pass@k has 1 values for 2 ks"):
        plot_accuracy_vs_k({"c": {"ks": [1, 2], "pass@k": [0.5]}}, tmp_path / "x.png")


def test_accuracy_vs_tokens(tmp_path):
    curves = {"base": ([256, 512, 1024, 2048], [0.1, 0.2, 0.3, 0.32]),
              "rl": ([256, 512, 1024, 2048], [0.15, 0.3, 0.45, 0.5])}
    assert_real_png(plot_accuracy_vs_tokens(curves, tmp_path / "sub" / "tok.png"))
    with pytest.raises(ValueError, match="2 budgets vs 1 accuracies"):
        plot_accuracy_vs_tokens({"x": ([1, 2], [0.1])}, tmp_path / "bad.png")


def test_training_curves_from_metrics_jsonl(tmp_path):
    log = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "reward": s / 50, "accuracy": min(1, s / 40), "response_len": 200 - s, "phase": "train",
             **({"eval/gsm8k": s / 60} if s % 10 == 0 else {})} for s in range(50)]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert_real_png(plot_training_curves(log, tmp_path / "train.png"))
    assert_real_png(plot_training_curves(log, tmp_path / "two.png", keys=["reward", "eval/gsm8k"]))
    with pytest.raises(ValueError, match=r"no numeric values for \['phase'\]"):
        plot_training_curves(log, tmp_path / "bad.png", keys=["phase"])


def test_metrics_jsonl_errors_name_the_line(tmp_path):
    log = tmp_path / "m.jsonl"
    log.write_text('{"step": 0, "reward": 1}\n{"step": 1, "reward": \n')
    with pytest.raises(ValueError, match=r"m.jsonl:2: malformed JSON"):
        read_metrics_jsonl(log)
    log.write_text('{"reward": 1}\n')
    with pytest.raises(ValueError, match=r"m.jsonl:1: expected an object with a numeric 'step'"):
        read_metrics_jsonl(log)
    with pytest.raises(ValueError, match="cannot read metrics file"):
        read_metrics_jsonl(tmp_path / "absent.jsonl")


def test_smoothed_is_the_trailing_mean_of_a_plain_loop():
    from cluster.plots import smoothed

    vals = [float(v) for v in np.random.default_rng(0).random(37)]
    for window in (1, 3, 10):
        expected = [sum(vals[max(0, i - window + 1):i + 1]) / len(vals[max(0, i - window + 1):i + 1])
                    for i in range(len(vals))]
        assert smoothed(vals, window) == pytest.approx(expected)


def write_run(run, rows, evals=None):
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if evals is not None:
        (run / "report.json").write_text(json.dumps({"evals": evals}))
    return run


def test_headline_drops_constant_panels_and_shows_a_binary_reward_once(tmp_path):
    from cluster.run_report import headline

    rng = np.random.default_rng(1)
    rows = [{"step": s, "reward/mean": r, "accuracy": r, "response_length/mean": 50 + s,
             "learner/clip_frac": 0.0, "time/step": 1.5} for s, r in enumerate(rng.random(30), 1)]
    keys, titles = headline(rows, {})
    assert keys == ["reward/mean", "response_length/mean"]  # accuracy duplicates reward; clip_frac, time constant
    assert titles == {"reward/mean": "reward/mean (= accuracy)"}
    for r in rows:  # a graded reward: accuracy is a curve of its own
        r["accuracy"] = float(r["reward/mean"] > 0.5)
    keys, titles = headline(rows, {})
    assert keys == ["reward/mean", "accuracy", "response_length/mean"] and titles == {}


def test_run_plot_puts_held_out_evaluations_on_the_accuracy_panel(tmp_path):
    from cluster.run_report import eval_points, plot_run

    rng = np.random.default_rng(2)
    rows = [{"step": s, "reward/mean": float(r), "accuracy": float(r), "response_length/mean": 60 - s / 2,
             **({"eval/accuracy": 0.3 + s / 100} if s % 10 == 0 and s < 40 else {})}
            for s, r in enumerate(rng.random(40), 1)]
    evals = {"before": {"accuracy": 0.25, "step": 0}, "step10": {"accuracy": 0.4, "step": 10},
             "after": {"accuracy": 0.7, "step": 40}}
    run = write_run(tmp_path / "run", rows, evals)
    assert eval_points(run, rows) == [(0, 0.25, "held-out eval"), (10, 0.4, "held-out eval"),
                                      (20, 0.5, "held-out eval"), (30, 0.6, "held-out eval"),
                                      (40, 0.7, "held-out eval")]
    with_evals = assert_real_png(plot_run(run)[0])
    (run / "report.json").unlink()
    for r in rows:
        r.pop("eval/accuracy", None)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    without = assert_real_png(plot_run(run)[0])
    assert with_evals.shape != without.shape or not np.array_equal(with_evals, without), "evaluations not drawn"
