"""Per-step rollout metrics over the rollout record (record/rollout.py): reward, accuracy, lengths, versions."""
from __future__ import annotations

from collections import defaultdict
from statistics import mean


def sample_metrics(problems: list, groups: list, rewards: list[float]) -> dict:
    """Reward, accuracy, response length, clipped fraction, version spread; overall and per source.
    groups[i] (a record Group) answers problems[i]; rewards are flat in group order."""
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


def tool_metrics(groups: list[list]) -> dict:
    """Per-step tool use of multi-turn rollouts (empty for single-turn ones): share of samples that called a
    tool, calls per sample, error and timeout counts, tool seconds per sample, model-written tokens per sample."""
    flat = [s for samples in groups for s in samples if s.tools is not None]
    if not flat:
        return {}
    calls = sum(s.tools["calls"] for s in flat)
    return {
        "tools/call_rate": mean(1.0 if s.tools["calls"] else 0.0 for s in flat),
        "tools/calls_per_sample": calls / len(flat),
        "tools/errors": sum(s.tools["errors"] for s in flat),
        "tools/timeouts": sum(s.tools["timeouts"] for s in flat),
        "tools/seconds_per_sample": mean(s.tools["seconds"] for s in flat),
        "tools/model_tokens": mean(s.num_loss_tokens for s in flat),
    }
