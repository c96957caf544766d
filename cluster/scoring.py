"""Score rollouts with the verifier that fits each problem's kind (math, code, countdown, custom).

Every verification runs in rewards/' worker pool with a timeout, so a hostile completion costs at most the
timeout and scores 0.0; the loop never waits on it longer. Items that timed out or whose verifier raised are
reported, so a broken reward hook shows up in the metrics instead of scoring 0.0 silently.
"""
from __future__ import annotations

from rewards import score_batch


def score_texts(problems: list, texts: list[str], timeout_s: float, workers: int) -> list:
    """One reward per text (a rewards.verdict.Verdict: its .status says ok, timeout or error); problems[i] is the
    problem texts[i] answers. A code completion that repeats one already in the batch for the same tests is run
    once: a sandbox call costs ~0.1 s of CPU, and a sharpened policy repeats itself (most of 256 support samples)."""
    if not texts:
        return []
    first: dict[tuple[str, str], int] = {}  # (tests, text) of a code item -> index of its first occurrence
    source = [first.setdefault((p.gold, t), i) if p.kind == "code" else i
              for i, (p, t) in enumerate(zip(problems, texts))]
    unique = sorted(set(source))
    scored = score_batch([problems[i].kind for i in unique], [texts[i] for i in unique],
                         [problems[i].reward_gold for i in unique], timeout_s=timeout_s, workers=workers)
    by_index = dict(zip(unique, scored))
    return [by_index[j] for j in source]


def failure_summary(problems: list, rewards: list) -> str | None:
    """One line naming how many items failed and the first error, or None if all were scored."""
    failures = [getattr(r, "failure", None) for r in rewards]
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
