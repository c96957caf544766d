"""User reward hooks (kind: custom): loaded from a file or a module, run in the verifier pool, failures counted."""
import json
import textwrap

import pytest

from cluster.data.loaders import load_problems
from cluster.data.problem import DatasetError
from cluster.data.spec import DatasetSpec
from rewards.pool import VerifierPool

HOOKS = textwrap.dedent('''
    import time

    def by_length(completion, problem):
        return 1.0 if len(completion) == problem["want_len"] else 0.0

    def exact(completion, problem):
        return float(completion.strip() == problem["answer"])

    def boom(completion, problem):
        raise KeyError("no such field")

    def text(completion, problem):
        return "1.0"

    def nan(completion, problem):
        return float("nan")

    def slow(completion, problem):
        time.sleep(30)
        return 1.0
''')


@pytest.fixture(scope="module")
def hook_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("hooks") / "my_reward.py"
    path.write_text(HOOKS)
    return path


@pytest.fixture(scope="module")
def pool():
    p = VerifierPool(workers=1, timeout_s=2.0)
    yield p
    p.close()


def gold(ref, **problem):
    return {"reward": ref, "problem": problem}


def score_report(pool, kinds, completions, golds):
    """(rewards as plain floats, per item None if decided else 'timeout' or the error text)."""
    verdicts = pool.score(kinds, completions, golds)
    return [float(v) for v in verdicts], [v.failure for v in verdicts]


def test_file_hook_sees_extra_fields_of_the_record(pool, hook_file):
    golds = [gold(f"{hook_file}:by_length", want_len=3), gold(f"{hook_file}:by_length", want_len=4)]
    rewards, failures = score_report(pool, "custom", ["abc", "abc"], golds)
    assert rewards == [1.0, 0.0] and failures == [None, None]


def test_module_hook_is_imported_from_the_workers_path(tmp_path, monkeypatch):
    (tmp_path / "user_rewards_mod.py").write_text("def half(completion, problem):\n    return 0.5\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the pool's workers get the caller's sys.path
    p = VerifierPool(workers=1, timeout_s=2.0)
    try:
        assert score_report(p, "custom", ["x"], [gold("user_rewards_mod:half")]) == ([0.5], [None])
    finally:
        p.close()


def test_hook_errors_bad_values_and_timeouts_are_reported_not_silent(pool, hook_file):
    refs = ["boom", "text", "nan", "slow", "exact"]
    golds = [gold(f"{hook_file}:{r}", answer="7") for r in refs]
    rewards, failures = score_report(pool, "custom", ["7"] * len(refs), golds)
    assert rewards == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert failures[0].startswith("KeyError") and "no such field" in failures[0]
    assert failures[1].startswith("TypeError") and "expected a float" in failures[1]
    assert failures[2].startswith("ValueError") and "finite" in failures[2]
    assert failures[3] == "timeout" and failures[4] is None


def test_builtin_verifier_errors_are_reported_too(pool):
    # countdown with a malformed gold raises inside the verifier: scored 0.0 and named
    rewards, failures = score_report(pool, ["countdown", "math"], ["<answer>1+2</answer>", r"\boxed{2}"],
                                     [{"nums": [1, 2]}, "2"])
    assert rewards == [0.0, 1.0] and failures[0].startswith("KeyError") and failures[1] is None


def write_data(root):
    data = root / "probs.jsonl"
    data.write_text("\n".join(json.dumps({"q": f"{a}+{a}", "a": str(2 * a), "want_len": a}) for a in range(1, 4)))
    return data


def spec(data, reward, **kw):
    return DatasetSpec(name="jsonl", path=str(data), kind="custom", reward=reward,
                       fields={"prompt": "q", "answer": "a"}, **kw)


def test_relative_hook_path_resolves_against_the_working_directory(tmp_path, monkeypatch, hook_file):
    (tmp_path / "rw").mkdir()
    (tmp_path / "rw" / "score.py").write_text(HOOKS)
    monkeypatch.chdir(tmp_path)
    problems = load_problems(spec(write_data(tmp_path), "rw/score.py:by_length")).problems
    assert problems[0].kind == "custom"
    assert problems[0].reward == f"{(tmp_path / 'rw' / 'score.py').resolve()}:by_length"
    g = problems[1].reward_gold
    assert g["problem"] == {"id": problems[1].id, "prompt": "2+2", "answer": "4", "want_len": 2}
    p = VerifierPool(workers=1, timeout_s=2.0)
    try:
        assert p.score("custom", ["ab", "abc"], [g, g]) == [1.0, 0.0]
    finally:
        p.close()


def test_missing_hook_file_or_function_fails_at_load_with_a_clear_error(tmp_path, monkeypatch, hook_file):
    monkeypatch.chdir(tmp_path)
    data = write_data(tmp_path)
    with pytest.raises(DatasetError, match=r"nope\.py.*does not exist.*working directory"):
        load_problems(spec(data, "nope.py:score"))
    with pytest.raises(DatasetError, match=r"no function 'scor'.*by_length"):
        load_problems(spec(data, f"{hook_file}:scor"))
    with pytest.raises(DatasetError, match="importing no_such_module_xyz failed: ModuleNotFoundError"):
        load_problems(spec(data, "no_such_module_xyz:score"))


@pytest.mark.parametrize("kw, match", [
    ({"kind": "custom"}, "kind='custom' needs reward"),
    ({"kind": "math", "reward": "r.py:f"}, "reward applies only to kind='custom'"),
    ({"kind": "custom", "reward": "r.py"}, "expected 'path/to/file.py:function'"),
    ({"kind": "arith"}, "'math', 'code', 'countdown' or 'custom'"),
])
def test_custom_kind_config_is_validated(kw, match):
    with pytest.raises(ValueError, match=match):
        DatasetSpec(name="jsonl", path="x.jsonl", fields={"prompt": "q", "answer": "a"}, **kw)
