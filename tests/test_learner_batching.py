"""Packing by token budget, sharding, masks, and padding-free packed forwards equal unpacked ones."""

import pytest
import torch

from learner.batching import balance_shards, collate, dummy_sample, pack_micro_batches, rl_sample, shared_units
from learner.forward import gather_logp, target_logits
from tiny_models import make_tiny_qwen2


def test_pack_micro_batches_respects_budget_and_keeps_every_sample_once():
    lengths = [7, 3, 5, 2, 9, 4, 1]
    bins = pack_micro_batches(lengths, budget=10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 4  # 31 tokens need >= 4 bins of 10; first-fit-decreasing reaches it
    assert pack_micro_batches([12, 3], budget=10) == [[0], [1]]  # oversize sample alone, never split


def test_balance_shards_balances_tokens():
    shards = balance_shards([8, 1, 1, 4, 4, 2], 2)
    loads = [sum([8, 1, 1, 4, 4, 2][i] for i in s) for s in shards]
    assert sorted(i for s in shards for i in s) == list(range(6)) and max(loads) - min(loads) <= 1


def test_collate_targets_only_response_tokens_with_restarting_positions():
    pb = collate([rl_sample([1, 5], [6, 7], x=[0.1, 0.2]), rl_sample([1, 9, 9], [3], x=[0.3])], ("x",))
    assert pb.input_ids.tolist() == [[1, 5, 6, 7, 1, 9, 9, 3]]
    assert pb.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2, 3]]
    assert pb.logit_pos.tolist() == [1, 2, 6] and pb.targets.tolist() == [6, 7, 3]
    assert pb.token_seq.tolist() == [0, 0, 1] and pb.counts == [2, 1]
    torch.testing.assert_close(pb.fields["x"], torch.tensor([0.1, 0.2, 0.3]))
    assert [a.tolist() for a in pb.split(torch.tensor([1.0, 2.0, 3.0]))] == [[1.0, 2.0], [3.0]]


def test_collate_lays_samples_out_in_rows_padded_to_the_longest():
    samples = [rl_sample([1, 5], [6, 7]), rl_sample([1, 9, 9], [3]), rl_sample([1], [4, 4, 4, 4, 2])]
    pb = collate(samples, row_tokens=5)  # longest sample (6 tokens) sets the row length: rows [2], [0], [1]
    assert pb.input_ids.tolist() == [[1, 4, 4, 4, 4, 2], [1, 5, 6, 7, 0, 0], [1, 9, 9, 3, 0, 0]]
    assert pb.position_ids.tolist() == [[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 0, 1], [0, 1, 2, 3, 0, 1]]
    # targets stay in sample order; positions index the flattened rows
    assert pb.targets.tolist() == [6, 7, 3, 4, 4, 4, 4, 2] and pb.counts == [2, 1, 5]
    assert pb.logit_pos.tolist() == [7, 8, 14, 0, 1, 2, 3, 4]
    flat = pb.input_ids.flatten()
    assert (flat[pb.logit_pos + 1] == pb.targets).all()  # each logit position is the token before its target


def test_collate_rejects_bad_samples_with_reasons():
    with pytest.raises(ValueError, match="loss_mask"):
        collate([{"ids": [1, 2], "loss_mask": [1, 1]}])
    with pytest.raises(ValueError, match="field 'x'"):
        collate([rl_sample([1], [2, 3], x=[0.0])], ("x",))
    with pytest.raises(ValueError, match="response"):
        rl_sample([1], [])
    assert collate([dummy_sample(("w",))], ("w",)).fields["w"].tolist() == [0.0]


def test_packed_logprobs_equal_unpacked(tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(make_tiny_qwen2(str(tmp_path)), dtype=torch.float32).eval()
    samples = [rl_sample([1, 20, 30], [40, 50, 2]), rl_sample([1, 7], [8]), rl_sample([1, 11, 12, 13], [14, 15])]
    with torch.no_grad():
        packed = collate(samples).split(gather_logp(*_logits_targets(model, collate(samples))))
        rows = collate(samples, row_tokens=6)  # 3 rows, two of them with a padded tail
        assert rows.input_ids.shape[0] == 3
        in_rows = rows.split(gather_logp(*_logits_targets(model, rows)))
        alone = [collate([s]).split(gather_logp(*_logits_targets(model, collate([s]))))[0] for s in samples]
    for p, r, a in zip(packed, in_rows, alone):
        torch.testing.assert_close(torch.tensor(p), torch.tensor(a), atol=1e-5, rtol=0)
        torch.testing.assert_close(torch.tensor(r), torch.tensor(a), atol=1e-5, rtol=0)
    # and a padded, attention-masked forward of sample 0 agrees too
    ids = torch.tensor([[1, 20, 30, 40, 50, 2, 0, 0]])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=(torch.arange(8) < 6).long()[None]).logits[0]
    ref = torch.log_softmax(logits[2:5], -1).gather(-1, ids[0, 3:6, None]).squeeze(-1)
    torch.testing.assert_close(torch.tensor(packed[0]), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_shared_prompt_layout_gives_each_sample_its_own_logprobs(tmp_path, attn):
    """Eager attention adds the mask to the scores: a boolean mask there masked nothing (4.9 nats off)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(make_tiny_qwen2(str(tmp_path), init_std=0.5), dtype=torch.float32,
                                                 attn_implementation=attn).eval()
    assert model.config._attn_implementation == attn
    samples = [rl_sample([1, 5, 6], [7, 8, 2]), rl_sample([1, 5, 6], [9, 2]), rl_sample([1, 4], [3, 3, 3]),
               rl_sample([1, 5, 6], [10, 11, 12, 2])]
    with torch.no_grad():
        alone = [collate([s]).split(gather_logp(*_logits_targets(model, collate([s]))))[0] for s in samples]
        for row_tokens in (None, 8, 4):
            pb = collate(samples, row_tokens=row_tokens, share_prompts=True)
            shared = pb.split(gather_logp(*_logits_targets(model, pb)))
            for s, a in zip(shared, alone):
                torch.testing.assert_close(torch.tensor(s), torch.tensor(a), atol=1e-5, rtol=0)
    one_row = collate(samples, share_prompts=True)  # prompt [1, 5, 6] once for its three samples
    assert one_row.input_ids.tolist() == [[1, 5, 6, 7, 8, 2, 9, 2, 10, 11, 12, 2, 1, 4, 3, 3, 3]]
    assert one_row.position_ids.tolist() == [[0, 1, 2, 3, 4, 5, 3, 4, 3, 4, 5, 6, 0, 1, 2, 3, 4]]
    mask = one_row.attention_mask[0, 0]
    assert mask[6, :3].all() and not mask[6, 3:6].any() and mask[6, 6]  # sample 2 sees the prompt, not sample 1
    assert not mask[12, :12].any()  # the next unit sees nothing before it
    assert shared_units(samples, budget=8) == ([[0, 1], [3], [2]], [8, 7, 5])  # split when a unit would exceed
    # samples longer than row_tokens widen the row to the longest one, and still share prompts within it
    long = [rl_sample([1, 5, 6], [7] * 6), rl_sample([1, 5, 6], [8, 2]), rl_sample([1, 5, 6], [9, 2])]
    assert collate(long, row_tokens=4, share_prompts=True).input_ids.tolist() == [
        [1, 5, 6, 7, 7, 7, 7, 7, 7], [1, 5, 6, 8, 2, 9, 2, 0, 0]]


def test_shared_prompts_refused_under_attention_that_ignores_4d_masks(tmp_path):
    from types import SimpleNamespace

    from learner.batching import check_share_prompts

    with pytest.raises(ValueError, match="flash_attention_2.*learner.share_prompts=false"):
        check_share_prompts(SimpleNamespace(config=SimpleNamespace(_attn_implementation="flash_attention_2")))
    check_share_prompts(SimpleNamespace(config=SimpleNamespace(_attn_implementation="eager")))


def _logits_targets(model, pb):
    return target_logits(model, pb, 1.0), pb.targets
