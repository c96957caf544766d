"""RL step throughput: the synchronous vs the one-step-off asynchronous schedule of the real training loop
(cluster.train.Trainer), same model (the embedded prior), data (embedded arithmetic), settings and seed.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_step.py             # default sizes, ~2 min
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_step.py --smoke     # tiny sizes, ~1 min
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_step.py --ray-cpus 4 --omp-threads 2

sync runs generate(t) -> reward -> train -> weight sync; async generates (and scores) batch t+1 with the
previous policy while the learner trains on batch t. Each schedule runs in a fresh Trainer (engine + learner
started anew) from the same prior; the first `--warmup` steps are dropped and medians are taken over the rest.
Prints the per-phase medians, the measured balance of the phases (rollout / train in the sync run), samples/s
and generated tokens/s of each schedule, the async/sync ratio and the ratio a perfect overlap would give
(sync step / (max(rollout, train) + sync + other)). Defaults balance generation and training on this 2-core
machine: prompts x n samples of at most max_tokens tokens, learner micro-batch tokens.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rl_common  # noqa: E402

PHASES = ("time/generate", "time/reward", "time/rollout", "time/train", "time/weight_sync", "time/step")


def summarize(rows: list[dict], warmup: int) -> dict:
    """Medians of the phases and throughputs over the steps after warm-up."""
    kept = rows[warmup:]
    if not kept:
        raise SystemExit(f"--steps must exceed --warmup={warmup}: no step left to measure")
    out = {k: rl_common.median(kept, k) for k in PHASES}
    samples = rl_common.median(kept, "rollout/samples")
    tokens = rl_common.median([{"t": r["rollout/samples"] * r["response_length/mean"]} for r in kept], "t")
    out.update({"samples_per_s": samples / out["time/step"], "tokens_per_s": tokens / out["time/step"],
                "response_length": rl_common.median(kept, "response_length/mean"),
                "reward": rl_common.median(kept, "reward/mean"), "steps": len(kept)})
    return out


def print_table(results: dict) -> None:
    names = list(results)
    print(f"\n{'median over steps':22s}" + "".join(f"{n:>10s}" for n in names))
    for key in PHASES:
        print(f"{key:22s}" + "".join(f"{results[n][key]:10.3f}" for n in names))
    for key, fmt in (("samples_per_s", "10.1f"), ("tokens_per_s", "10.0f"), ("response_length", "10.1f"),
                     ("reward", "10.3f"), ("steps", "10d")):
        print(f"{key:22s}" + "".join(format(results[n][key], fmt) for n in names))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=16, help="train.prompts_per_step")
    ap.add_argument("--n", type=int, default=8, help="sampling.n (group size)")
    ap.add_argument("--max-tokens", type=int, default=128, help="sampling.max_tokens")
    ap.add_argument("--micro-batch-tokens", type=int, default=8192, help="learner.micro_batch_tokens")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2, help="first steps left out of the medians")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--ray-cpus", type=float, default=2.0, help="CPUs the local Ray runtime advertises")
    ap.add_argument("--omp-threads", type=int, default=1,
                    help="OMP_NUM_THREADS of the workers (the learner sets its own: --learner-threads)")
    ap.add_argument("--learner-threads", type=int, default=1, help="learner.num_threads")
    ap.add_argument("--model", help="HF model directory to start from instead of the embedded prior")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs (~1 min)")
    args = ap.parse_args()
    if args.smoke:
        args.prompts, args.n, args.max_tokens, args.steps, args.warmup = 4, 4, 24, 3, 1

    out_dir = tempfile.mkdtemp(prefix="bench_step_")
    cfgs = {s: rl_common.embedded_config(args.prompts, args.n, args.max_tokens, args.micro_batch_tokens, args.steps,
                                         args.lr, 0.0, s, out_dir, ray_cpus=args.ray_cpus,
                                         learner_threads=args.learner_threads) for s in ("sync", "async")}
    model = args.model or rl_common.prior_path(cfgs["sync"], smoke=args.smoke)
    print(f"settings: prompts_per_step={args.prompts} n={args.n} max_tokens={args.max_tokens} "
          f"micro_batch_tokens={args.micro_batch_tokens} steps={args.steps} (warm-up {args.warmup}) "
          f"ray num_cpus={args.ray_cpus:g} worker OMP threads={args.omp_threads} learner threads="
          f"{args.learner_threads}; {rl_common.load_note()}")
    ray = rl_common.start_ray(args.ray_cpus, args.omp_threads)
    try:
        results = {}
        for schedule, cfg in cfgs.items():
            results[schedule] = summarize(rl_common.run_trainer(cfg, model, schedule), args.warmup)
            print(f"{schedule} done; {rl_common.load_note()}", flush=True)
    finally:
        ray.shutdown()
    print_table(results)
    s, a = results["sync"], results["async"]
    rollout, train = s["time/rollout"], s["time/train"]
    other = s["time/step"] - rollout - train - s["time/weight_sync"]
    ideal = s["time/step"] / (max(rollout, train) + s["time/weight_sync"] + other)
    print(f"\nbalance (sync run): rollout {rollout:.2f}s (generate {s['time/generate']:.2f}s + reward "
          f"{s['time/reward']:.2f}s) vs train {train:.2f}s -> rollout/train = {rollout / train:.2f}")
    print(f"phase inflation under overlap (async / sync medians): generate "
          f"{a['time/generate'] / s['time/generate']:.2f}x, train {a['time/train'] / s['time/train']:.2f}x")
    print(f"ratio async/sync: samples/s {a['samples_per_s'] / s['samples_per_s']:.2f}x, tokens/s "
          f"{a['tokens_per_s'] / s['tokens_per_s']:.2f}x (perfect overlap would give {ideal:.2f}x; target >= 1.6x)")


if __name__ == "__main__":
    main()
