"""GPU learner check (<= 5 min on one H100/H200): rlvr's learner step in bf16 on a random Qwen2-0.5B-shaped model
against a plain transformers training loop (forward + backward + AdamW), and packed vs unpacked log-probs.

    .venv/bin/python bench/bench_gpu_learner.py              # CUDA; prints tokens/s, MFU, log-prob gaps
    .venv/bin/python bench/bench_gpu_learner.py --smoke      # tiny model on CPU: checks the script runs

Prints, for the same B sequences of `--prompt + --response` tokens:
  - plain loop: `model(ids).logits` -> next-token cross-entropy -> backward -> fused AdamW, tokens/s;
  - rlvr: `learner.worker.LearnerWorker.train_step` (DeepSpeed ZeRO-2 world size 1, packed micro-batches of
    --micro-batch-tokens), unshared layout (`share_prompts: false`: packing by position ids, no mask) and the
    shared-prompt layout (a (B, 1, T, T) mask per row), tokens/s and peak memory of each;
  - model FLOPs per token (learner/flops.py) and MFU against the bf16 matmul peak measured here;
  - max |log p| difference of the learner's packed forward against a plain per-sample HF forward (bf16; the
    tolerance checked is 0.05 nats, bf16 rounding of 20+ layers), and, when torch.nn.attention.varlen exists
    (torch >= 2.13, CUDA), the same check for a varlen-attention forward over one packed row (the GPU path of
    docs/scaling.md: no T x T mask), with its time.
Numbers to compare with: docs/scaling.md ("GPU path").
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

QWEN2_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, max_position_embeddings=4096, tie_word_embeddings=True)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            vocab_size=256, max_position_embeddings=512, tie_word_embeddings=True)


def build(out: Path, shape: dict, dtype) -> str:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    Qwen2ForCausalLM(Qwen2Config(**shape, torch_dtype=dtype)).to(dtype).save_pretrained(str(out))
    return str(out)


def samples(n: int, prompt: int, response: int, vocab: int, groups: int) -> list[dict]:
    """n samples in `groups` groups sharing a prompt, with the fields an on-policy GRPO step reads."""
    import random

    rng = random.Random(0)
    prompts = [[rng.randrange(3, vocab) for _ in range(prompt)] for _ in range(groups)]
    out = []
    for i in range(n):
        resp = [rng.randrange(3, vocab) for _ in range(response)]
        out.append({"ids": prompts[i % groups] + resp, "loss_mask": [0] * prompt + [1] * response,
                    "adv": [rng.uniform(-1, 1)] * response, "rollout_logp": [-5.0] * response,
                    "weight": 1.0 / (n * response)})
    return out


def timed(fn, steps: int, device: str) -> float:
    """Seconds per call, median of `steps` after one warm-up call."""
    import statistics

    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fn()
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def plain_loop(model_path: str, batch: list[dict], device: str, dtype, steps: int) -> tuple[float, float]:
    """(s/step, peak GiB) of a plain transformers bf16 step: full logits, cross-entropy, backward, AdamW."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=device == "cuda")
    ids = torch.tensor([s["ids"] for s in batch], device=device)

    def step():
        logits = model(input_ids=ids).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    _reset_peak(device)
    s = timed(step, steps, device)
    del model, opt
    return s, _peak_gib(device)


def _reset_peak(device):
    import torch

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device) -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")


def reference_logp(model_path: str, batch: list[dict], device: str, dtype) -> list:
    """Per-sample response log-probs from a plain HF forward of each sample alone (no packing, no mask)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
    out = []
    with torch.no_grad():
        for s in batch:
            ids = torch.tensor([s["ids"]], device=device)
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            lp = logp.gather(-1, ids[0, 1:, None]).squeeze(-1)
            out.append(lp[[j - 1 for j in range(1, len(s["ids"])) if s["loss_mask"][j]]].cpu())
    del model
    return out


def max_gap(a: list, b: list) -> float:
    import torch

    return max((torch.as_tensor(x) - torch.as_tensor(y)).abs().max().item() for x, y in zip(a, b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--groups", type=int, default=4, help="prompts shared by samples/groups samples each")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--response", type=int, default=896)
    ap.add_argument("--micro-batch-tokens", type=int, default=16384)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant (after one warm-up)")
    ap.add_argument("--smoke", action="store_true", help="tiny model on CPU, fp32: checks the script runs")
    args = ap.parse_args()
    import torch

    from learner.config import AlgoConfig, LearnerConfig
    from learner.flops import ModelShape, peak_matmul_flops
    from learner.worker import LearnerWorker

    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    if args.smoke:
        args.samples, args.groups, args.prompt, args.response, args.steps = 4, 2, 8, 24, 1
    shape_kw, dtype = (TINY, torch.float32) if args.smoke else (QWEN2_05B, torch.bfloat16)
    ldtype = "fp32" if dtype == torch.float32 else "bf16"
    if device == "cpu" and not args.smoke:
        print("no CUDA device: run with --smoke on CPU, or on a GPU machine")
    model = build(Path(tempfile.mkdtemp(prefix="gpu_learner_")), shape_kw, dtype)
    shape = ModelShape.from_hf_config(shape_kw)
    batch = samples(args.samples, args.prompt, args.response, shape_kw["vocab_size"], args.groups)
    L = args.prompt + args.response
    tokens = args.samples * L
    flops = shape.train_flops([L] * args.samples)
    peak = peak_matmul_flops(ldtype, device=device, max_size=8192 if device == "cuda" else 512)
    print(f"device {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; {shape.matmul_params / 1e6:.1f}M "
          f"matmul params; {args.samples} samples x {L} tokens = {tokens} tokens/step, {flops / tokens / 1e9:.2f} "
          f"GFLOP/token (fwd+bwd); {ldtype} matmul peak {peak / 1e12:.1f} TFLOP/s", flush=True)
    rows = {}
    s, mem = plain_loop(model, batch, device, dtype, args.steps)
    rows["plain transformers"] = (s, mem)
    ref = reference_logp(model, batch, device, dtype)
    gaps = {}
    for name, share in (("rlvr unshared", False), ("rlvr shared prompts", True)):
        cfg = LearnerConfig(dtype=ldtype, lr=1e-6, micro_batch_tokens=args.micro_batch_tokens, share_prompts=share,
                            row_tokens=None)
        worker = LearnerWorker(cfg, AlgoConfig(), model, master_port=29500 + share)
        from learner.batching import pack_micro_batches

        mbs = [[batch[i] for i in mb] for mb in pack_micro_batches([len(x["ids"]) for x in batch],
                                                                   args.micro_batch_tokens)]
        gaps[name] = max_gap(worker.compute_logprobs(mbs)["old_logp"], ref)  # before any update
        _reset_peak(device)
        s = timed(lambda: worker.train_step(mbs, on_policy=True), args.steps, device)
        rows[name] = (s, _peak_gib(device))
        worker.close()  # the next worker joins the same (world size 1) process group
        del worker
    print(f"\n{'':24s}{'s/step':>9s}{'tokens/s':>11s}{'MFU':>7s}{'peak GiB':>10s}")
    for name, (s, mem) in rows.items():
        print(f"{name:24s}{s:9.3f}{tokens / s:11.0f}{flops / s / peak:7.1%}{mem:10.1f}")
    base = rows["plain transformers"][0]
    for name in gaps:
        print(f"ratio {name} / plain transformers tokens/s: {base / rows[name][0]:.2f}x")
    tol = 1e-3 if dtype == torch.float32 else 0.05
    for name, g in gaps.items():
        print(f"packed vs unpacked log-probs, {name}: max |diff| {g:.2e} nats "
              f"({'OK' if g < tol else 'FAIL'}, tolerance {tol})")
    from varlen_check import varlen_gap

    print(varlen_gap(model, batch, ref, device, dtype))


if __name__ == "__main__":
    main()
