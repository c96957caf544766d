"""Score rollouts with the verifier that fits each problem's kind (math, code, countdown, custom).

Every verification runs in rewards/' worker pool with a timeout, so a hostile completion costs at most the
timeout and scores 0.0; the loop never waits on it longer. Items that timed out or whose verifier raised are
reported, so a broken reward hook shows up in the metrics instead of scoring 0.0 silently.
"""
from __future__ import annotations

from rewards import score_batch_report


def score_texts(problems: list, texts: list[str], timeout_s: float, workers: int) -> list[float]:
    """One reward per text; problems[i] is the problem texts[i] answers."""
    return score_texts_report(problems, texts, timeout_s, workers)[0]


def score_texts_report(problems: list, texts: list[str], timeout_s: float,
                       workers: int) -> tuple[list[float], list[str | None]]:
    """`score_texts` plus, per text, None (scored) or why it scored 0.0 ('timeout', or the verifier's error)."""
    if not texts:
        return [], []
    return score_batch_report([p.kind for p in problems], texts, [p.reward_gold for p in problems],
                              timeout_s=timeout_s, workers=workers)


def failure_summary(problems: list, failures: list[str | None]) -> str | None:
    """One line naming how many items failed and the first error, or None if all were scored."""
    bad = [(p, f) for p, f in zip(problems, failures) if f is not None]
    if not bad:
        return None
    timeouts = sum(f == "timeout" for _, f in bad)
    errors = [(p, f) for p, f in bad if f != "timeout"]
    parts = [f"{len(bad)} of {len(failures)} rewards scored 0.0 because verification failed"
             f" ({len(errors)} error(s), {timeouts} timeout(s))"]
    if errors:
        p, f = errors[0]
        hook = f"reward hook {p.reward}" if p.kind == "custom" else f"the {p.kind} verifier"
        parts.append(f"first error, from {hook} on problem {p.id}: {f}")
    elif timeouts:
        parts.append("raise train.reward_timeout_s if the verifier needs longer")
    return "; ".join(parts)
