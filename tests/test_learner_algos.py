"""Advantage, loss, KL, aggregation, shaping, dynamic-sampling and config checks against hand-computed values."""

import math

import pytest
import torch
from pydantic import ValidationError

from learner import advantages as A
from learner import losses as L
from learner.config import AlgoConfig, CriticConfig, LearnerConfig
from learner.dynamic_sampling import filter_groups


def close(x, expected, tol=1e-5):
    torch.testing.assert_close(torch.as_tensor(x, dtype=torch.float32),
                               torch.tensor(expected, dtype=torch.float32), atol=tol, rtol=0)


# Two interleaved groups: g0 = rewards [1, 0, 0, 1] (mean 0.5, unbiased std sqrt(1/3)), g1 = [3, 1].
REWARDS = torch.tensor([1.0, 3.0, 0.0, 0.0, 1.0, 1.0])
GROUPS = torch.tensor([0, 1, 0, 0, 1, 0])


def test_grpo_adv_normalises_within_each_group():
    a, b = 0.5 / math.sqrt(1 / 3), 1 / math.sqrt(2)
    close(A.grpo_adv(REWARDS, GROUPS, eps=0.0), [a, b, -a, -a, -b, a])


def test_grpo_adv_zero_when_rewards_equal():
    close(A.grpo_adv(torch.tensor([2.0, 2.0, 2.0]), torch.tensor([7, 7, 7])), [0.0, 0.0, 0.0])


def test_dr_grpo_adv_subtracts_group_mean_without_std():
    close(A.dr_grpo_adv(REWARDS, GROUPS), [0.5, 1.0, -0.5, -0.5, -1.0, 0.5])


def test_rloo_adv_uses_leave_one_out_baseline():
    # sample 0: 1 - mean(0, 0, 1) = 2/3; sample 2: 0 - mean(1, 0, 1) = -2/3; g1: 3 - 1, 1 - 3.
    close(A.rloo_adv(REWARDS, GROUPS), [2 / 3, 2.0, -2 / 3, -2 / 3, -2.0, 2 / 3])


def test_rloo_adv_rejects_singleton_groups():
    with pytest.raises(ValueError, match="rloo needs >= 2 samples"):
        A.rloo_adv(torch.tensor([1.0, 0.0]), torch.tensor([0, 1]))


TOKEN_R = torch.tensor([[-0.1, 0.0, 1.0], [0.2, -1.0, 0.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])


def test_discounted_returns_by_hand():
    # gamma 0.5: seq 0 -> [-0.1 + 0.5 * 0 + 0.25 * 1, 0 + 0.5, 1]; seq 1 -> [0.2 - 0.5, -1, 0 (pad)]
    close(A.discounted_returns(TOKEN_R, MASK, 0.5), [[0.15, 0.5, 1.0], [-0.3, -1.0, 0.0]])


def test_reinforce_pp_adv_whitens_returns_over_batch_tokens():
    returns = [0.9, 1.0, 1.0, -0.8, -1.0]  # gamma 1
    mean = sum(returns) / 5  # 0.22
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 4)
    z = [(r - mean) / std for r in returns]
    close(A.reinforce_pp_adv(TOKEN_R, MASK, gamma=1.0, eps=0.0), [z[:3], z[3:] + [0.0]])


def test_gae_adv_by_hand():
    r = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    v = torch.tensor([[0.5, 0.6, 0.7], [1.0, 1.0, 9.0]])  # 9.0 sits on padding and must be ignored
    m = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    # seq 0: deltas [0.9*0.6-0.5, 0.9*0.7-0.6, 1-0.7] = [0.04, 0.03, 0.3]; gamma*lam = 0.72
    a2 = 0.3
    a1 = 0.03 + 0.72 * a2
    a0 = 0.04 + 0.72 * a1
    # seq 1: deltas [0.9*1 - 1, 2 - 1] = [-0.1, 1.0]
    close(A.gae_adv(r, v, m, gamma=0.9, lam=0.8), [[a0, a1, a2], [-0.1 + 0.72, 1.0, 0.0]])


def test_overlong_penalty_is_zero_then_linear_then_full():
    lens = torch.tensor([5, 6, 8, 10, 12])  # max 10, buffer 4 -> ramp from 6 to 10
    close(A.overlong_penalty(lens, 10, 4), [0.0, 0.0, -0.5, -1.0, -1.0])
    close(A.overlong_penalty(lens, 10, 4, penalty=0.5), [0.0, 0.0, -0.25, -0.5, -0.5])


def test_advantage_table_covers_every_config_choice():
    choices = set(AlgoConfig.model_fields["advantage"].annotation.__args__)
    assert set(A.ADVANTAGES) == choices
    assert set(L.LOSS_AGGREGATIONS) == set(AlgoConfig.model_fields["loss_agg"].annotation.__args__)
    assert set(L.KL_ESTIMATORS) == set(AlgoConfig.model_fields["kl_estimator"].annotation.__args__)


def test_outcome_advantages_broadcast_over_response_tokens():
    token_r = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    x = A.AdvInputs(token_r, torch.tensor([[1.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 0]), None, 1.0, 0.95, 0.0)
    close(A.ADVANTAGES["dr_grpo"](x), [[0.5, 0.5], [-0.5, 0.0]])


def test_outcome_rewards_given_per_sample_equal_the_summed_token_rewards_exactly():
    torch.manual_seed(0)
    rewards, lens = torch.randn(6), torch.tensor([3, 1, 4, 2, 4, 1])
    mask = (torch.arange(4)[None] < lens[:, None]).float()
    token_r = torch.zeros(6, 4)
    token_r[torch.arange(6), lens - 1] = rewards
    gids = torch.tensor([0, 0, 0, 1, 1, 1])
    for name in ("grpo", "dr_grpo", "rloo"):
        summed = A.ADVANTAGES[name](A.AdvInputs(token_r, mask, gids, None, 1.0, 0.95, 1e-6))
        given = A.ADVANTAGES[name](A.AdvInputs(token_r, mask, gids, None, 1.0, 0.95, 1e-6, rewards))
        assert torch.equal(summed, given), name


# ratio, adv -> expected loss with clip_low 0.2, clip_high 0.28 (DAPO clip-higher)
CASES = [(1.5, 1.0, -1.28), (0.5, 1.0, -0.5), (0.5, -1.0, 0.8), (1.5, -1.0, 1.5), (1.1, 2.0, -2.2), (4.0, -1.0, 4.0)]


def test_policy_loss_clipped_by_hand():
    ratio, adv, expected = (torch.tensor(c) for c in zip(*CASES))
    loss = L.policy_loss_clipped(L.ratio_of(ratio.log(), torch.zeros(len(CASES))), adv, 0.2, 0.28)
    close(loss, expected.tolist())


def test_dual_clip_caps_loss_of_negative_advantages_at_c():
    ratio, adv, expected = (torch.tensor(c) for c in zip(*CASES))
    loss = L.policy_loss_clipped(L.ratio_of(ratio.log(), torch.zeros(len(CASES))), adv, 0.2, 0.28, dual_clip=3.0)
    close(loss, expected[:-1].tolist() + [3.0])


def test_clip_fraction_marks_gradient_free_tokens():
    ratio, adv, _ = (torch.tensor(c) for c in zip(*CASES))
    close(L.clip_fraction(L.ratio_of(ratio.log(), torch.zeros(len(CASES))), adv, 0.2, 0.28), [1, 0, 1, 0, 0, 0])


def test_kl_estimators_by_hand():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    close(L.kl_k1(logp, ref), [math.log(2)])
    close(L.kl_k2(logp, ref), [0.5 * math.log(2) ** 2])
    close(L.kl_k3(logp, ref), [0.5 + math.log(2) - 1])
    close(L.kl_k3(ref, ref), [0.0])


def test_tis_weight_truncates_at_cap():
    old = torch.tensor([0.6, 0.2]).log()
    rollout = torch.tensor([0.2, 0.4]).log()
    close(L.tis_weight(old, rollout, cap=2.0), [2.0, 0.5])


def test_entropy_of_uniform_logits_is_log_vocab():
    close(L.entropy_from_logits(torch.zeros(3, 8)), [math.log(8)] * 3)


def test_value_loss_clipped_by_hand():
    v, old, ret = torch.tensor([1.5]), torch.tensor([1.0]), torch.tensor([2.0])
    close(L.value_loss_clipped(v, old, ret, 0.2), [0.5 * (1.2 - 2.0) ** 2])
    close(L.value_loss_clipped(v, old, ret, None), [0.5 * 0.25])


@pytest.mark.parametrize("mode,norm_len,expected", [
    ("token_mean", None, (1 + 3 + 2 + 2 + 2 + 6) / 6),
    ("seq_mean_token_mean", None, ((1 + 3) / 2 + (2 + 2 + 2 + 6) / 4) / 2),
    ("seq_mean_token_sum", None, ((1 + 3) + 12) / 2),
    ("seq_mean_token_sum_norm", 10, ((1 + 3) / 10 + 12 / 10) / 2),
])
def test_loss_aggregation_by_hand(mode, norm_len, expected):
    token_loss = [torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0, 2.0, 6.0])]
    w = L.LOSS_AGGREGATIONS[mode](torch.tensor([2, 4]), norm_len)
    close(sum(wi * tl.sum() for wi, tl in zip(w, token_loss)), expected)


def test_dr_grpo_normaliser_is_the_same_constant_for_mini_batches_of_different_lengths():
    """Dr.GRPO divides token sums by the generation budget, not by each mini-batch's longest response."""
    short, long = torch.tensor([2, 3]), torch.tensor([2, 9])
    agg = L.LOSS_AGGREGATIONS["seq_mean_token_sum_norm"]
    close(agg(short, 16), [1 / 32, 1 / 32])
    close(agg(long, 16), [1 / 32, 1 / 32])
    with pytest.raises(ValueError, match="norm_len"):
        agg(short, None)


def test_whiten_uses_valid_tokens_only():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 99.0, 99.0]])
    m = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    vals = [1.0, 2.0, 3.0, 4.0]
    mean, std = sum(vals) / 4, math.sqrt(sum((v - 2.5) ** 2 for v in vals) / 3)
    z = [(v - mean) / std for v in vals]
    close(A.whiten(x, m, eps=0.0), [z[:3], [z[3], 0.0, 0.0]])


def test_filter_groups_drops_groups_whose_rewards_agree():
    kept, n = filter_groups([1, 1, 0, 1, 0, 0, 0.5, 0.5], [0, 0, 1, 1, 2, 2, 3, 3])
    assert (kept, n) == ([2, 3], 1)
    with pytest.raises(ValueError, match="one per sample"):
        filter_groups([1.0], [0, 1])


def test_mini_batches_hold_whole_groups():
    from learner.group import mini_batch_parts

    gids = [0, 1, 0, 2, 1, 2, 3, 3, 0, 1, 2, 3]
    parts = mini_batch_parts(gids, 2, seed=5)
    assert sorted(i for p in parts for i in p) == list(range(12)) and [len(p) for p in parts] == [6, 6]
    for p in parts:  # a group's samples never straddle two mini-batches
        assert all(sum(gids[i] == g for i in p) in (0, 3) for g in range(4))
    assert mini_batch_parts(gids, 1, seed=5) == [list(range(12))]
    with pytest.raises(ValueError, match="learner.mini_batches=5"):
        mini_batch_parts(gids, 5, seed=0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(dual_clip=1.0), "dual_clip"),
    (dict(advantage="gae"), "algo.critic"),
    (dict(critic=CriticConfig()), "algo.critic"),
    (dict(kl_in="reward"), "kl_coef"),
    (dict(overlong_buffer_len=4), "overlong_max_len"),
    (dict(loss_norm_len=8), "loss_norm_len"),
    (dict(loss_agg="seq_mean_token_sum_norm"), "loss_norm_len"),
    (dict(kl_coef=0.1, kl_estimator="k1"), "k1.*k3.*kl_in='reward'"),
    (dict(tis_cap=0.5), "tis_cap"),
    (dict(advantage="ppo2"), "advantage"),
    (dict(clip_lo=0.2), "clip_lo"),
])
def test_algo_config_rejects_impossible_settings(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        AlgoConfig(**kwargs)


def test_learner_config_rejects_offload_without_zero():
    with pytest.raises(ValidationError, match="zero_stage=3"):
        LearnerConfig(zero_stage=2, offload_param=True)
    with pytest.raises(ValidationError, match="offload_optimizer"):
        LearnerConfig(zero_stage=0, offload_optimizer=True)
    assert AlgoConfig(advantage="gae", critic=CriticConfig()).critic.vf_coef == 1.0


def test_length_reward_matches_kimi_k15_by_hand():
    from learner.advantages import length_reward

    correct = torch.tensor([True, True, False, True, True, False, False])
    lens = torch.tensor([2, 4, 6, 5, 5, 3, 9])
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    # group 0: lambda = 0.5 - (len - 2) / 4 = [0.5, 0, -0.5], the wrong one keeps its negative lambda;
    # group 1: equal lengths, no signal; group 2: both wrong: min(0, lambda) = [0, -0.5]
    assert length_reward(correct, lens, groups).tolist() == [0.5, 0.0, -0.5, 0.0, 0.0, 0.0, -0.5]
