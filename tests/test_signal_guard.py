"""The zero-signal guard: identical rewards for N steps in a row warn, then stop the run."""
import pytest

from cluster.config import validate_config
from cluster.config_error import ConfigError
from cluster.data.problem import Problem
from cluster.signal_guard import NoLearningSignal, ZeroSignalGuard, constant_reward, no_answer_share


def test_constant_reward_only_when_all_rewards_agree():
    assert constant_reward([0.0, 0.0, 0.0]) == 0.0
    assert constant_reward([1.0, 1.0]) == 1.0
    assert constant_reward([0.0, 1.0, 0.0]) is None
    assert constant_reward([]) is None


def test_warns_after_warn_steps_in_a_row_and_stops_after_stop_steps():
    guard = ZeroSignalGuard(warn_steps=2, stop_steps=4)
    assert guard.observe(1, 0.0, 1.0) is None
    warning = guard.observe(2, 0.0, 1.0)
    assert warning.startswith("WARNING step 2: no learning signal") and "last 2 step(s) was 0" in warning
    assert "100% of this step's math samples had no extractable final answer" in warning
    assert "zero_signal_stop_steps=4" in warning
    assert guard.observe(3, 0.0, None) is not None
    with pytest.raises(NoLearningSignal, match=r"last 4 step\(s\).*set it to 0 to never stop"):
        guard.observe(4, 0.0, None)


def test_a_step_with_signal_resets_the_streak():
    guard = ZeroSignalGuard(warn_steps=2, stop_steps=3)
    for step in range(1, 20):  # never two identical steps in a row
        assert guard.observe(step, 0.0 if step % 2 else None, 0.5) is None


def test_stop_steps_zero_never_stops():
    guard = ZeroSignalGuard(warn_steps=1, stop_steps=0)
    for step in range(1, 50):
        assert "the run goes on" in guard.observe(step, 1.0, None)


def test_no_answer_share_counts_math_samples_without_an_answer():
    math = Problem("m", "1+1", "2", "math", "t")
    code = Problem("c", "def f", "assert 1", "code", "t")
    assert no_answer_share([math, math, code], [r"\boxed{2}", "no idea", "x"]) == 0.5
    assert no_answer_share([code], ["x"]) is None


def test_stop_below_warn_is_a_config_error():
    base = {"model": {"path": "m"}, "data": {"train": [{"name": "gsm8k", "split": "test"}]},
            "train": {"steps": 1, "prompts_per_step": 1}, "sampling": {"n": 2}}
    cfg = validate_config(base)
    assert (cfg.train.zero_signal_warn_steps, cfg.train.zero_signal_stop_steps) == (3, 20)
    base["train"].update(zero_signal_warn_steps=5, zero_signal_stop_steps=2)
    with pytest.raises(ConfigError, match="zero_signal_stop_steps=2 is below train.zero_signal_warn_steps=5"):
        validate_config(base)
