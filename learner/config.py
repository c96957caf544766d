"""Learner configuration: engines (`LearnerConfig`), RL algorithm (`AlgoConfig`), PPO critic (`CriticConfig`).

Frozen pydantic models; unknown keys and impossible combinations are errors that name the key to change.
`cluster/config.py` composes these under `learner:` / `algo:` in the run YAML.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class CriticConfig(BaseModel):
    """Value model for PPO with GAE: the policy's backbone plus a scalar value head."""

    model_config = _FROZEN

    model_path: str | None = Field(None, description="HF dir of the critic backbone; None = the policy's model.")
    lr: float = Field(1e-5, gt=0, description="Critic AdamW learning rate.")
    value_clip: float | None = Field(0.2, description="PPO value clipping range around old values; None = off.")
    vf_coef: float = Field(1.0, gt=0, description="Weight of the value loss (the critic has its own optimizer).")


class LearnerConfig(BaseModel):
    """DeepSpeed engines of the learner group: one rank per Ray actor."""

    model_config = _FROZEN

    zero_stage: Literal[0, 1, 2, 3] = Field(2, description="DeepSpeed ZeRO stage of policy and critic.")
    dtype: Literal["fp32", "bf16"] = Field("fp32", description="Parameter/compute dtype (bf16 is fast only with AMX).")
    lr: float = Field(1e-6, gt=0, description="Policy AdamW learning rate.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay.")
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    warmup_steps: int = Field(0, ge=0, description="Linear LR warm-up, in optimizer steps.")
    grad_clip: float = Field(1.0, ge=0, description="Global grad-norm clip; 0 = off.")
    micro_batch_tokens: int = Field(4096, gt=0, description="Token budget of one packed micro-batch per rank.")
    row_tokens: int | None = Field(
        256, gt=0, description="A micro-batch is packed into rows of at most this many tokens, or of the longest "
                               "sample's length if that is more; attention costs row length squared. None = one "
                               "row per micro-batch.")
    share_prompts: bool = Field(
        True, description="Lay out samples with the same prompt (a GRPO group) as the prompt once plus each "
                          "response, masked so each response sees only the prompt and itself: the same "
                          "log-probs and gradients with the repeated prompt tokens skipped.")
    grad_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
    offload_optimizer: bool = Field(False, description="Keep optimizer state on CPU (ZeRO >= 1).")
    offload_param: bool = Field(False, description="Keep parameters on CPU (ZeRO-3 only).")
    num_ranks: int = Field(1, ge=1, description="Number of learner ranks (Ray actors).")
    num_threads: int | None = Field(
        None, ge=1, description="torch (OpenMP) threads per rank, for CPU learners; None = the cores this process "
                                "may run on divided among the ranks (1 on GPU learners), so the learner phase gets "
                                "the whole machine in the sync schedule (in async it overlaps the engines and the OS "
                                "shares the cores by demand). Threads wait passively, so they give way to an engine "
                                "sharing the cores instead of spinning against it.")
    ppo_epochs: int = Field(1, ge=1, description="Passes over each rollout batch.")
    mini_batches: int = Field(1, ge=1, description="Optimizer steps per epoch; the batch is split into this many.")
    temperature: float = Field(1.0, gt=0, description="Logits are divided by this before log-softmax; in a run "
                                                       "it defaults to sampling.temperature and must equal it.")
    seed: int = Field(0, description="Seed of model init, mini-batch shuffling and dropout.")
    call_timeout_s: float = Field(1800.0, gt=0, description="A rank that does not finish a call (step, checkpoint, "
                                                            "export) in this time is reported as hung.")

    @model_validator(mode="after")
    def _check(self) -> "LearnerConfig":
        if self.offload_param and self.zero_stage != 3:
            raise ValueError(f"learner.offload_param=True needs learner.zero_stage=3, got {self.zero_stage}")
        if self.offload_optimizer and self.zero_stage == 0:
            raise ValueError("learner.offload_optimizer=True needs learner.zero_stage in [1, 2, 3], got 0")
        return self


class AlgoConfig(BaseModel):
    """RL algorithm: advantage estimator, policy loss, KL, aggregation, DAPO extras, off-policy correction."""

    model_config = _FROZEN

    advantage: Literal["grpo", "dr_grpo", "rloo", "reinforce_pp", "gae"] = Field(
        "grpo", description="Advantage estimator (gae trains a critic)."
    )
    adv_eps: float = Field(1e-6, gt=0, description="Added to std in GRPO / REINFORCE++ normalisation.")
    clip_low: float = Field(0.2, gt=0, lt=1, description="Ratio clip below: 1 - clip_low.")
    clip_high: float = Field(0.2, gt=0, description="Ratio clip above: 1 + clip_high (DAPO clip-higher: 0.28).")
    dual_clip: float | None = Field(None, description="Dual-clip bound c > 1 for negative advantages; None = off.")
    entropy_coef: float = Field(0.0, ge=0, description="Entropy bonus weight.")
    kl_coef: float = Field(0.0, ge=0, description="KL-to-reference weight; > 0 builds a frozen reference engine.")
    kl_estimator: Literal["k1", "k2", "k3"] = Field("k3", description="Schulman's KL estimator.")
    kl_in: Literal["reward", "loss"] = Field("loss", description="Apply the KL penalty in the reward or the loss.")
    loss_agg: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"] = Field(
        "token_mean", description="How token losses are averaged over the mini-batch: token_mean (DAPO), "
                                  "seq_mean_token_mean (GRPO), seq_mean_token_sum (token sums, mean over "
                                  "sequences), seq_mean_token_sum_norm (Dr.GRPO: token sums / loss_norm_len)."
    )
    loss_norm_len: int | None = Field(
        None, gt=0, description="Constant divisor of seq_mean_token_sum_norm (Dr.GRPO: the generation budget); "
                                "a run config defaults it to sampling.max_tokens."
    )
    gae_whiten: bool = Field(True, description="advantage=gae: whiten advantages over the batch's response tokens "
                                               "(the critic's returns stay unwhitened).")
    gamma: float = Field(1.0, ge=0, le=1, description="Discount for reinforce_pp returns and GAE.")
    lam: float = Field(0.95, ge=0, le=1, description="GAE lambda.")
    overlong_max_len: int | None = Field(None, gt=0, description="DAPO overlong shaping: max response length.")
    overlong_buffer_len: int = Field(0, ge=0, description="DAPO soft-penalty buffer before overlong_max_len; 0 = off.")
    overlong_penalty: float = Field(1.0, ge=0, description="Scale of the DAPO overlong penalty (max penalty).")
    length_coef: float = Field(0.0, ge=0, description="Kimi k1.5 length reward scale (learner.advantages."
                                                      "length_reward): shorter correct answers within a group gain; "
                                                      "0 = off")
    overlong_filter: bool = Field(False, description="DAPO overlong filtering: samples cut at max_tokens "
                                                     "(finish_reason 'length') get no loss; they still count "
                                                     "in their group's advantage baseline.")
    tis_cap: float | None = Field(
        None, description="Truncated IS cap on exp(learner - rollout logprob); None = no correction."
    )
    critic: CriticConfig | None = Field(None, description="Critic for advantage=gae; required then, else unset.")

    @model_validator(mode="after")
    def _check(self) -> "AlgoConfig":
        if self.dual_clip is not None and self.dual_clip <= 1:
            raise ValueError(f"algo.dual_clip={self.dual_clip}: expected None or a value > 1")
        if self.tis_cap is not None and self.tis_cap < 1:
            raise ValueError(f"algo.tis_cap={self.tis_cap}: expected None or a value >= 1")
        if (self.advantage == "gae") != (self.critic is not None):
            raise ValueError(
                f"algo.advantage={self.advantage!r} with algo.critic={'set' if self.critic else 'unset'}: "
                "set algo.critic exactly when algo.advantage='gae'"
            )
        if self.overlong_buffer_len > 0:
            if self.overlong_max_len is None:
                raise ValueError("algo.overlong_buffer_len > 0 needs algo.overlong_max_len (the max response length)")
            if self.overlong_buffer_len > self.overlong_max_len:
                raise ValueError(
                    f"algo.overlong_buffer_len={self.overlong_buffer_len} exceeds "
                    f"algo.overlong_max_len={self.overlong_max_len}"
                )
        if self.kl_in == "reward" and self.kl_coef == 0:
            raise ValueError("algo.kl_in='reward' with algo.kl_coef=0: set algo.kl_coef > 0 or algo.kl_in='loss'")
        if self.loss_norm_len is not None and self.loss_agg != "seq_mean_token_sum_norm":
            raise ValueError(
                f"algo.loss_norm_len is only used by loss_agg='seq_mean_token_sum_norm', got {self.loss_agg!r}"
            )
        if self.loss_agg == "seq_mean_token_sum_norm" and self.loss_norm_len is None:
            raise ValueError("algo.loss_agg='seq_mean_token_sum_norm' divides by a constant: set algo.loss_norm_len "
                             "to the generation budget (a run config defaults it to sampling.max_tokens)")
        if self.kl_coef > 0 and self.kl_in == "loss" and self.kl_estimator == "k1":
            raise ValueError("algo.kl_estimator='k1' with algo.kl_in='loss': k1's gradient has zero expectation, so "
                             "it regularises nothing in the loss; use algo.kl_estimator='k3' or 'k2', or "
                             "algo.kl_in='reward' for k1")
        return self
