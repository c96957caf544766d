"""Rollout throughput: the vLLM engine pool (1 and 2 engines) vs Hugging Face `generate`, same model, prompts
and sampling. Prints sampled tokens/s of each, the pool/HF ratios and the 1 -> 2 engine scaling.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_rollout.py                # ~7M-param random Qwen2, fp32
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_rollout.py --prompts 8 --max-tokens 64 --layers 4

The model is a randomly initialised Qwen2 (head_dim 64, as vLLM's CPU attention needs) with the stories260K
tokenizer, built in a temp dir; prompts are GSM8K test questions. A random model rarely emits EOS, so nearly
every sample runs to max_tokens on both sides. HF is measured two ways: one `generate` call for the whole
batch (its best case) and one call per prompt with num_return_sequences=n (a naive rollout loop).
"""

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from rl_common import TOKENIZER_DIR, data_dir

DATA = data_dir()


def build_model(out_dir: Path, hidden: int, layers: int, intermediate: int, seed: int = 0) -> int:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER_DIR / name, out_dir / name)
    cfg = Qwen2Config(vocab_size=512, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                      num_attention_heads=hidden // 64, num_key_value_heads=max(1, hidden // 128),
                      max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                      initializer_range=0.1)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg)
    model.save_pretrained(out_dir)
    return sum(p.numel() for p in model.parameters())


def load_prompts(model_dir: Path, count: int, max_tokens: int, max_model_len: int) -> list[list[int]]:
    from actors.config import PromptConfig
    from actors.prompts import PromptEncoder

    questions = [json.loads(line)["question"] for line in open(DATA / "gsm8k/test.jsonl")][:count]
    enc = PromptEncoder.from_pretrained(str(model_dir), PromptConfig(template="Q: {prompt}\nA:", overlong="drop"),
                                        max_model_len)
    return enc.encode(questions, max_tokens).token_ids


def bench_pool(model_dir: Path, prompts, sampling, num_engines: int, max_model_len: int) -> float:
    from actors.config import RolloutConfig
    from actors.pool import RolloutPool

    cfg = RolloutConfig(dtype="float32", num_engines=num_engines, max_model_len=max_model_len, kv_cache_gib=0.5)
    pool = RolloutPool(str(model_dir), cfg)
    try:
        pool.generate(prompts[:num_engines], sampling.model_copy(update={"max_tokens": 8}))  # warm-up
        start = time.perf_counter()
        out = pool.generate(prompts, sampling)
        seconds = time.perf_counter() - start
    finally:
        pool.shutdown()
    tokens = sum(len(s.response_ids) for group in out for s in group)
    print(f"pool x{num_engines}: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:,.0f} tokens/s")
    return tokens / seconds


def count_new_tokens(sequences, prompt_len: int, eos: int) -> int:
    total = 0
    for row in sequences[:, prompt_len:].tolist():
        total += row.index(eos) + 1 if eos in row else len(row)
    return total


def bench_hf(model_dir: Path, prompts, sampling, batched: bool) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)  # one core, like one engine
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    kwargs = dict(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0,
                  max_new_tokens=sampling.max_tokens, num_return_sequences=sampling.n, eos_token_id=2,
                  pad_token_id=0)

    def run(batch):  # left-padded batch of prompts -> generated token count
        width = max(map(len, batch))
        ids = torch.tensor([[0] * (width - len(p)) + p for p in batch])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
        with torch.no_grad():
            seqs = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        return count_new_tokens(seqs, width, eos=2)

    run(prompts[:1])  # warm-up
    start = time.perf_counter()
    tokens = run(prompts) if batched else sum(run([p]) for p in prompts)
    seconds = time.perf_counter() - start
    name = "HF generate, one batch" if batched else "HF generate, per prompt"
    print(f"{name}: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:,.0f} tokens/s")
    return tokens / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--skip-per-prompt", action="store_true", help="skip the slow per-prompt HF baseline")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.prompts, args.n, args.max_tokens, args.hidden, args.layers, args.intermediate = 2, 2, 8, 64, 1, 128

    import ray

    from actors.config import SamplingConfig

    max_model_len = 512
    sampling = SamplingConfig(n=args.n, max_tokens=args.max_tokens, temperature=1.0, seed=0)
    with tempfile.TemporaryDirectory(prefix="bench_rollout_") as tmp:
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        params = build_model(model_dir, args.hidden, args.layers, args.intermediate)
        prompts = load_prompts(model_dir, args.prompts, args.max_tokens, max_model_len)
        print(f"model: random Qwen2, {params / 1e6:.1f}M params, fp32; {len(prompts)} prompts "
              f"(mean {sum(map(len, prompts)) / len(prompts):.0f} tokens) x n={args.n}, max_tokens={args.max_tokens}")
        hf_batch = bench_hf(model_dir, prompts, sampling, batched=True)
        hf_single = None if args.skip_per_prompt else bench_hf(model_dir, prompts, sampling, batched=False)
        ray.init(num_cpus=4, include_dashboard=False, _temp_dir=str(model_dir / "ray"), log_to_driver=False)
        try:
            pool1 = bench_pool(model_dir, prompts, sampling, 1, max_model_len)
            pool2 = bench_pool(model_dir, prompts, sampling, 2, max_model_len)
        finally:
            ray.shutdown()
    print(f"ratio pool x1 / HF one batch: {pool1 / hf_batch:.1f}x   pool x2 / HF one batch: {pool2 / hf_batch:.1f}x")
    if hf_single:
        print(f"ratio pool x1 / HF per prompt: {pool1 / hf_single:.1f}x   "
              f"pool x2 / HF per prompt: {pool2 / hf_single:.1f}x")
    print(f"scaling 1 -> 2 engines: {pool2 / pool1:.2f}x")


if __name__ == "__main__":
    main()
