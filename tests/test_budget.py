"""Budget forcing helpers: cut at B tokens, append the forcing string, close the forced answer so the real
math extractor reads it."""

import pytest

from cluster.eval.budget_forcing import (DEFAULT_FORCING, close_forced_answer, forced_completion, forced_prompt_ids, needs_forcing,
                            strip_end_of_thinking)


def test_forced_prompt_keeps_exactly_budget_thinking_tokens():
    prompt, response, forcing = [1, 2], list(range(100, 110)), [7, 8]
    assert forced_prompt_ids(prompt, response, 4, forcing) == [1, 2, 100, 101, 102, 103, 7, 8]
    assert forced_prompt_ids(prompt, response, 0, forcing) == [1, 2, 7, 8]
    assert forced_prompt_ids(prompt, response, 50, forcing) == prompt + response + forcing
    with pytest.raises(ValueError, match="budget=-1"):
        forced_prompt_ids(prompt, response, -1, forcing)


def test_needs_forcing_only_when_cut():
    assert needs_forcing("length", 64, 64) and not needs_forcing("stop", 30, 64)
    assert needs_forcing("stop", 80, 64)  # generated past the budget in one pass: still cut it
    with pytest.raises(ValueError, match="finish_reason='abort'"):
        needs_forcing("abort", 1, 1)


def test_strip_end_of_thinking_removes_only_a_trailing_delimiter():
    assert strip_end_of_thinking([5, 6, 9, 9], [9, 9]) == [5, 6]
    assert strip_end_of_thinking([9, 9, 5], [9, 9]) == [9, 9, 5]
    assert strip_end_of_thinking([5], []) == [5]


@pytest.mark.parametrize("continuation,closed", [
    ("42} because it is", "42}"),
    ("\\frac{1}{2}} and then", "\\frac{1}{2}}"),
    ("\\frac{1}{2", "\\frac{1}{2}}"),
    ("", "}"),
])
def test_close_forced_answer_stops_at_the_matching_brace(continuation, closed):
    assert close_forced_answer(DEFAULT_FORCING, continuation) == closed


def test_forced_completion_is_read_by_the_math_extractor():
    from rewards.math import extract_answer, is_equivalent

    text = forced_completion("We add 2 and 2, which gives", DEFAULT_FORCING, "4} so the answer is 5")
    assert extract_answer(text) == "4"
    assert is_equivalent(extract_answer(forced_completion("...", DEFAULT_FORCING, "\\frac{1}{2")), "0.5")
    assert close_forced_answer("Answer:", " 7") == " 7"  # nothing opened: continuation kept as is
