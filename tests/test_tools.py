"""The tools the policy may call: calculator safety and bounds, the python tool in the code sandbox, the
registry and the rollout.tools config. The engine loop is tested in tests/test_multiturn.py."""

import time

import pytest

from actors.config import RolloutConfig, ToolConfig
from tools.base import Tool, ToolError
from tools.calculator import Calculator, evaluate
from tools.python import PythonTool
from tools.registry import build_tools


@pytest.mark.parametrize("expr, want", [("12*(3+4)/2", "42"), (" 345+678 ", "1023"), ("7/3", "2.33333333333"),
                                        ("-2**3", "-8"), ("17//5 + 17%5", "5"), ("1.5*4", "6")])
def test_calculator_evaluates_arithmetic(expr, want):
    assert Calculator().run(expr) == (want, "ok")


@pytest.mark.parametrize("expr, why", [
    ("__import__('os').system('echo hi')", "not arithmetic"), ("x+1", "not arithmetic"), ("(1).real", "not arithmetic"),
    ("[1,2][0]", "not arithmetic"), ("2**10**10", "exponent"), ("9**64*9**64*9**64", "exceeds"), ("1/0", "division"),
    ("1e308*10", "exceeds"), ("(-8)**0.5", "real number"), ("1+", "cannot parse"), ("1+" * 300 + "1", "at most"),
    ("+".join(["1"] * 70), "more than")])
def test_calculator_refuses_what_is_not_bounded_arithmetic(expr, why):
    start = time.monotonic()
    result, status = Calculator().run(expr)
    assert status == "error" and why in result, result
    assert time.monotonic() - start < 0.5


def test_calculator_never_calls_eval(monkeypatch):
    import builtins

    def refuse(*a, **k):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    assert evaluate("2*(3+4)") == 14


def test_python_tool_answers_with_program_output():
    assert PythonTool().run("print(sum(range(10)))") == ("45", "ok")


@pytest.mark.parametrize("program, status, words", [
    ("1/0", "error", "ZeroDivisionError"),
    ("import socket; socket.create_connection(('1.1.1.1', 80))", "error", "failed"),
    ("while True: pass", "timeout", "killed"),
    ("x = bytearray(2**32)", "error", "MemoryError"),
])
def test_hostile_python_call_is_contained_and_becomes_an_error_observation(program, status, words):
    start = time.monotonic()
    result, got = PythonTool(run_timeout_s=1.0).run(program)
    assert got == status and words in result, result
    assert time.monotonic() - start < 8


def test_python_tool_cannot_see_the_repository():
    import os

    result, status = PythonTool().run(f"import os; print(os.path.exists({os.getcwd()!r}))")
    assert (result, status) == ("False", "ok")


def test_parse_takes_the_last_call_of_the_turn():
    t = Calculator()
    assert t.parse("x <calculator>1+1</calculator> y <calculator>2*3</calculator>") == "2*3"
    assert t.parse("no call here") is None
    assert Tool().run("x")[1] == "error"  # a Tool without execute answers with an error, never raises


class _Broken(Tool):
    def execute(self, arg):
        raise KeyError("bug")


def test_a_raising_user_tool_becomes_an_error_observation():
    assert _Broken().run("x") == ("error: KeyError: 'bug'", "error")


def test_registry_builds_tools_with_overrides_and_user_classes():
    calc, user = build_tools([ToolConfig(name="calculator", open_tag="?", close_tag=";", timeout_s=0.5),
                              ToolConfig(name="tools.python:PythonTool")])
    assert (calc.open_tag, calc.close_tag, calc.timeout_s) == ("?", ";", 0.5)
    assert isinstance(user, PythonTool)
    with pytest.raises(ValueError, match="expected one of"):
        build_tools([ToolConfig(name="abacus")])
    with pytest.raises(ValueError, match="not a subclass"):
        build_tools([ToolConfig(name="os:path")])


def test_rollout_config_refuses_repeated_tools():
    with pytest.raises(ValueError, match="distinct"):
        RolloutConfig(tools=[ToolConfig(name="calculator"), ToolConfig(name="calculator")])
    with pytest.raises(ValueError, match="max_turns"):
        RolloutConfig(max_turns=0)
    assert ToolError.__mro__[1] is Exception


def test_train_and_eval_configs_accept_the_same_tool_settings():
    from cluster.config import load_config
    from cluster.eval.config import load_eval_config

    run = load_config("configs/local_tool.yaml")
    (calc,) = build_tools(run.rollout.tools)
    assert (calc.name, calc.close_tag, run.rollout.max_turns, run.rollout.max_obs_tokens) == ("calculator", ";", 3, 16)
    ev = load_eval_config("configs/eval_local.yaml", ["model.path=/x", "rollout.tools=[{name: python}]",
                                                      "rollout.max_turns=2"])
    assert [t.name for t in build_tools(ev.rollout.tools)] == ["python"] and ev.rollout.max_turns == 2


def test_tool_metrics_count_calls_errors_timeouts_and_model_tokens():
    import numpy as np

    from cluster.rollout_metrics import tool_metrics
    from record.rollout import Group, Sample

    def sample(mask, calls, errors=0, timeouts=0, seconds=0.0):
        n = len(mask)
        return Sample(np.zeros(n, np.int32), np.zeros(n, np.float32), np.array(mask, bool), "stop", 0,
                      tools={"calls": calls, "errors": errors, "timeouts": timeouts, "seconds": seconds, "turns": 1})

    groups = [Group(np.array([1], np.int32), [sample([1, 1, 0, 0, 1], 1, errors=1, seconds=0.5),
                                              sample([1, 1, 1], 0)]),
              Group(np.array([1], np.int32), [sample([1, 0, 1, 0, 1], 2, timeouts=1, seconds=1.5),
                                              sample([1], 0)])]
    m = tool_metrics(groups)
    assert m == {"tools/call_rate": 0.5, "tools/calls_per_sample": 0.75, "tools/errors": 1, "tools/timeouts": 1,
                 "tools/seconds_per_sample": 0.5, "tools/model_tokens": 2.5}
    assert tool_metrics([Group(np.array([1], np.int32), [Sample.model_written([5], [-1.0], "stop", 0)])]) == {}


def test_tool_prior_corpus_calls_the_calculator_and_other_priors_keep_their_cache_keys():
    import dataclasses
    import hashlib
    import json

    from cluster.embedded.pretrain import CACHE_VERSION, PretrainConfig
    from cluster.embedded.tasks import CALL_CLOSE, CALL_OPEN, CorpusMix, corpus

    rows = corpus(200, 0, CorpusMix(tool=0.5))
    calls = [r for r in rows if r["response"].startswith(CALL_OPEN)]
    assert 60 < len(calls) < 140 and all(r["correct"] for r in calls)
    tool = Calculator(open_tag=CALL_OPEN, close_tag=CALL_CLOSE)
    for r in calls:  # the corpus shows what the calculator answers
        call, obs = r["response"].split(CALL_CLOSE)
        assert obs == f"#### {tool.run(call[1:])[0]}" == f"#### {r['answer']}"
    assert corpus(50, 0, CorpusMix()) == corpus(50, 0, CorpusMix(tool=0.0))
    plain = dataclasses.asdict(PretrainConfig())
    del plain["mix"]["tool"], plain["task"]  # the key as it was before the tool share and the code task existed
    old = hashlib.sha256(json.dumps({"version": CACHE_VERSION, **plain}, sort_keys=True).encode()).hexdigest()[:16]
    assert PretrainConfig().key() == old != PretrainConfig(mix=CorpusMix(tool=0.15)).key()
