"""Chain-of-thought throughput: rlvr (sync and async schedules, default settings) vs TRL `GRPOTrainer` on a
random 20.6M-parameter Llama at 8 prompts x 8 samples x 256 generated tokens (issue #20's shape), side by side.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_cot.py               # ~15 min on 2 cores
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_cot.py --smoke       # tiny model and sizes, ~1 min
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_cot.py --one-thread sync   # + sync on 1+1 threads (old)

The model is built here (no download): Llama, hidden 512, 6 layers, 8 heads of 64, intermediate 1552, the
embedded recipe's character tokenizer (28 tokens), random weights, fp32. Every sample is exactly --max-tokens
long on both sides (rlvr `sampling.min_tokens = max_tokens`, `ignore_eos`; TRL `min_new_tokens`), so the work
per step is fixed: the rewards are all 0 (a random model writes no answer) and do not matter here; the learner
still runs the full forward and backward. Hyperparameters otherwise as in bench_trl.py (same module).

Prints, per side: median s/step, samples/s, generated tokens/s, per-phase seconds (generate, train), each
phase's achieved GFLOP/s and its MFU against the fp32 matmul peak measured here on all cores
(learner/flops.py: forward 2*N*L + 4*layers*d_attn*L(L+1)/2 per sequence, training 3x forward), start-up,
and the rlvr / TRL samples/s ratios. Every run notes the load average: the machine may be shared.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_trl  # noqa: E402
import rl_common  # noqa: E402

COT_SHAPE = dict(hidden_size=512, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=8,
                 intermediate_size=1552)
SMOKE_SHAPE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                   intermediate_size=128)


def build_model(out_dir: Path, tokenizer_dir: str, shape: dict, seed: int = 0) -> tuple[str, int]:
    """A random Llama of `shape` with the tokenizer files of `tokenizer_dir`; returns (path, parameter count)."""
    import json

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab = json.loads((Path(tokenizer_dir) / "config.json").read_text())["vocab_size"]
    config = LlamaConfig(vocab_size=vocab, max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=1,
                         eos_token_id=2, pad_token_id=0, **shape)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(out_dir))
    for f in Path(tokenizer_dir).iterdir():
        if f.is_file() and f.name not in ("config.json", "model.safetensors", "generation_config.json"):
            shutil.copy(f, out_dir / f.name)
    return str(out_dir), sum(p.numel() for p in model.parameters())


def run_rlvr(args, model: str, schedule: str, threads: tuple[int | None, int | None] = (None, None)) -> dict:
    """One rlvr run; `threads` = (learner.num_threads, rollout.num_threads), None = the default."""
    cfg = rl_common.embedded_config(args.prompts, args.n, args.max_tokens, args.micro_batch_tokens, args.steps,
                                    args.lr, 0.0, schedule, tempfile.mkdtemp(prefix="bench_cot_"),
                                    seed=args.seed, learner_threads=threads[0])
    update = {"sampling": cfg.sampling.model_copy(update={"min_tokens": args.max_tokens, "ignore_eos": True}),
              "train": cfg.train.model_copy(update={"zero_signal_warn_steps": 0, "zero_signal_stop_steps": 0}),
              "rollout": cfg.rollout.model_copy(update={"num_threads": threads[1]})}
    cfg = cfg.model_copy(update=update)
    rows, total = rl_common.run_in_fresh_ray(cfg, model, float(os.cpu_count()))
    steps = [r["time/step"] for r in rows]
    return {"step_s": steps, "generate_s": [r["time/generate"] for r in rows],
            "train_s": [r["time/train"] for r in rows], "startup_s": total - sum(steps),
            "response_length": statistics.mean(r["response_length/mean"] for r in rows)}


def run_trl(args, model: str, problems: list, threads: int) -> dict:
    out = bench_trl.run_trl(args, model, problems, threads, generation_kwargs={"min_new_tokens": args.max_tokens})
    gen = out["generate_s"][:len(out["step_s"])]
    return {**out, "generate_s": gen, "train_s": [s - g for s, g in zip(out["step_s"], gen)],
            "response_length": float(args.max_tokens)}


def report(results: dict, args, shape, prompt_len: float, peak: float) -> None:
    """One column per run; FLOPs per step from the shape (learner/flops.py), MFU against `peak`."""
    samples = args.prompts * args.n
    seqs = [round(prompt_len + args.max_tokens)] * samples
    gen_flops, train_flops = shape.forward_flops(seqs), shape.train_flops(seqs)
    names = list(results)
    med = {n: {k: statistics.median(results[n][k][args.warmup:]) for k in ("step_s", "generate_s", "train_s")}
           for n in names}
    rows = [("median s/step", lambda n: f"{med[n]['step_s']:.2f}"),
            ("samples/s", lambda n: f"{samples / med[n]['step_s']:.2f}"),
            ("generated tokens/s", lambda n: f"{samples * results[n]['response_length'] / med[n]['step_s']:.0f}"),
            ("generate s", lambda n: f"{med[n]['generate_s']:.2f}"),
            ("train s", lambda n: f"{med[n]['train_s']:.2f}"),
            ("generate GFLOP/s", lambda n: f"{gen_flops / med[n]['generate_s'] / 1e9:.1f}"),
            ("train GFLOP/s", lambda n: f"{train_flops / med[n]['train_s'] / 1e9:.1f}"),
            ("generate MFU", lambda n: f"{gen_flops / med[n]['generate_s'] / peak:.0%}"),
            ("train MFU", lambda n: f"{train_flops / med[n]['train_s'] / peak:.0%}"),
            ("step MFU", lambda n: f"{(gen_flops + train_flops) / med[n]['step_s'] / peak:.0%}"),
            ("start-up + teardown s", lambda n: f"{results[n]['startup_s']:.1f}")]
    print(f"\nper step: {gen_flops / 1e12:.3f} TFLOP generation, {train_flops / 1e12:.3f} TFLOP training; "
          f"fp32 matmul peak on {os.cpu_count()} threads {peak / 1e9:.1f} GFLOP/s, so the floor is "
          f"{(gen_flops + train_flops) / peak:.1f} s/step ({samples * peak / (gen_flops + train_flops):.2f} samples/s)")
    print(f"{'':24s}" + "".join(f"{n:>19s}" for n in names))
    for label, cell in rows:
        print(f"{label:24s}" + "".join(f"{cell(n):>19s}" for n in names))
    for r in (n for n in names if n.startswith("rlvr")):
        for t in (n for n in names if n.startswith("TRL")):
            print(f"ratio {r} / {t} samples/s: {med[t]['step_s'] / med[r]['step_s']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256, help="every sample is generated to this length")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1, help="first steps left out of the medians")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--micro-batch-tokens", type=int, default=8192,
                    help="rlvr learner.micro_batch_tokens (the recipe's)")
    ap.add_argument("--learner-threads", type=int, default=None, help="rlvr learner.num_threads (default: unset)")
    ap.add_argument("--engine-threads", type=int, default=None, help="rlvr rollout.num_threads (default: unset)")
    ap.add_argument("--one-thread", default="", help="schedules to run a second time with one learner and one "
                                                    "engine thread (the settings before the cores followed the "
                                                    "schedule), comma-separated, e.g. 'sync'")
    ap.add_argument("--schedules", default="sync,async", help="rlvr train.schedule values, comma-separated")
    ap.add_argument("--trl-threads", type=int, default=os.cpu_count(), help="TRL torch threads (default: all "
                                                                          "cores, TRL's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-trl", action="store_true", help="rlvr's side only")
    ap.add_argument("--smoke", action="store_true", help="tiny model and sizes: checks the script runs")
    args = ap.parse_args()
    args.kl_coef = 0.0  # bench_trl.run_trl reads it
    shape_kw = COT_SHAPE
    if args.smoke:
        args.prompts, args.n, args.max_tokens, args.steps, args.warmup = 2, 2, 16, 2, 1
        args.schedules, shape_kw = "async", SMOKE_SHAPE
    if args.steps <= args.warmup:
        raise SystemExit(f"--steps={args.steps} must exceed --warmup={args.warmup}: no step left to measure")

    from learner.flops import load_shape, peak_matmul_flops

    recipe = rl_common.embedded_config(args.prompts, args.n, args.max_tokens, args.micro_batch_tokens, args.steps,
                                       args.lr, 0.0, "sync", tempfile.gettempdir())
    prior = rl_common.prior_path(recipe, smoke=args.smoke)  # only its tokenizer is used
    model, params = build_model(Path(tempfile.mkdtemp(prefix="bench_cot_model_")), prior, shape_kw, args.seed)
    shape = load_shape(model)
    from cluster.data.loaders import load_specs
    from transformers import AutoTokenizer

    problems = load_specs(recipe.data.train)
    tok = AutoTokenizer.from_pretrained(model)
    prompt_len = statistics.mean(len(tok(p.prompt)["input_ids"]) for p in problems[:200])
    peak = peak_matmul_flops("fp32", os.cpu_count())
    bf16 = peak_matmul_flops("bf16", os.cpu_count())
    print(f"model: random Llama {shape_kw}, {params / 1e6:.2f}M params; {args.prompts} prompts x {args.n} samples "
          f"x {args.max_tokens} tokens (prompts ~{prompt_len:.0f} tokens), {args.steps} steps (warm-up "
          f"{args.warmup}); peak fp32 {peak / 1e9:.1f} GFLOP/s, bf16 {bf16 / 1e9:.1f} GFLOP/s on {os.cpu_count()} "
          f"threads; {rl_common.load_note()}", flush=True)
    results = {}
    runs = [(f"rlvr {s}", s, (args.learner_threads, args.engine_threads)) for s in args.schedules.split(",")]
    runs += [(f"rlvr {s} 1+1thr", s, (1, 1)) for s in args.one_thread.split(",") if s]
    for name, schedule, threads in runs:
        results[name] = run_rlvr(args, model, schedule, threads)
        print(f"{name} done; {rl_common.load_note()}", flush=True)
    import importlib.util

    if args.no_trl or importlib.util.find_spec("trl") is None:
        print("TRL side skipped (--no-trl, or trl not installed: pip install trl==1.16.0)")
    else:
        results[f"TRL {args.trl_threads} thr"] = run_trl(args, model, problems, args.trl_threads)
        print(f"TRL done; {rl_common.load_note()}", flush=True)
    report(results, args, shape, prompt_len, peak)


if __name__ == "__main__":
    main()
