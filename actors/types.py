"""Plain data the rollout side hands out (see docs/design.md, "Plain data between packages")."""

from dataclasses import dataclass
from typing import Literal


@dataclass
class Sample:
    """One sampled response to one prompt."""

    prompt_index: int  # position of the prompt in the batch given to the pool
    prompt_ids: list[int]
    response_ids: list[int]
    text: str  # decoded response (without a matched stop string)
    logprobs: list[float]  # log-prob of each sampled response token, len == len(response_ids)
    finish_reason: Literal["stop", "length"]
    version: int  # policy version of the weights that generated it
    # Multi-turn rollouts with tools (actors/multiturn.py); None in single-turn ones, where every token is the model's.
    loss_mask: list[int] | None = None  # 1: model-written (log-prob from the engine), 0: tool observation
    tool_stats: dict | None = None  # calls, errors, timeouts, seconds (tool time), turns


class StaleWeightsError(RuntimeError):
    """An engine serves another policy version than the pool expects (it was restarted): reload, then retry."""


class RolloutError(RuntimeError):
    """A generate request failed on an engine twice (after one restart-and-retry)."""
