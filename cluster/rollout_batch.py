"""Rollouts -> the learner's plain batch, and the per-step rollout metrics.

The learner batch (docs/design.md) is a dict of equal-length lists, one entry per sample; samples of one
prompt share a group id.
"""
from __future__ import annotations

from collections import defaultdict
from statistics import mean


def flatten(problems: list, groups: list[list], rewards: list[float]) -> dict:
    """groups[i] holds the samples of problems[i]; rewards are flat in the same order."""
    batch = {k: [] for k in ("prompt_ids", "response_ids", "rollout_logprobs", "rewards", "group_ids",
                             "finish_reason", "versions")}
    flat = [(i, s) for i, samples in enumerate(groups) for s in samples]
    if len(flat) != len(rewards):
        raise ValueError(f"{len(flat)} samples but {len(rewards)} rewards")
    for (i, s), r in zip(flat, rewards):
        batch["prompt_ids"].append(list(s.prompt_ids))
        batch["response_ids"].append(list(s.response_ids))
        batch["rollout_logprobs"].append(list(s.logprobs))
        batch["rewards"].append(float(r))
        batch["group_ids"].append(i)
        batch["finish_reason"].append(s.finish_reason)
        batch["versions"].append(s.version)  # the policy version that generated it (staleness check)
    return batch


def select(batch: dict, keep: list[int]) -> dict:
    return {k: [v[i] for i in keep] for k, v in batch.items()}


def first_groups(batch: dict, k: int) -> dict:
    """The samples of the first k groups (in order of appearance): DAPO trains on prompts_per_step groups."""
    keep_groups = list(dict.fromkeys(batch["group_ids"]))[:k]
    wanted = set(keep_groups)
    return select(batch, [i for i, g in enumerate(batch["group_ids"]) if g in wanted])


def concat(a: dict | None, b: dict, group_offset: int) -> dict:
    """Append batch b to a, renumbering b's groups after a's."""
    b = {**b, "group_ids": [g + group_offset for g in b["group_ids"]]}
    if a is None:
        return b
    return {k: a[k] + b[k] for k in a}


def sample_metrics(problems: list, groups: list[list], rewards: list[float]) -> dict:
    """Reward, accuracy, response length, clipped fraction, version spread; overall and per source."""
    flat = [(problems[i], s) for i, samples in enumerate(groups) for s in samples]
    if not flat:
        return {}
    lengths = [len(s.response_ids) for _, s in flat]
    out = {
        "reward/mean": mean(rewards),
        "accuracy": mean(1.0 if r > 0.5 else 0.0 for r in rewards),
        "response_length/mean": mean(lengths),
        "response_length/max": max(lengths),
        "response_length/clipped_frac": mean(1.0 if s.finish_reason == "length" else 0.0 for _, s in flat),
        "rollout/min_version": min(s.version for _, s in flat),
        "rollout/samples": len(flat),
    }
    by_source = defaultdict(list)
    for (p, _), r in zip(flat, rewards):
        by_source[p.source].append(r)
    if len(by_source) > 1:
        for src, rs in by_source.items():
            out[f"accuracy/{src}"] = mean(1.0 if r > 0.5 else 0.0 for r in rs)
    return out
