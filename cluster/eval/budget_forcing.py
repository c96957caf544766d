"""Budget forcing (s1, Muennighoff et al. 2025, https://arxiv.org/abs/2501.19393): cap a chain of thought
at B tokens, then append a forcing string such as "\\nFinal answer: \\boxed{" so the model must answer.

Two-pass use by the eval harness, with token ids from the policy's tokenizer:
    1. generate with max_tokens=B; if finish_reason == 'stop' the model answered within budget: done.
    2. else generate again from `forced_prompt_ids(prompt, response, B, encode(forcing))` with a small
       max_tokens, and score `forced_completion(thinking_text, forcing, continuation)`.
A token-budget sweep needs one generation, at the largest budget: `cut_at_budget` turns each sample into what
max_tokens=B would have produced (the first B tokens, finish 'length', when it ran longer; itself otherwise), and
forcing then continues from those B tokens, reusing the prompt's cached prefix in the engine.
Pure functions on lists and strings; the tokenizer and engine stay with the caller.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

DEFAULT_FORCING = "\nFinal answer: \\boxed{"


def _check_budget(budget: int) -> None:
    if budget < 0:
        raise ValueError(f"budget={budget}: expected a non-negative number of thinking tokens")


def needs_forcing(finish_reason: str, num_tokens: int, budget: int) -> bool:
    """True when the response was cut by the budget rather than ending on its own."""
    _check_budget(budget)
    if finish_reason not in ("stop", "length"):
        raise ValueError(f"finish_reason={finish_reason!r}: expected 'stop' or 'length'")
    return finish_reason == "length" or num_tokens > budget


def forced_prompt_ids(prompt_ids: Sequence[int], response_ids: Sequence[int], budget: int,
                      forcing_ids: Sequence[int]) -> list[int]:
    """Prompt, the first `budget` thinking tokens, then the forcing tokens: the input of the answer pass."""
    _check_budget(budget)
    return list(prompt_ids) + list(response_ids[:budget]) + list(forcing_ids)


def strip_end_of_thinking(response_ids: Sequence[int], end_ids: Sequence[int]) -> list[int]:
    """Drop a trailing end-of-thinking delimiter (s1 'Wait' extension: the caller appends 'Wait' and goes on)."""
    n = len(end_ids)
    if n and list(response_ids[-n:]) == list(end_ids):
        return list(response_ids[:-n])
    return list(response_ids)


def close_forced_answer(forcing: str, continuation: str) -> str:
    """The continuation up to where the braces the forcing string left open close; closes them if it never does.

    E.g. forcing '...\\boxed{' and continuation '42} because ...' -> '42}'; '\\frac{1}{2' -> '\\frac{1}{2}}'.
    """
    depth = forcing.count("{") - forcing.count("}")
    if depth <= 0:
        return continuation
    for i, ch in enumerate(continuation):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            return continuation[:i + 1]
    return continuation + "}" * depth


def forced_completion(thinking_text: str, forcing: str, continuation: str) -> str:
    """The full text to score: thinking cut at the budget, the forcing string, the closed answer."""
    return thinking_text + forcing + close_forced_answer(forcing, continuation)


def cut_at_budget(sample, budget: int, decode: Callable[[list[int]], str]):
    """The sample as a generation with max_tokens=budget would end: unchanged if it ended within the budget,
    else its first `budget` tokens (text decoded by `decode`) with finish_reason 'length'. `sample` is a
    record.rollout.Sample."""
    _check_budget(budget)
    if len(sample.response_ids) <= budget:
        return sample
    ids = sample.response_ids[:budget]  # array slices: the full sample serves the next budget untouched
    return replace(sample, response_ids=ids, logprobs=sample.logprobs[:budget], loss_mask=sample.loss_mask[:budget],
                   text=decode(ids.tolist()), finish_reason="length")
