"""The rollout record (record/rollout.py): groups stay groups, the contract is checked, round trips are exact."""

import json

import numpy as np
import pytest

from record.rollout import Group, RolloutBatch, Sample


def _batch():
    return RolloutBatch.from_lists(prompt_ids=[[1, 2], [1, 2], [3], [3], [4, 5, 6], [4, 5, 6]],
                                   response_ids=[[7], [8, 9], [7, 7], [9], [1], [2, 3]], rewards=[1, 0, 0, 1, 1, 0],
                                   group_ids=[0, 0, 3, 3, 5, 5], logprobs=[[-0.5], [-1, -2], [0, 0], [-3], [-1], [0, 0]],
                                   loss_mask=[[1], [1, 1], [1, 0], [1], [1], [0, 1]])


def test_prompt_is_stored_once_per_group_and_flat_views_follow_group_order():
    b = _batch()
    assert [len(g) for g in b.groups] == [2, 2, 2] and [g.prompt_ids.tolist() for g in b.groups] == [[1, 2], [3], [4, 5, 6]]
    assert b.group_ids() == [0, 0, 3, 3, 5, 5] and b.rewards() == [1, 0, 0, 1, 1, 0] and len(b) == 6
    assert [s.num_loss_tokens for s in b.samples()] == [1, 2, 1, 1, 1, 1]
    assert b.samples()[2].response_ids.dtype == np.int32 and b.samples()[2].logprobs.dtype == np.float32


def test_dapo_trims_a_refilled_batch_to_prompts_per_step_whole_groups():
    b = _batch()
    assert b.first_groups(2).group_ids() == [0, 0, 3, 3] and b.first_groups(5).group_ids() == b.group_ids()
    kept = b.keep_groups({3, 5})
    assert kept.group_ids() == [3, 3, 5, 5] and kept.groups[0].samples[0] is b.groups[1].samples[0]  # not copied
    joined = kept.extend(b.first_groups(1))  # a refill round's groups are numbered after the kept ones
    assert joined.group_ids() == [3, 3, 5, 5, 6, 6] and joined.rewards() == [0, 1, 1, 0, 1, 0]
    joined.check()


def test_json_round_trip_is_exact():
    b = _batch()
    back = RolloutBatch.from_plain(json.loads(json.dumps(b.to_plain())))
    for g, h in zip(b.groups, back.groups):
        assert (g.group_id, g.problem, g.prompt_ids.tolist()) == (h.group_id, h.problem, h.prompt_ids.tolist())
        for s, t in zip(g, h):
            for k in ("response_ids", "logprobs", "loss_mask"):
                assert getattr(s, k).dtype == getattr(t, k).dtype and getattr(s, k).tolist() == getattr(t, k).tolist()
            assert (s.finish_reason, s.version, s.text, s.reward) == (t.finish_reason, t.version, t.text, t.reward)


@pytest.mark.parametrize("change,match", [
    (lambda b: b.groups[0].samples[0].__setattr__("logprobs", np.zeros(3, np.float32)), "one entry per token"),
    (lambda b: b.groups[1].samples[0].__setattr__("loss_mask", np.zeros(2, bool)), "loss_mask True"),
    (lambda b: b.groups[2].samples[1].__setattr__("finish_reason", "abort"), "finish_reason='abort'"),
    (lambda b: b.groups[2].__setattr__("group_id", 0), "group_id repeats"),
    (lambda b: b.groups[0].__setattr__("prompt_ids", np.zeros(0, np.int32)), "prompt token"),
])
def test_check_names_the_group_sample_and_rule(change, match):
    b = _batch()
    change(b)
    with pytest.raises(ValueError, match=match):
        b.check()
    with pytest.raises(ValueError, match="no groups"):
        RolloutBatch([]).check()


def test_rewards_are_set_per_sample_in_group_order():
    b = RolloutBatch([Group(np.array([1], np.int32), [Sample.model_written([2], [-1.0], "stop", 0)] * 1, 0)])
    b.set_rewards([0.5])
    assert b.rewards() == [0.5]
    with pytest.raises(ValueError, match="2 rewards for 1 samples"):
        b.set_rewards([1.0, 0.0])
    with pytest.raises(ValueError, match="different prompts"):
        RolloutBatch.from_lists([[1], [2]], [[3], [4]], [0, 0], [0, 0])


def _imports(path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    return {n.split(".")[0] for n in names}


def test_record_imports_numpy_only():
    """The record must stay importable by actors/ and learner/ without torch, vLLM or Ray (the package rules
    themselves are checked by test_import_graph)."""
    from pathlib import Path

    files = list((Path(__file__).resolve().parent.parent / "record").glob("*.py"))
    assert files and all(_imports(p) <= {"__future__", "collections", "dataclasses", "numpy"} for p in files)
