"""The eval config: which models, which datasets, how many samples, which k and token budgets (`rlvr eval`).

    rlvr eval configs/eval_local.yaml model.path=runs/local-20261129-103000/checkpoints/step-000040   # one model
    rlvr eval my_eval.yaml                                                        # `models:` lists checkpoints

`model: {path, name}` is the one-model shorthand (settable with `model.path=...`); `models: [{name, path}, ...]`
evaluates several models or checkpoints with the same settings and overlays them in the plots. Set exactly one.
The rollout, sampling, output and Ray sections are the training run's own (cluster/config.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from actors.config import RolloutConfig, SamplingConfig
from cluster.config import OutputConfig, RayConfig
from cluster.config_error import ConfigError
from cluster.data.spec import DatasetSpec
from cluster.eval.budget_forcing import DEFAULT_FORCING
from cluster.eval.pass_at_k import default_ks
from cluster.overrides import apply_overrides, format_validation_error, load_yaml

RESERVED_LABELS = ("overall", "macro")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalModel(_Section):
    """One model to evaluate."""

    path: str = Field(description="HF directory, rlvr checkpoint directory (with hf/), or hub id")
    name: Optional[str] = Field(None, description="label in results and plots (default: derived from path)")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        p = Path(self.path.rstrip("/"))
        return p.parent.name if p.name == "hf" and p.parent.name else p.name  # .../step-000020/hf -> step-000020


class BudgetForcingConfig(_Section):
    """s1-style budget forcing (cluster/eval/budget_forcing.py): cut the thinking at the budget and force a final answer."""

    enabled: bool = Field(False, description="also evaluate every token budget with a forced answer")
    forcing: str = Field(DEFAULT_FORCING, description="text appended after the cut thinking to elicit the answer")
    answer_tokens: int = Field(16, ge=1, description="max tokens of the forced answer (greedy, one per sample)")


class EvalRunConfig(_Section):
    """A whole `rlvr eval` run."""

    model: Optional[EvalModel] = Field(None, description="one model (shorthand; set model.path on the command line)")
    models: list[EvalModel] = Field(default_factory=list, description="several models/checkpoints, overlaid")
    datasets: list[DatasetSpec] = Field(description="evaluation sets (built-in names, 'jsonl' or 'hf')")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="engine pool, as in training")
    sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(n=4, seed=0),
                                     description="n samples per problem, temperature, max_tokens (largest budget)")
    ks: Optional[list[int]] = Field(None, description="k values for pass@k/maj@k (default: 1, 2, 4, ..., n)")
    token_budgets: list[int] = Field(default_factory=list, description="max_tokens sweep (see budget_sweep)")
    budget_sweep: Literal["prefix", "separate"] = Field(
        "prefix", description="prefix: generate once at sampling.max_tokens and cut every sample at each smaller "
                              "budget (one generation for the sweep); separate: one generation per budget")
    budget_forcing: BudgetForcingConfig = Field(default_factory=BudgetForcingConfig,
                                                description="forced-answer evaluation of every token budget")
    bootstrap: int = Field(1000, ge=1, description="bootstrap resamples (over problems) for 95% intervals")
    reward_timeout_s: float = Field(5.0, gt=0, description="per-sample verifier timeout")
    reward_workers: int = Field(2, gt=0, description="verifier worker processes")
    output: OutputConfig = Field(default_factory=lambda: OutputConfig(tensorboard=False),
                                 description="results go to output.dir/output.name (default: eval-<timestamp>)")
    ray: RayConfig = Field(default_factory=RayConfig, description="Ray runtime, as in training")

    @property
    def all_models(self) -> list[EvalModel]:
        return [self.model] if self.model is not None else list(self.models)

    @property
    def k_values(self) -> list[int]:
        return list(self.ks) if self.ks is not None else default_ks(self.sampling.n)

    @property
    def budgets(self) -> list[int]:
        """Every budget of the sweep, ascending; sampling.max_tokens (the main run) is always one of them."""
        return sorted(set(self.token_budgets) | {self.sampling.max_tokens})

    @model_validator(mode="after")
    def _rules(self):
        if (self.model is None) == (not self.models):
            raise ValueError("set exactly one of model (e.g. model.path=HF_DIR on the command line) or models "
                             "(a list of {name, path}); " + ("both are set" if self.model else "neither is set"))
        labels = [m.label for m in self.all_models]
        if dup := sorted({x for x in labels if labels.count(x) > 1}):
            raise ValueError(f"models: labels {dup} occur more than once; give each model a distinct name")
        if not self.datasets:
            raise ValueError("datasets is empty: list at least one, e.g. [{name: gsm8k, split: test, limit: 50}]")
        n = self.sampling.n
        if self.ks is not None:
            if not self.ks or any(not 1 <= k <= n for k in self.ks) or sorted(set(self.ks)) != list(self.ks):
                raise ValueError(f"ks={self.ks}: expected distinct ascending values in 1..sampling.n={n}; "
                                 "raise sampling.n or drop the larger k")
        bad = [b for b in self.token_budgets if not 1 <= b <= self.sampling.max_tokens]
        if bad:
            raise ValueError(f"token_budgets {bad}: each budget must be in 1..sampling.max_tokens="
                             f"{self.sampling.max_tokens} (the largest budget); raise sampling.max_tokens")
        longest = self.sampling.max_tokens + (self.budget_forcing.answer_tokens if self.budget_forcing.enabled else 0)
        if longest >= self.rollout.max_model_len:
            raise ValueError(f"sampling.max_tokens={self.sampling.max_tokens}"
                             f"{' + budget_forcing.answer_tokens' if self.budget_forcing.enabled else ''} = {longest} "
                             f"leaves no room for prompts in rollout.max_model_len={self.rollout.max_model_len}")
        return self


EVAL_ONLY_KEYS = ("datasets", "models", "ks", "token_budgets", "budget_forcing")  # no training recipe has these


def is_eval_config(data: dict) -> bool:
    """Whether a loaded YAML mapping is an eval config (`rlvr eval`) rather than a training recipe."""
    return any(k in data for k in EVAL_ONLY_KEYS)


def validate_eval_config(data: dict) -> EvalRunConfig:
    try:
        return EvalRunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, EvalRunConfig)) from None


def load_eval_config(path: str | Path, overrides: list[str] | None = None) -> EvalRunConfig:
    """Load an eval recipe, apply dotted overrides, validate. Raises ConfigError with a readable message."""
    return validate_eval_config(apply_overrides(load_yaml(path), overrides or []))
