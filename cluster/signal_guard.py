"""The zero-signal guard: a step whose rewards are all identical teaches nothing (group-relative advantages are
zero, so is the gradient). A few such steps in a row usually mean the reward never sees the model's answers:
answer extraction, the prompt template or the gold answer format. The guard warns after
`train.zero_signal_warn_steps` such steps in a row and stops the run after `train.zero_signal_stop_steps`.
"""
from __future__ import annotations


class NoLearningSignal(RuntimeError):
    """Every reward was identical for train.zero_signal_stop_steps steps in a row."""


def no_answer_share(problems: list, texts: list[str]) -> float | None:
    """Share of math samples from which no final answer could be extracted; None if there are no math samples."""
    pairs = [(p, t) for p, t in zip(problems, texts) if p.kind == "math"]
    if not pairs:
        return None
    from rewards.math import extract_answer

    return sum(extract_answer(t) is None for _, t in pairs) / len(pairs)


def constant_reward(rewards: list[float]) -> float | None:
    """The value every reward shares, or None if they differ (or there are none)."""
    return rewards[0] if rewards and len(set(rewards)) == 1 else None


class ZeroSignalGuard:
    """`observe(step, constant, no_answer)` after each rollout, `constant` being the one reward value of a step
    whose rewards were all equal (else None): returns a warning line or None, and raises NoLearningSignal once
    the streak reaches the stop threshold."""

    def __init__(self, warn_steps: int, stop_steps: int):
        self.warn_steps, self.stop_steps = warn_steps, stop_steps
        self.streak = 0

    def observe(self, step: int, constant: float | None, no_answer: float | None) -> str | None:
        if constant is None:
            self.streak = 0
            return None
        self.streak += 1
        if self.streak < self.warn_steps:
            return None
        extracted = "" if no_answer is None else (f" {no_answer:.0%} of this step's math samples had no "
                                                  "extractable final answer.")
        body = (f"step {step}: no learning signal: every reward of the last {self.streak} step(s) was {constant:g} "
                f"(identical rewards give zero advantages and a zero gradient).{extracted} Likely causes: answers "
                "not extracted (how the model writes its final answer vs the verifier's extraction), a prompt "
                "template the model does not follow (rollout.prompt.format/template), a gold answer format that "
                "differs from the model's (dataset answer_format), or a reward hook that returns a constant. Look "
                "at samples.jsonl in the run directory.")
        if self.stop_steps and self.streak >= self.stop_steps:
            raise NoLearningSignal(f"{body} Stopped after train.zero_signal_stop_steps={self.stop_steps} such "
                                   "steps in a row; set it to 0 to never stop.")
        stop = (f"The run stops after train.zero_signal_stop_steps={self.stop_steps} such steps."
                if self.stop_steps else "train.zero_signal_stop_steps=0: the run goes on.")
        return f"WARNING {body} {stop}"
