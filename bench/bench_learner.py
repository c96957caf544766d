"""Learner throughput: tokens/s of full RL learner steps (phase 1 log-probs + advantages + update) under Ray.

    .venv/bin/python bench/bench_learner.py                          # tiny random Qwen2, 1 rank, ZeRO-2
    .venv/bin/python bench/bench_learner.py --ranks 2 --zero 3 --dtype bf16 --hidden 256 --layers 4

Tokens counted per step are prompt + response tokens of the rollout batch; the first step is a warm-up.
Prints one line per step and a final JSON summary.
"""

import argparse
import json
import random
import statistics
import tempfile
import time


def make_batch(n_prompts: int, group: int, prompt_len: int, resp_len: int, vocab: int, seed: int):
    """A rollout record of random groups (variable response lengths exercise packing)."""
    import numpy as np

    from record.rollout import Group, RolloutBatch, Sample

    rng = random.Random(seed)
    groups = []
    for g in range(n_prompts):
        prompt = [1] + [rng.randrange(3, vocab) for _ in range(prompt_len - 1)]
        samples = []
        for _ in range(group):
            n = rng.randint(max(1, resp_len // 2), resp_len)
            s = Sample.model_written([rng.randrange(3, vocab) for _ in range(n)], [-6.0] * n, "stop", 0)
            s.reward = float(rng.random() < 0.5)
            samples.append(s)
        groups.append(Group(np.array(prompt, np.int32), samples, g, g))
    return RolloutBatch(groups)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="HF model dir; default: a random tiny Qwen2 (--hidden/--layers)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--zero", type=int, default=2, choices=[0, 1, 2, 3])
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--advantage", default="grpo", choices=["grpo", "dr_grpo", "rloo", "reinforce_pp"])
    p.add_argument("--kl-coef", type=float, default=0.0)
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--resp-len", type=int, default=128)
    p.add_argument("--micro-batch-tokens", type=int, default=2048)
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    args = p.parse_args()
    if args.smoke:
        args.hidden, args.layers, args.prompts, args.group, args.prompt_len, args.resp_len, args.steps = \
            64, 1, 2, 2, 8, 16, 1

    import ray

    from learner.config import AlgoConfig, LearnerConfig
    from learner.group import LearnerGroup
    import rl_common  # noqa: F401  (puts tests/ on sys.path)
    from tiny_models import make_tiny_qwen2

    tmp = tempfile.mkdtemp(prefix="bench_learner_")
    model = args.model or make_tiny_qwen2(f"{tmp}/model", hidden=args.hidden, layers=args.layers)
    ray.init(num_cpus=max(2, args.ranks), include_dashboard=False, _temp_dir=f"{tmp}/ray",
             runtime_env={"env_vars": {"DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}})
    try:
        cfg = LearnerConfig(zero_stage=args.zero, num_ranks=args.ranks, dtype=args.dtype, lr=1e-5,
                            micro_batch_tokens=args.micro_batch_tokens, grad_checkpointing=args.grad_checkpointing)
        t0 = time.perf_counter()
        group = LearnerGroup(cfg, AlgoConfig(advantage=args.advantage, kl_coef=args.kl_coef), model)
        print(f"group ready in {time.perf_counter() - t0:.1f}s")
        rates = []
        for step in range(args.steps + 1):
            batch = make_batch(args.prompts, args.group, args.prompt_len, args.resp_len, 500, seed=step)
            m = group.train_step(batch)
            tokens = sum(len(g.prompt_ids) + len(s.response_ids) for g in batch.groups for s in g)
            print(f"step {step}{' (warm-up)' if step == 0 else ''}: {tokens} tokens, "
                  f"{m['tokens_per_s']:.0f} tokens/s (logprobs {m['time_logprobs_s']:.2f}s, "
                  f"update {m['time_update_s']:.2f}s), loss {m['loss']:.4f}")
            if step > 0:
                rates.append(m["tokens_per_s"])
        n_params = sum(t.numel() for t in group.state_dict().values())
        group.close()
    finally:
        ray.shutdown()
    print(json.dumps({"bench": "learner", "params": n_params, "ranks": args.ranks, "zero": args.zero,
                      "dtype": args.dtype, "tokens_per_step": tokens,
                      "tokens_per_s_mean": statistics.mean(rates), "tokens_per_s_min": min(rates)}))


if __name__ == "__main__":
    main()
