"""Token-budget sweep: one generation cut at every budget (`budget_sweep: prefix`, the default) against one
generation per budget (`separate`), on the embedded prior and its held-out arithmetic problems.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_budget_sweep.py            # 100 problems x 8 samples, ~2 min
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_budget_sweep.py --smoke   # tiny prior, 8 problems x 2

Both runs use the real `rlvr eval` (cluster.eval.harness.run_eval): the same model, data, seed and budgets, budget
forcing on (forcing string ' ####', the embedded answer marker). Prints plain and forced accuracy per budget for
each way, their largest difference, the seconds each run spent generating and scoring, and the cost ratio.
Plain accuracies agree up to sampling noise: with a fixed seed a B-token generation is, up to float noise,
the first B tokens of the longer one, so cutting reproduces it; forced accuracies agree the same way.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rl_common  # noqa: E402


def eval_config(model_path: str, sweep: str, problems: int, n: int, budgets: list[int], out_dir: str):
    from cluster.eval.config import validate_eval_config

    return validate_eval_config({
        "model": {"path": model_path, "name": sweep},
        "datasets": [{"name": "embedded", "split": "test", "limit": problems}],
        "rollout": {"device": "cpu", "num_engines": 1, "dtype": "float32", "max_model_len": max(budgets) + 48,
                    "kv_cache_gib": 1.0, "prompt": {"format": "base", "template": "{prompt}"}},
        "sampling": {"n": n, "temperature": 1.0, "max_tokens": max(budgets), "seed": 0},
        "token_budgets": budgets[:-1], "budget_sweep": sweep,
        "budget_forcing": {"enabled": True, "forcing": " ####", "answer_tokens": 8},
        "bootstrap": 10, "reward_workers": 1, "output": {"dir": out_dir, "name": sweep, "tensorboard": False},
        "ray": {"num_cpus": 2},
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--budgets", type=int, nargs="+", default=[4, 8, 16, 24, 32, 48, 64, 96])
    ap.add_argument("--smoke", action="store_true", help="tiny prior (seconds to pre-train), 8 problems x 2, 2 budgets")
    args = ap.parse_args()
    if args.smoke:
        args.problems, args.n, args.budgets = 8, 2, [4, 16]
    budgets = sorted(set(args.budgets))

    from cluster.eval.harness import run_eval

    cfg = rl_common.embedded_config(prompts=8, n=args.n, max_tokens=max(budgets), micro_batch_tokens=8192,
                                    steps=1, lr=1e-4, kl_coef=0.0, schedule="sync", out_dir="/tmp")
    model = rl_common.prior_path(cfg, smoke=args.smoke)
    print(f"model: embedded prior {model}; {rl_common.load_note()}")
    out = tempfile.mkdtemp(prefix="rlvr-bench-sweep-")
    results, seconds = {}, {}
    for sweep in ("prefix", "separate"):
        t0 = time.time()
        run_eval(eval_config(model, sweep, args.problems, args.n, budgets, out), progress=False)
        seconds[sweep] = time.time() - t0
        report = json.loads((Path(out) / sweep / "results.json").read_text())
        results[sweep] = report["models"][sweep]
    print(f"\n{args.problems} problems x {args.n} samples, budgets {budgets}")
    print(f"{'budget':>8s}" + "".join(f"{s + ' ' + m:>18s}" for m in ("plain", "forced") for s in results))
    diffs = []
    for i, b in enumerate(budgets):
        row = []
        for mode in ("max_tokens", "forced"):
            accs = [results[s]["token_budget"][mode]["overall"]["accuracy"][i] for s in results]
            diffs.append(abs(accs[0] - accs[1]))
            row += accs
        print(f"{b:8d}" + "".join(f"{a:18.3f}" for a in row))
    model_s = {s: results[s]["eval_seconds"] for s in results}
    print(f"\nlargest accuracy difference between the two ways: {max(diffs):.3f}")
    print("seconds of the whole run (Ray and engine start included): "
          + ", ".join(f"{s} {seconds[s]:.1f}" for s in seconds))
    print("seconds of generation + forcing + scoring: " + ", ".join(f"{s} {model_s[s]:.1f}" for s in model_s))
    print(f"cost ratio separate / prefix: {model_s['separate'] / model_s['prefix']:.2f}x ({len(budgets)} budgets; "
          f"generation alone would approach {len(budgets)}x; scoring and forced answers cost the same either way)")


if __name__ == "__main__":
    main()
