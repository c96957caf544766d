"""Advantage estimators and reward shaping: pure torch functions, one per algorithm.

Shapes: N sequences, T response tokens (right-padded), `mask` is 1 on real response tokens.
- GRPO: Shao et al. 2024, DeepSeekMath, https://arxiv.org/abs/2402.03300 (Sec. 4.1.2, outcome supervision).
- Dr.GRPO: Liu et al. 2025, Understanding R1-Zero-Like Training, https://arxiv.org/abs/2503.20783 (Eq. 3).
- RLOO: Ahmadian et al. 2024, Back to Basics, https://arxiv.org/abs/2402.14740 (Eq. 6).
- REINFORCE++: Hu 2025, https://arxiv.org/abs/2501.03262 (Eqs. 5-7).
- GAE: Schulman et al. 2016, https://arxiv.org/abs/1506.02438 (Eq. 16).
- Overlong shaping: Yu et al. 2025, DAPO, https://arxiv.org/abs/2503.14476 (Eq. 13).
`ADVANTAGES` maps the config name to an adapter over `AdvInputs`; the group picks one at config load.
"""

from dataclasses import dataclass
from typing import Callable

import torch


def _group_stats(rewards: torch.Tensor, group_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample group mean, unbiased group std and group size, each (N,)."""
    _, inv, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    n = counts.to(rewards.dtype)[inv]  # (N,)
    mean = torch.zeros_like(counts, dtype=rewards.dtype).index_add_(0, inv, rewards)[inv] / n  # (N,)
    sq = torch.zeros_like(counts, dtype=rewards.dtype).index_add_(0, inv, (rewards - mean) ** 2)[inv]  # (N,)
    std = torch.sqrt(sq / (n - 1).clamp(min=1))  # (N,)
    return mean, std, n


def grpo_adv(rewards: torch.Tensor, group_ids: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """A_i = (r_i - mean(r_group)) / (std(r_group) + eps) (DeepSeekMath Sec. 4.1.2). (N,) -> (N,)"""
    mean, std, _ = _group_stats(rewards, group_ids)
    return (rewards - mean) / (std + eps)


def dr_grpo_adv(rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """A_i = r_i - mean(r_group): Dr.GRPO drops the std division (Eq. 3). (N,) -> (N,)"""
    mean, _, _ = _group_stats(rewards, group_ids)
    return rewards - mean


def rloo_adv(rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """A_i = r_i - 1/(k-1) sum_{j != i} r_j, the leave-one-out baseline (RLOO Eq. 6). (N,) -> (N,)"""
    mean, _, n = _group_stats(rewards, group_ids)
    if bool((n < 2).any()):
        raise ValueError("rloo needs >= 2 samples per group (group_ids); raise the rollout's samples per prompt")
    return n / (n - 1) * (rewards - mean)  # == r_i - (sum_g - r_i) / (n - 1)


def discounted_returns(token_rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = sum_{s >= t} gamma^(s-t) r_s over the masked tokens. (N, T) -> (N, T)"""
    returns = torch.zeros_like(token_rewards)  # (N, T)
    running = torch.zeros_like(token_rewards[:, 0])  # (N,)
    for t in reversed(range(token_rewards.shape[1])):
        running = token_rewards[:, t] + gamma * running * mask[:, t]
        returns[:, t] = running * mask[:, t]
    return returns


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(x - mean) / (std + eps) with mean and unbiased std over the masked entries; 0 off the mask. (N, T)"""
    valid = x[mask.bool()]  # (n_tokens,)
    std = valid.std() if valid.numel() > 1 else torch.zeros(())
    return (x - valid.mean()) / (std + eps) * mask


def reinforce_pp_adv(
    token_rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, eps: float = 1e-6
) -> torch.Tensor:
    """REINFORCE++: returns-to-go of token rewards (outcome at the last token, -beta*KL per token), then
    whitened with the mean/std of all valid tokens in the global batch (Eqs. 5-7). (N, T) -> (N, T)"""
    return whiten(discounted_returns(token_rewards, mask, gamma), mask, eps)


def gae_adv(
    token_rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> torch.Tensor:
    """delta_t = r_t + gamma V_{t+1} - V_t; A_t = sum_l (gamma lam)^l delta_{t+l} (GAE Eq. 16); V after the last
    token is 0. Returns for the critic are A + V; the policy gets A whitened over the batch's tokens (as the PPO
    implementations do, `algo.gae_whiten`). (N, T) -> (N, T)"""
    adv = torch.zeros_like(token_rewards)  # (N, T)
    next_adv = torch.zeros_like(token_rewards[:, 0])  # (N,)
    next_value = torch.zeros_like(token_rewards[:, 0])  # (N,)
    for t in reversed(range(token_rewards.shape[1])):
        m = mask[:, t]  # (N,)
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]
        next_adv = (delta + gamma * lam * next_adv) * m
        next_value = values[:, t] * m
        adv[:, t] = next_adv
    return adv


def overlong_penalty(resp_lens: torch.Tensor, max_len: int, buffer_len: int, penalty: float = 1.0) -> torch.Tensor:
    """DAPO soft overlong punishment (Eq. 13), scaled by `penalty`: 0 up to max_len - buffer_len, then linear
    down to -penalty at max_len, -penalty beyond. Added to the reward. (N,) -> (N,)"""
    start = max_len - buffer_len
    ramp = (start - resp_lens.to(torch.float32)) / buffer_len  # (N,), in [-1, 0] inside the buffer
    out = torch.where(resp_lens <= start, torch.zeros_like(ramp), ramp)
    return penalty * torch.where(resp_lens > max_len, torch.full_like(ramp, -1.0), out)


def length_reward(correct: torch.Tensor, resp_lens: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """Kimi k1.5 length reward (arXiv:2501.12599, Sec. 2.3.3), per group of responses to one prompt:
    lambda_i = 0.5 - (len_i - min_len) / (max_len - min_len); a correct response gets lambda_i, a wrong one
    min(0, lambda_i), so shorter correct answers gain and long wrong ones lose; 0 where all lengths are equal.
    Scaled by algo.length_coef and added to the reward. (N,) bool, (N,), (N,) -> (N,)"""
    lens = resp_lens.to(torch.float32)  # (N,)
    out = torch.zeros_like(lens)
    for g in torch.unique(group_ids):
        idx = group_ids == g
        lo, hi = lens[idx].min(), lens[idx].max()
        if hi > lo:
            lam = 0.5 - (lens[idx] - lo) / (hi - lo)  # (n,) in [-0.5, 0.5]
            out[idx] = torch.where(correct[idx], lam, lam.clamp(max=0.0))
    return out


@dataclass(frozen=True)
class AdvInputs:
    """What the driver has when computing advantages for a whole rollout batch."""

    token_rewards: torch.Tensor  # (N, T): outcome reward on each last token, minus kl_coef * KL if kl_in=reward
    mask: torch.Tensor  # (N, T)
    group_ids: torch.Tensor  # (N,)
    values: torch.Tensor | None  # (N, T) critic values, gae only
    gamma: float
    lam: float
    eps: float
    rewards: torch.Tensor | None = None  # (N,) the outcome rewards when no per-token term (KL) was added to them

    @property
    def seq_rewards(self) -> torch.Tensor:
        """(N,) per-sample reward: the outcome rewards as given, else the token rewards summed."""
        return self.rewards if self.rewards is not None else (self.token_rewards * self.mask).sum(-1)


def _per_token(adv: torch.Tensor, x: AdvInputs) -> torch.Tensor:
    return adv[:, None] * x.mask  # (N, T)


ADVANTAGES: dict[str, Callable[[AdvInputs], torch.Tensor]] = {
    "grpo": lambda x: _per_token(grpo_adv(x.seq_rewards, x.group_ids, x.eps), x),
    "dr_grpo": lambda x: _per_token(dr_grpo_adv(x.seq_rewards, x.group_ids), x),
    "rloo": lambda x: _per_token(rloo_adv(x.seq_rewards, x.group_ids), x),
    "reinforce_pp": lambda x: reinforce_pp_adv(x.token_rewards, x.mask, x.gamma, x.eps),
    "gae": lambda x: gae_adv(x.token_rewards, x.values, x.mask, x.gamma, x.lam),
}
