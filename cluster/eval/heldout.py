"""Evaluate the policy the pool currently serves on held-out problems: generate, verify, summarise.

Used by training (before, every N steps, after) and by `rlvr eval`. Returns per-problem results in the form
cluster.eval.pass_at_k consumes, plus one row per sample for samples.jsonl.
"""
from __future__ import annotations

from statistics import mean

from cluster.eval.pass_at_k import ProblemResult
from cluster.scoring import score_texts


def answer_of(problem, text: str) -> str | None:
    if problem.kind == "math":
        from rewards.math import extract_answer

        return extract_answer(text)
    return None


def generate_and_score(pool, encoder, problems: list, sampling, timeout_s: float, workers: int):
    """-> (kept problems, their ProblemResults, per-sample rows, dropped prompt count).
    Overlong prompts follow rollout.prompt.overlong."""
    enc = encoder.encode([p.prompt for p in problems], sampling.max_tokens)
    kept = [problems[i] for i in enc.kept]
    groups = pool.generate(enc.token_ids, sampling) if kept else []
    results, rows = score_groups(kept, groups, timeout_s, workers)
    return kept, results, rows, len(enc.dropped)


def score_groups(problems: list, groups: list, timeout_s: float, workers: int):
    """Verify the samples of each problem: -> (ProblemResults, per-sample rows). groups[i]: samples of problems[i]."""
    flat_problems = [p for p, samples in zip(problems, groups) for _ in samples]
    texts = [s.text for samples in groups for s in samples]
    rewards = score_texts(flat_problems, texts, timeout_s, workers)
    results, rows, k = [], [], 0
    for p, samples in zip(problems, groups):
        rs = rewards[k:k + len(samples)]
        k += len(samples)
        answers = [answer_of(p, s.text) for s in samples]
        results.append(ProblemResult(correct=[r > 0.5 for r in rs], answers=answers,
                                     num_tokens=[len(s.response_ids) for s in samples]))
        for s, r, a in zip(samples, rs, answers):
            rows.append({"id": p.id, "source": p.source, **({"difficulty": p.meta["difficulty"]}
                                                             if "difficulty" in p.meta else {}),
                         "prompt": p.prompt, "completion": s.text,
                         "extracted": a, "reward": r, "tokens": len(s.response_ids),
                         "finish_reason": s.finish_reason, "version": s.version})
    return results, rows


def by_difficulty(rows: list[dict]) -> dict:
    """Accuracy and mean response length per `difficulty` bucket of the problems' meta (empty if none has one)."""
    buckets: dict[str, list[dict]] = {}
    for r in rows:
        if "difficulty" in r:
            buckets.setdefault(r["difficulty"], []).append(r)
    return {b: {"accuracy": mean(r["reward"] > 0.5 for r in rs), "mean_response_length": mean(r["tokens"] for r in rs),
                "samples": len(rs)} for b, rs in sorted(buckets.items())}


def quick_summary(results: list) -> dict:
    """Accuracy (mean over all samples) and mean response length: what training logs at eval points."""
    correct = [c for r in results for c in r.correct]
    tokens = [t for r in results for t in r.num_tokens]
    if not correct:
        return {"accuracy": float("nan"), "mean_response_length": float("nan"), "problems": 0}
    return {"accuracy": mean(correct), "mean_response_length": mean(tokens), "problems": len(results)}
