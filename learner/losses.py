"""Policy, value, KL, entropy and SFT losses: pure torch functions returning per-token values.

Token tensors are (n,) over the response tokens of a packed micro-batch (or any matching shape).
- Clipped surrogate: Schulman et al. 2017, PPO, https://arxiv.org/abs/1707.06347 (Eq. 7); separate low/high
  clip from DAPO (Yu et al. 2025, https://arxiv.org/abs/2503.14476, Eq. 10); dual clip from Ye et al. 2020,
  https://arxiv.org/abs/1912.09729 (Eq. 5).
- KL estimators k1/k2/k3: Schulman, "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html.
- Truncated IS: Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training".
- Aggregation: token-mean (DAPO Eq. 12), seq-mean-token-mean (GRPO Eq. 3), seq-mean-token-sum (verl's name:
  token sums, mean over sequences), seq-mean-token-sum-norm (Dr.GRPO, https://arxiv.org/abs/2503.20783: token
  sums divided by a constant, the generation budget). Each is a per-sequence weight so that sum(w * loss) over any
  sharding of the mini-batch equals the full-batch loss (what makes world size 1 and 2 take the same step).
"""

from typing import Callable

import torch


def ratio_of(logp: torch.Tensor, old_logp: torch.Tensor) -> torch.Tensor:
    """ratio = pi / pi_old = exp(log pi - log pi_old), computed once per micro-batch and shared by the surrogate
    and its statistics. (n,) -> (n,)"""
    return torch.exp(logp - old_logp)


def policy_loss_clipped(
    ratio: torch.Tensor,
    adv: torch.Tensor,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None = None,
) -> torch.Tensor:
    """-min(ratio A, clip(ratio, 1-clip_low, 1+clip_high) A), ratio = pi / pi_old (`ratio_of`); with dual clip,
    for A < 0 the loss is capped at -c A (i.e. max(.., c A) on the objective). (n,) -> (n,)"""
    surr1 = ratio * adv
    surr2 = torch.clamp(ratio, 1 - clip_low, 1 + clip_high) * adv
    loss = -torch.min(surr1, surr2)  # (n,)
    if dual_clip is not None:
        loss = torch.where(adv < 0, torch.min(loss, -dual_clip * adv), loss)
    return loss


def clip_fraction(ratio: torch.Tensor, adv: torch.Tensor, clip_low: float, clip_high: float) -> torch.Tensor:
    """1 where the clipped term is the active (gradient-free) branch of the surrogate, else 0. (n,) -> (n,)"""
    return (((ratio > 1 + clip_high) & (adv > 0)) | ((ratio < 1 - clip_low) & (adv < 0))).float()


def kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 = log pi(x) - log pi_ref(x), unbiased, can be negative. (n,) -> (n,)"""
    return logp - ref_logp


def kl_k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k2 = (log pi - log pi_ref)^2 / 2, biased, low variance. (n,) -> (n,)"""
    return 0.5 * (logp - ref_logp) ** 2


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 = exp(log pi_ref - log pi) - (log pi_ref - log pi) - 1, unbiased and >= 0. (n,) -> (n,)"""
    log_r = ref_logp - logp
    return torch.exp(log_r) - log_r - 1


KL_ESTIMATORS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "k1": kl_k1,
    "k2": kl_k2,
    "k3": kl_k3,
}


def tis_weight(old_logp: torch.Tensor, rollout_logp: torch.Tensor, cap: float) -> torch.Tensor:
    """min(pi_learner / pi_rollout, cap), detached: reweights tokens sampled by the rollout engine. (n,) -> (n,)"""
    return torch.exp(old_logp - rollout_logp).clamp(max=cap).detach()


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """H = -sum_v p_v log p_v. (n, V) -> (n,)"""
    logp = torch.log_softmax(logits.float(), dim=-1)  # (n, V)
    return -(logp.exp() * logp).sum(-1)


def value_loss_clipped(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, value_clip: float | None
) -> torch.Tensor:
    """0.5 max((V - R)^2, (clip(V, V_old +- eps) - R)^2) (PPO2 value clipping). (n,) -> (n,)"""
    loss = (values - returns) ** 2  # (n,)
    if value_clip is not None:
        clipped = old_values + torch.clamp(values - old_values, -value_clip, value_clip)
        loss = torch.max(loss, (clipped - returns) ** 2)
    return 0.5 * loss


def sft_token_loss(logp: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: -log p(target). (n,) -> (n,)"""
    return -logp


# Aggregation: per-sequence weights w_i such that loss = sum_i w_i sum_t loss_{i,t}. Inputs: resp_lens (N,).
def agg_token_mean(resp_lens: torch.Tensor, norm_len: int | None = None) -> torch.Tensor:
    """1 / sum_i |o_i|: every token in the mini-batch counts the same. (N,) -> (N,)"""
    return torch.full_like(resp_lens, 1.0 / resp_lens.sum().item(), dtype=torch.float32)


def agg_seq_mean_token_mean(resp_lens: torch.Tensor, norm_len: int | None = None) -> torch.Tensor:
    """1 / (N |o_i|): mean over tokens of each sequence, then mean over sequences. (N,) -> (N,)"""
    return 1.0 / (len(resp_lens) * resp_lens.to(torch.float32))


def agg_seq_mean_token_sum(resp_lens: torch.Tensor, norm_len: int | None = None) -> torch.Tensor:
    """1 / N: token sums, mean over sequences. (N,) -> (N,)"""
    return torch.full_like(resp_lens, 1.0 / len(resp_lens), dtype=torch.float32)


def agg_seq_mean_token_sum_norm(resp_lens: torch.Tensor, norm_len: int | None = None) -> torch.Tensor:
    """1 / (N L): token sums divided by a constant L (Dr.GRPO's generation budget, the same every step), mean
    over sequences. (N,) -> (N,)"""
    if norm_len is None:
        raise ValueError("seq_mean_token_sum_norm needs norm_len (algo.loss_norm_len, the generation budget)")
    return torch.full_like(resp_lens, 1.0 / (len(resp_lens) * norm_len), dtype=torch.float32)


LOSS_AGGREGATIONS: dict[str, Callable[[torch.Tensor, int | None], torch.Tensor]] = {
    "token_mean": agg_token_mean,
    "seq_mean_token_mean": agg_seq_mean_token_mean,
    "seq_mean_token_sum": agg_seq_mean_token_sum,
    "seq_mean_token_sum_norm": agg_seq_mean_token_sum_norm,
}
