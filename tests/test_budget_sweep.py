"""One generation for a token-budget sweep: cutting a sample at B gives what max_tokens=B would have produced."""

from cluster.eval.budget_forcing import cut_at_budget, needs_forcing
from record.rollout import Sample


def _sample(ids, finish="stop"):
    return Sample.model_written(ids, [-0.1 * i for i in range(len(ids))], finish, 3, "".join(map(str, ids)))


def _decode(ids):
    return "".join(map(str, ids))


def test_sample_that_ended_within_the_budget_is_unchanged():
    s = _sample([5, 6, 7])
    assert cut_at_budget(s, 3, _decode) is s and cut_at_budget(s, 10, _decode) is s


def test_longer_sample_is_cut_to_the_budget_and_marked_length():
    s = _sample([5, 6, 7, 8, 9], finish="stop")
    cut = cut_at_budget(s, 2, _decode)
    assert cut.response_ids.tolist() == [5, 6] and cut.text == "56" and cut.finish_reason == "length"
    assert cut.logprobs.tolist() == s.logprobs[:2].tolist() and cut.loss_mask.tolist() == [True, True]
    assert cut.version == 3
    assert s.response_ids.tolist() == [5, 6, 7, 8, 9]  # the full sample serves the next budget untouched
    assert needs_forcing(cut.finish_reason, len(cut.response_ids), 2)  # and gets a forced answer


def test_cut_at_zero_leaves_only_the_prompt():
    cut = cut_at_budget(_sample([5, 6]), 0, _decode)
    assert cut.response_ids.tolist() == [] and cut.text == "" and cut.finish_reason == "length"
