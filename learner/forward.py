"""Forward passes over packed micro-batches and the per-token RL objective built from `losses.py`.

Used by the DeepSpeed worker (learner/worker.py). The parity test (tests/test_learner_engine.py) writes its own
plain-PyTorch loss from the paper formulas (sharing only `losses.entropy_from_logits`), so a mistake here
cannot hide by being shared.
"""

from typing import Callable

import torch

from learner.batching import PackedBatch
from learner.config import AlgoConfig
from learner.losses import policy_loss_clipped, tis_weight


def target_logits(model: torch.nn.Module, pb: PackedBatch, temperature: float) -> torch.Tensor:
    """Logits (fp32, divided by temperature) at the positions that predict each target token. -> (n, V)"""
    out = model(**pb.model_inputs(model_dtype(model)), use_cache=False)
    return out.logits.flatten(0, 1)[pb.logit_pos].float() / temperature  # (n, V)


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype the model computes in (DeepSpeed engines wrap the module)."""
    return next(getattr(model, "module", model).parameters()).dtype


def gather_logp(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) under the logits. (n, V), (n,) -> (n,)"""
    return torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).squeeze(-1)


def rl_token_loss(
    logp: torch.Tensor,
    ratio: torch.Tensor,
    entropy: torch.Tensor,
    f: dict[str, torch.Tensor],
    algo: AlgoConfig,
    kl_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Per-token loss: (truncated-IS weighted) clipped surrogate + KL to reference (kl_in=loss) - entropy bonus.
    `ratio` is pi / pi_old (losses.ratio_of); `f` holds per-token old_logp, adv, rollout_logp (with tis_cap),
    ref_logp (with kl_in=loss). -> (n,)"""
    loss = policy_loss_clipped(ratio, f["adv"], algo.clip_low, algo.clip_high, algo.dual_clip)
    if algo.tis_cap is not None:
        loss = loss * tis_weight(f["old_logp"], f["rollout_logp"], algo.tis_cap)
    if algo.kl_coef > 0 and algo.kl_in == "loss":
        loss = loss + algo.kl_coef * kl_fn(logp, f["ref_logp"])
    if algo.entropy_coef > 0:
        loss = loss - algo.entropy_coef * entropy
    return loss
