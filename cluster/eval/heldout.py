"""Evaluate the policy the pool currently serves on held-out problems: generate, verify, summarise.

Used by training (before, every N steps, after), the support curves and `rlvr eval`, through the one
generate-and-score path (cluster/scoring.py). Returns per-problem results in the form cluster.eval.pass_at_k
consumes, plus one row per sample for the eval_*.jsonl files.
"""
from __future__ import annotations

from statistics import mean

from cluster.eval.pass_at_k import ProblemResult
from cluster.scoring import encode_problems, generate_and_score


def answer_of(problem, text: str) -> str | None:
    if problem.kind == "math":
        from rewards.math import extract_answer

        return extract_answer(text)
    if problem.kind == "code":  # the program without its comment lines: identical programs vote together
        from rewards.code import extract_program

        lines = [ln.rstrip() for ln in extract_program(text).splitlines() if not ln.lstrip().startswith("#")]
        return "\n".join(ln for ln in lines if ln) or None
    return None


def results_and_rows(scored) -> tuple[list[ProblemResult], list[dict]]:
    """A cluster.scoring.ScoredGroups as ProblemResults (what cluster.eval.pass_at_k consumes) and one row per sample
    (what eval_*.jsonl holds)."""
    results, rows = [], []
    for p, samples, rs in zip(scored.problems, scored.groups, scored.rewards):
        answers = [answer_of(p, s.text) for s in samples]
        results.append(ProblemResult(correct=[r > 0.5 for r in rs], answers=answers,
                                     num_tokens=[len(s.response_ids) for s in samples]))
        for s, r, a in zip(samples, rs, answers):
            rows.append({"id": p.id, "source": p.source, **({"difficulty": p.meta["difficulty"]}
                                                             if "difficulty" in p.meta else {}),
                         "prompt": p.prompt, "completion": s.text,
                         "extracted": a, "reward": r, "tokens": len(s.response_ids),
                         "finish_reason": s.finish_reason, "version": s.version,
                         **({"model_tokens": s.num_loss_tokens, "tool_calls": s.tools["calls"]} if s.tools else {})})
    return results, rows


def evaluate_policy(pool, encoder, problems: list, sampling, timeout_s: float, workers: int):
    """Generate and score held-out problems with the policy the pool serves: -> (ProblemResults, per-sample rows).
    Overlong prompts follow rollout.prompt.overlong."""
    prompts = encode_problems(encoder, problems, sampling.max_tokens)
    return results_and_rows(generate_and_score(pool, prompts, sampling, timeout_s, workers))


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
