"""Generate and score: the one path from problems to scored groups, for training steps, held-out evaluation during
training and `rlvr eval`, with the verifier that fits each problem's kind (math, code, countdown, custom).

    prompts = encode_problems(encoder, problems, reserve=sampling.max_tokens)   # overlong prompts: rollout.prompt
    scored = generate_and_score(pool, prompts, sampling, timeout_s, workers)    # scored.groups[i]: problems[i]'s

Every verification runs in rewards/' worker pool with a timeout, so a hostile completion costs at most the
timeout and scores 0.0; the loop never waits on it longer. Items that timed out or whose verifier raised are
reported, so a broken reward hook shows up in the metrics instead of scoring 0.0 silently.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from rewards import score_batch


@dataclass(frozen=True)
class Prompts:
    """Problems whose prompt fits the context with `reserve` response tokens, and their token ids."""

    problems: list
    token_ids: list[list[int]]
    dropped: int  # overlong prompts left out under rollout.prompt.overlong='drop'


@dataclass
class ScoredGroups:
    """groups[i]: the samples of problems[i]; rewards[i][j]: the verdict on groups[i][j] (a float, 0.0 when the
    verifier failed; its .status says so)."""

    problems: list
    groups: list[list]
    rewards: list[list]
    seconds: dict[str, float] = field(default_factory=dict)  # 'generate' and 'reward' wall time

    def flat_problems(self) -> list:
        return [p for p, samples in zip(self.problems, self.groups) for _ in samples]

    def flat_rewards(self) -> list:
        return [r for rs in self.rewards for r in rs]


def encode_problems(encoder, problems: list, reserve: int) -> Prompts:
    """Render and tokenize every prompt; raises ValueError on an overlong one unless rollout.prompt.overlong='drop'."""
    enc = encoder.encode([p.prompt for p in problems], reserve)
    return Prompts([problems[i] for i in enc.kept], enc.token_ids, len(enc.dropped))


def generate_and_score(pool, prompts: Prompts, sampling, timeout_s: float, workers: int) -> ScoredGroups:
    """sampling.n samples of every prompt from the policy the pool serves, each scored by its problem's verifier."""
    t0 = time.perf_counter()
    groups = pool.generate(prompts.token_ids, sampling) if prompts.problems else []
    scored = score_groups(prompts.problems, groups, timeout_s, workers)
    scored.seconds = {"generate": time.perf_counter() - t0 - scored.seconds["reward"], **scored.seconds}
    return scored


def score_groups(problems: list, groups: list[list], timeout_s: float, workers: int) -> ScoredGroups:
    """Score samples already generated (e.g. cut at a token budget, or with a forced answer); groups[i]: problems[i]'s."""
    t0 = time.perf_counter()
    flat = [p for p, samples in zip(problems, groups) for _ in samples]
    verdicts = score_texts(flat, [s.text for samples in groups for s in samples], timeout_s, workers)
    rewards, k = [], 0
    for samples in groups:
        rewards.append(verdicts[k:k + len(samples)])
        k += len(samples)
    return ScoredGroups(list(problems), groups, rewards, {"reward": time.perf_counter() - t0})


def score_texts(problems: list, texts: list[str], timeout_s: float, workers: int) -> list:
    """One reward per text (a rewards.verdict.Verdict: its .status says ok, timeout or error); problems[i] is the
    problem texts[i] answers. A code completion that repeats one already in the batch for the same tests is run
    once: a sandbox call costs ~0.1 s of CPU, and a sharpened policy repeats itself (most of 256 support samples)."""
    if not texts:
        return []
    first: dict[tuple[str, str], int] = {}  # (tests, text) of a code item -> index of its first occurrence
    source = [first.setdefault((p.reward_gold, t), i) if p.kind == "code" else i
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
