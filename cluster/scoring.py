"""Score rollouts with the verifier that fits each problem's kind (math, code, countdown).

Every verification runs in rewards/' worker pool with a timeout, so a hostile completion costs at most the
timeout and scores 0.0; the loop never waits on it longer.
"""
from __future__ import annotations

from rewards import score_batch


def score_texts(problems: list, texts: list[str], timeout_s: float, workers: int) -> list[float]:
    """One reward per text; problems[i] is the problem texts[i] answers."""
    if not texts:
        return []
    return score_batch([p.kind for p in problems], texts, [p.reward_gold for p in problems], timeout_s=timeout_s,
                       workers=workers)
