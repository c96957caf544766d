"""Peer comparison: rlvr's training loop vs TRL's `GRPOTrainer` on the same tiny model, task, reward and
hyperparameters. Prints wall time per step of each, training reward after the same number of steps and after
the same wall time, and the step-throughput ratios. By default rlvr runs both schedules (sync, and one-step-off
async) and TRL runs twice: on one core, and on all cores (torch's default when OMP_NUM_THREADS is unset, i.e.
what a TRL user gets); the all-cores run is the fair comparison, since rlvr's processes use every core.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_trl.py             # default sizes, ~3 min
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_trl.py --smoke     # tiny sizes
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_trl.py --no-trl    # rlvr's side only (TRL not installed)

Needs `pip install trl==1.16.0` (the `bench` extra; not needed for rlvr itself).

Same on both sides: the embedded prior (pre-trained tiny Llama, cached), its arithmetic training prompts, the
reward rewards.math.score(completion, gold) on the final answer, GRPO advantages (group mean/std), token-mean
loss over the batch (TRL loss_type='dapo'), clip 0.2, one optimizer step per batch of prompts x n samples,
AdamW (0.9, 0.999, eps 1e-8, no weight decay), constant lr, grad clip 1.0, fp32, temperature 1.0, no top-p/
top-k, the same max tokens and KL coefficient (k3 in the loss on both sides). Differences that are what each
user gets: rlvr generates with a vLLM engine actor and trains with a DeepSpeed ZeRO-2 learner actor (one OpenMP
thread each, the 2 cores shared), scores in a 2-process verifier pool and pushes weights after each step;
TRL (no vLLM: its supported vLLM range excludes 0.32, and on CPU a TRL user runs HF `generate`) generates and
trains in one process with `--trl-threads` torch threads.
Prompts are drawn in a different order on each side (both uniformly from the same 20,000 problems).
Time per step is the wall time between consecutive steps, generation included; the first `--warmup` steps are
left out of its median; start-up (engines, model load) is reported apart.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rl_common  # noqa: E402

SMOOTH = 3  # reward "at a point" is the mean training reward of the last SMOOTH steps up to that point


def reward_at(curve: list[tuple[float, float]], t: float) -> float:
    """Mean reward of the last SMOOTH steps finished by time t; curve holds (seconds since start, reward)."""
    done = [r for s, r in curve if s <= t + 1e-9] or [curve[0][1]]
    return statistics.mean(done[-SMOOTH:])


def run_rlvr(args, model: str, schedule: str) -> dict:
    cfg = rl_common.embedded_config(args.prompts, args.n, args.max_tokens, args.micro_batch_tokens, args.steps,
                                    args.lr, args.kl_coef, schedule, tempfile.mkdtemp(prefix="bench_trl_"),
                                    seed=args.seed)
    rows, total = rl_common.run_in_fresh_ray(cfg, model)
    steps = [r["time/step"] for r in rows]
    clock = [sum(steps[:i + 1]) for i in range(len(steps))]
    return {"step_s": steps, "curve": list(zip(clock, [r["reward/mean"] for r in rows])),
            "startup_s": total - clock[-1]}  # engine + learner start, final checkpoint, shutdown


def run_trl(args, model_path: str, problems: list, threads: int, generation_kwargs: dict | None = None) -> dict:
    """TRL GRPOTrainer for args.steps steps. Returns per-step wall times, reward curve, start-up, and per-step
    generation seconds (`generate_s`: its generate-and-score call, timed around the trainer's own method)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rewards.math import score

    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    data = Dataset.from_list([{"prompt": p.prompt, "answer": p.gold} for p in problems])

    def math_reward(prompts, completions, answer, **_):
        return [score(c, a) for c, a in zip(completions, answer)]

    class Clock(TrainerCallback):  # wall time at the end of every optimizer step, and the step's reward
        def __init__(self):
            self.ends, self.rewards, self.start = [], [], None

        def on_train_begin(self, *_, **__):
            self.start = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.ends.append(time.perf_counter() - self.start)

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "reward" in logs:
                self.rewards.append(logs["reward"])

    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench_trl_hf_"), max_steps=args.steps, seed=args.seed,
        per_device_train_batch_size=args.prompts * args.n, gradient_accumulation_steps=1, steps_per_generation=1,
        num_generations=args.n, num_iterations=1, max_completion_length=args.max_tokens, temperature=1.0,
        top_p=1.0, top_k=0, learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=1.0,
        beta=args.kl_coef, epsilon=0.2, loss_type="dapo", scale_rewards="group", bf16=False,
        gradient_checkpointing=False, use_cpu=True, use_vllm=False, logging_steps=1, save_strategy="no",
        report_to="none", disable_tqdm=True, dataloader_pin_memory=False, log_completions=False,
        generation_kwargs=generation_kwargs)
    clock = Clock()
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    trainer = GRPOTrainer(model=model, reward_funcs=[math_reward], args=config, train_dataset=data,
                          processing_class=AutoTokenizer.from_pretrained(model_path), callbacks=[clock])
    generate_s, generate = [], trainer._generate_and_score_completions

    def timed_generate(*a, **kw):
        t0 = time.perf_counter()
        try:
            return generate(*a, **kw)
        finally:
            generate_s.append(time.perf_counter() - t0)

    trainer._generate_and_score_completions = timed_generate
    trainer.train()
    total = time.perf_counter() - t_start
    steps = [b - a for a, b in zip([0.0] + clock.ends, clock.ends)]
    if len(clock.rewards) != len(steps):
        raise RuntimeError(f"TRL logged {len(clock.rewards)} rewards for {len(steps)} steps; expected one per step")
    return {"step_s": steps, "curve": list(zip(clock.ends, clock.rewards)), "startup_s": total - clock.ends[-1],
            "generate_s": generate_s}


def report(results: dict, warmup: int) -> None:
    names = list(results)
    med = {n: statistics.median(results[n]["step_s"][warmup:]) for n in names}
    wall = {n: results[n]["curve"][-1][0] for n in names}
    t_common = min(wall.values())
    print(f"\n{'':34s}" + "".join(f"{n:>12s}" for n in names))
    curve = {n: results[n]["curve"] for n in names}
    rows = [("median s/step (after warm-up)", {n: f"{med[n]:.2f}" for n in names}),
            ("steps/min", {n: f"{60 / med[n]:.1f}" for n in names}),
            ("training wall s (all steps)", {n: f"{wall[n]:.1f}" for n in names}),
            ("start-up + teardown s", {n: f"{results[n]['startup_s']:.1f}" for n in names}),
            (f"reward, first {SMOOTH} steps", {n: f"{statistics.mean(r for _, r in curve[n][:SMOOTH]):.3f}"
                                               for n in names}),
            (f"reward after {len(curve[names[0]])} steps", {n: f"{reward_at(curve[n], wall[n]):.3f}" for n in names}),
            (f"reward at equal wall {t_common:.0f}s", {n: f"{reward_at(curve[n], t_common):.3f}" for n in names})]
    for label, cells in rows:
        print(f"{label:34s}" + "".join(f"{cells[n]:>12s}" for n in names))
    for r in (n for n in names if n.startswith("rlvr")):
        for t in (n for n in names if n.startswith("TRL")):
            print(f"ratio {r} / {t} step throughput: {med[t] / med[r]:.2f}x")
    print(f"(target >= 2x at equal or better reward; rewards are means of the last {SMOOTH} training batches)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=16, help="prompts per step (configs/local.yaml)")
    ap.add_argument("--n", type=int, default=8, help="group size")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--kl-coef", type=float, default=0.0, help="rlvr algo.kl_coef = TRL beta")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--micro-batch-tokens", type=int, default=8192, help="rlvr learner.micro_batch_tokens")
    ap.add_argument("--schedules", default="sync,async", help="rlvr train.schedule values to run, comma-separated")
    ap.add_argument("--trl-threads", default=f"1,{os.cpu_count()}",
                    help="torch thread counts to run TRL with, comma-separated (default: one core, and all cores "
                         "as TRL uses by default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-trl", action="store_true", help="run rlvr's side only (when trl is not installed)")
    ap.add_argument("--model", help="HF model directory to start from instead of the embedded prior")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.prompts, args.n, args.max_tokens, args.steps, args.warmup = 2, 4, 24, 3, 1
        args.schedules, args.trl_threads = "async", "1"

    schedules = args.schedules.split(",")
    threads = [int(t) for t in args.trl_threads.split(",")]
    cfg = rl_common.embedded_config(args.prompts, args.n, args.max_tokens, args.micro_batch_tokens, args.steps,
                                    args.lr, args.kl_coef, schedules[0], tempfile.gettempdir())
    model = args.model or rl_common.prior_path(cfg, smoke=args.smoke)
    print(f"settings: prompts={args.prompts} n={args.n} max_tokens={args.max_tokens} lr={args.lr:g} "
          f"kl_coef={args.kl_coef:g} steps={args.steps} (warm-up {args.warmup}) rlvr schedules={schedules} "
          f"TRL torch threads={threads}; {rl_common.load_note()}", flush=True)
    results = {}
    for schedule in schedules:
        results[f"rlvr {schedule}"] = run_rlvr(args, model, schedule)
        print(f"rlvr {schedule} done; {rl_common.load_note()}", flush=True)
    if args.no_trl:
        print("TRL side skipped (--no-trl): only rlvr's numbers below")
    else:
        from cluster.data.loaders import load_specs

        problems = load_specs(cfg.data.train)  # rlvr's training problems
        for t in threads:
            results[f"TRL {t} thr"] = run_trl(args, model, problems, t)
            print(f"TRL ({t} threads) done; {rl_common.load_note()}", flush=True)
    report(results, args.warmup)


if __name__ == "__main__":
    main()
