"""Bytes that cross Ray in one synchronous RL step, before and after the rollout record (issue #19).

    .venv/bin/python bench/bench_record.py                     # the embedded default's sizes (configs/local.yaml)
    .venv/bin/python bench/bench_record.py --vocab 151936 --prompt-len 150 --response-len 1000 --prompts 64

Hops of one sync GRPO step with one optimizer step per batch (no phase-1 pass), per learner rank:
  generate  engine -> driver: each prompt's samples
  train     driver -> learner rank: the update's micro-batches (after: plus each group's prompt once)
  returned  learner rank -> driver: per-sample log-probs of the update (engine-vs-learner metrics)
Size = what Ray's serializer writes: pickle protocol 5 with numpy buffers out of band (their bytes counted).
"Before" payloads are built as the code at commit 4af9448 built them (spelled out in `before_payloads`: lists of
Python numbers, the prompt copied into every sample, engine log-probs shipped to the learner although only TIS
reads them there); "after" payloads by this checkout's own functions. Step data are random with the given sizes
(token ids drawn from the vocabulary: pickle writes small ints in fewer bytes, so the vocabulary size matters).
"""

import argparse
import pickle
import random
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np


def wire_bytes(obj) -> int:
    buffers = []
    inline = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return len(inline) + sum(memoryview(b).nbytes for b in buffers)


def step_data(args, seed: int = 0) -> list[dict]:
    """One step's engine output: per prompt its ids and n (response ids, log-probs, text)."""
    rng = random.Random(seed)
    out = []
    for _ in range(args.prompts):
        plen = rng.randint(max(1, args.prompt_len // 2), args.prompt_len * 3 // 2)
        prompt = [rng.randrange(3, args.vocab) for _ in range(plen)]
        samples = []
        for _ in range(args.n):
            r = rng.randint(1, 2 * args.response_len - 1)
            samples.append(([rng.randrange(3, args.vocab) for _ in range(r)],
                            [float(np.float32(-rng.expovariate(1.0))) for _ in range(r)], "x" * r))
        out.append({"prompt": prompt, "samples": samples})
    return out


@dataclass
class BeforeSample:
    """actors.types.Sample at 4af9448."""
    prompt_index: int
    prompt_ids: list
    response_ids: list
    text: str
    logprobs: list
    finish_reason: str
    version: int


def before_payloads(data: list[dict], micro_batch_tokens: int) -> dict:
    from learner.batching import balance_shards, pack_micro_batches

    generate = [[BeforeSample(i, list(d["prompt"]), ids, text, lps, "stop", 0) for ids, lps, text in d["samples"]]
                for i, d in enumerate(data)]
    # learner/group.py at 4af9448: rl_sample dicts (ids = prompt + response, loss_mask, rollout_logp), adv lists,
    # weight; units found by hashing prompt tuples; one rank, so the shard is everything
    samples = [{"ids": s.prompt_ids + s.response_ids, "loss_mask": [0] * len(s.prompt_ids) + [1] * len(s.response_ids),
                "rollout_logp": list(s.logprobs), "adv": [0.5] * len(s.response_ids), "weight": 1e-3}
               for g in generate for s in g]
    units, lengths = _units_by_prompt_hash(samples, micro_batch_tokens)
    shard = balance_shards(lengths, 1)[0]
    mbs = [[samples[i] for j in mb for i in units[shard[j]]]
           for mb in pack_micro_batches([lengths[u] for u in shard], micro_batch_tokens)]
    returned = {"loss": 0.1, "tokens": 1.0, "old_logp": [s["rollout_logp"] for mb in mbs for s in mb]}
    return {"generate": generate, "train": (mbs, True), "returned": returned}


def _units_by_prompt_hash(samples, budget):
    by_prompt: dict = {}
    for i, s in enumerate(samples):
        by_prompt.setdefault(tuple(s["ids"][:s["loss_mask"].index(1)]), []).append(i)
    units, lengths = [], []
    for prompt, members in by_prompt.items():
        unit, size = [], len(prompt)
        for i in members:
            rest = len(samples[i]["ids"]) - len(prompt)
            if unit and size + rest > budget:
                units.append(unit)
                lengths.append(size)
                unit, size = [], len(prompt)
            unit.append(i)
            size += rest
        units.append(unit)
        lengths.append(size)
    return units, lengths


def after_payloads(data: list[dict], micro_batch_tokens: int) -> dict:
    from learner.batching import record_samples
    from learner.config import LearnerConfig
    from learner.group import WIRE_KEYS, LearnerGroup
    from record.rollout import Group, RolloutBatch, Sample, ids_array

    generate = [Group(ids_array(d["prompt"]), [Sample.model_written(ids, lps, "stop", 0, text)
                                               for ids, lps, text in d["samples"]], i, i) for i, d in enumerate(data)]
    batch = RolloutBatch(generate)
    samples, prompts = record_samples(batch)
    for s in samples:  # what LearnerGroup.train_step adds before the update (tis_cap unset: no rollout_logp)
        s["adv"] = np.full(int(s["mask"].sum()), 0.5, np.float32)
    mb = [{**{k: s[k] for k in WIRE_KEYS + ("adv",)}, "weight": 1e-3} for s in samples]
    group = SimpleNamespace(cfg=LearnerConfig(micro_batch_tokens=micro_batch_tokens), workers=[None])
    per_rank, _ = LearnerGroup._micro_batches(group, mb)
    rank_prompts = {s["group"]: prompts[s["group"]] for m in per_rank[0] for s in m}
    returned = {"loss": 0.1, "tokens": 1.0, "old_logp": [s.logprobs for s in batch.samples()]}
    return {"generate": generate, "train": (per_rank[0], True, rank_prompts), "returned": returned}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=16, help="train.prompts_per_step")
    ap.add_argument("--n", type=int, default=8, help="sampling.n")
    ap.add_argument("--prompt-len", type=int, default=15, help="mean prompt tokens (embedded arithmetic: ~15)")
    ap.add_argument("--response-len", type=int, default=17, help="mean response tokens (embedded default: ~17)")
    ap.add_argument("--vocab", type=int, default=28, help="vocabulary size (the embedded character tokenizer: 28)")
    ap.add_argument("--micro-batch-tokens", type=int, default=8192)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs (seconds)")
    args = ap.parse_args()
    if args.smoke:
        args.prompts, args.n = 2, 2
    data = step_data(args)
    before, after = before_payloads(data, args.micro_batch_tokens), after_payloads(data, args.micro_batch_tokens)
    print(f"one sync step: {args.prompts} prompts x n={args.n}, prompt ~{args.prompt_len} and response "
          f"~{args.response_len} tokens, vocabulary {args.vocab}")
    print(f"{'hop':12s}{'before (B)':>14s}{'after (B)':>14s}{'after/before':>14s}")
    tb = ta = 0
    for hop in ("generate", "train", "returned"):
        b, a = wire_bytes(before[hop]), wire_bytes(after[hop])
        tb, ta = tb + b, ta + a
        print(f"{hop:12s}{b:14,d}{a:14,d}{a / b:14.2f}")
    print(f"{'total':12s}{tb:14,d}{ta:14,d}{ta / tb:14.2f}")


if __name__ == "__main__":
    main()
