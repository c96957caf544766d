"""The run config: one typed, frozen schema for a whole rlvr run, loaded from a YAML recipe plus overrides.

Each package owns its section (actors.config, learner.config, cluster.data.loaders); this module composes them
with the controller's own sections and checks the rules that span sections. Everything is validated before
any Ray actor starts.

    cfg = load_config("configs/local.yaml", ["sampling.n=8"])
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from actors.config import RolloutConfig, SamplingConfig
from cluster.config_error import ConfigError
from cluster.data.spec import DatasetSpec
from cluster.overrides import apply_overrides, format_validation_error, load_yaml
from learner.config import AlgoConfig, LearnerConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddedModelConfig(_Section):
    """The built-in tiny reasoner: tokenizer, model and prior are built here, no download."""

    task: Literal["arith", "code"] = Field(
        "arith", description="procedural task family: 'arith' (addition, data name 'embedded') or 'code' (program "
                             "synthesis scored by the code sandbox, data name 'embedded_code')")
    size: Literal["tiny", "small", "medium"] = Field(
        "small", description="model size preset of cluster.embedded.model: tiny 43K, small 791K, medium 2.4M params")
    prior: Literal["natural", "no_answer_form", "tool"] = Field(
        "natural", description="'no_answer_form' pre-trains a prior that never writes the final-answer marker; "
                               "'tool' one whose corpus also calls the calculator (configs/local_tool.yaml)")
    pretrain_steps: int = Field(1000, gt=0, description="SFT steps of the prior")
    pretrain_lr: float = Field(3e-3, gt=0, description="SFT learning rate of the prior")
    pretrain_batch: int = Field(64, gt=0, description="sequences per SFT step")
    corpus_size: int = Field(20000, gt=0, description="problems in the pre-training corpus")
    seed: int = Field(0, description="seed of the prior's initialisation and corpus (apart from train.seed)")

    @model_validator(mode="after")
    def _prior_fits_task(self):
        if self.task == "code" and self.prior != "natural":
            raise ValueError(f"model.embedded.prior={self.prior!r} is an arithmetic prior; with task 'code' "
                             "set model.embedded.prior='natural'")
        return self
    cache_dir: Optional[str] = Field(
        None, description="where pre-trained priors are cached by settings hash; null: the user cache "
                          "($RLVR_CACHE_DIR, else $XDG_CACHE_HOME/rlvr, else ~/.cache/rlvr; + /priors)")


class ModelConfig(_Section):
    """The policy to post-train: an HF directory, a hub name, an rlvr checkpoint, or the embedded builder."""

    path: Optional[str] = Field(None, description="HF directory, hub id or rlvr checkpoint dir; omit with 'embedded'")
    embedded: Optional[EmbeddedModelConfig] = Field(None, description="build and pre-train the built-in model")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.embedded is None):
            raise ValueError("set exactly one of model.path (an HF dir / hub id) or model.embedded (the built-in model)")
        return self


class DataConfig(_Section):
    """Prompt sources: training mix and held-out evaluation sets."""

    train: list[DatasetSpec] = Field(description="training prompt sources, mixed by their weights")
    eval: list[DatasetSpec] = Field(default_factory=list, description="held-out sets evaluated before/after/every N")
    shuffle: bool = Field(True, description="reshuffle training prompts every epoch")


class WeightSyncConfig(_Section):
    """How new weights travel from learner rank 0 to the engines."""

    transport: Literal["object_store", "collective", "cuda_ipc"] = Field(
        "object_store", description="weight-sync transport; 'cuda_ipc' needs GPU engines colocated with the learner")
    bucket_mb: float = Field(64.0, gt=0, description="max megabytes per bucket")
    timeout_s: float = Field(120.0, gt=0, description="a push not acknowledged by an engine in this time fails")


class TrainConfig(_Section):
    """The RL loop."""

    steps: int = Field(gt=0, description="RL steps (one rollout batch + update(s) each)")
    prompts_per_step: int = Field(gt=0, description="prompts per rollout batch; samples = prompts_per_step * sampling.n")
    schedule: Literal["sync", "async"] = Field(
        "sync", description="'async' generates step t+1 with policy v_t while step t trains (one version stale; "
                            "algo.tis_cap defaults to 2.0 then, to correct it)")
    seed: int = Field(0, description="seed for data order, sampling and initialisation")
    reward_timeout_s: float = Field(5.0, gt=0, description="per-sample verifier timeout")
    reward_workers: int = Field(2, gt=0, description="verifier worker processes")
    dynamic_sampling: bool = Field(False, description="DAPO: drop groups whose rewards all agree and refill")
    checkpoint_every: int = Field(0, ge=0, description="checkpoint every N steps (0: only at the end)")
    keep_checkpoints: int = Field(2, gt=0, description="retain the last K checkpoints")
    eval_every: int = Field(0, ge=0, description="evaluate the current policy every N steps (0: before/after only)")
    samples_per_step_logged: int = Field(
        16, ge=0, description="completions written to samples.jsonl per step, in prompt order (whole groups first)")
    zero_signal_warn_steps: int = Field(
        3, ge=1, description="warn when every reward of a step is identical (no learning signal) this many steps "
                             "in a row")
    zero_signal_stop_steps: int = Field(
        20, ge=0, description="stop the run after this many such steps in a row (0: never stop)")
    weight_sync: WeightSyncConfig = Field(default_factory=WeightSyncConfig, description="weight-sync settings")


class SupportConfig(_Section):
    """pass@k / maj@k for k up to n of the prior and the final policy (cluster/eval/support.py); n=0 turns it off."""

    n: int = Field(0, ge=0, description="samples per problem before and after training (0: no support curves)")
    problems: int = Field(50, gt=0, description="the first this many held-out problems of data.eval")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the support samples")


class EvalConfig(_Section):
    """Held-out evaluation during training (before, after, every train.eval_every steps): accuracy over all
    samples and mean response length, and (eval.support) pass@k / maj@k up to n of the prior and the final policy.
    Token budgets and bootstrap intervals are `rlvr eval`'s (cluster/eval/config.py)."""

    sampling: Optional[SamplingConfig] = Field(None, description="eval sampling; default: greedy, n=1")
    support: SupportConfig = Field(default_factory=SupportConfig, description="support vs sharpening curves")


class OutputConfig(_Section):
    """Where a run writes."""

    dir: str = Field("runs", description="parent directory of run directories")
    name: Optional[str] = Field(None, description="run directory name (default: recipe name + timestamp)")
    tensorboard: bool = Field(True, description="also write TensorBoard event files")
    wandb_project: Optional[str] = Field(None, description="log to Weights & Biases under this project")


class RayConfig(_Section):
    """Which Ray runtime to use and what it may hold."""

    address: Optional[str] = Field(None, description="existing cluster address; None starts a local runtime")
    num_cpus: Optional[float] = Field(None, gt=0, description="CPUs of the local runtime (default: all)")
    num_gpus: Optional[int] = Field(None, ge=0, description="GPUs of the local runtime (default: detected)")
    colocate: bool = Field(False, description="engines and learner share GPUs; engines sleep while the learner trains")
    cpus_per_engine: float = Field(0.5, gt=0, description="CPU share reserved per rollout engine on CPU machines")
    cpus_per_learner: float = Field(0.5, gt=0, description="CPU share reserved per learner rank on CPU machines")


class RunConfig(_Section):
    """A whole run."""

    model: ModelConfig
    data: DataConfig
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    learner: LearnerConfig = Field(default_factory=LearnerConfig)
    algo: AlgoConfig = Field(default_factory=AlgoConfig)
    train: TrainConfig
    eval: EvalConfig = Field(default_factory=EvalConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, data):
        return derived_defaults(data)

    @model_validator(mode="after")
    def _cross_section_rules(self):
        n = self.sampling.n
        samples = self.train.prompts_per_step * n
        ranks_x_mb = self.learner.num_ranks * self.learner.mini_batches
        if samples % ranks_x_mb:
            raise ValueError(
                f"train.prompts_per_step * sampling.n = {samples} samples is not divisible by learner.num_ranks * "
                f"learner.mini_batches = {ranks_x_mb}; change train.prompts_per_step or learner.mini_batches")
        if (samples // self.learner.mini_batches) % n:
            raise ValueError(
                f"a mini-batch of {samples // self.learner.mini_batches} samples would split groups of "
                f"sampling.n={n}; choose learner.mini_batches dividing train.prompts_per_step={self.train.prompts_per_step}")
        if self.algo.advantage in ("grpo", "dr_grpo", "rloo") and n < 2:
            raise ValueError(f"algo.advantage={self.algo.advantage!r} needs groups: sampling.n must be >= 2, got {n}")
        _check_sampling_vs_learner(self)
        _check_embedded_data(self)
        t = self.train
        if t.zero_signal_stop_steps and t.zero_signal_stop_steps < t.zero_signal_warn_steps:
            raise ValueError(f"train.zero_signal_stop_steps={t.zero_signal_stop_steps} is below "
                             f"train.zero_signal_warn_steps={t.zero_signal_warn_steps}: the run would stop without a "
                             "warning; raise zero_signal_stop_steps, or set it to 0 to never stop")
        if self.train.weight_sync.transport == "cuda_ipc":
            r, bad = self.rollout, []
            if r.device != "cuda":
                bad.append(f"rollout.device='cuda' (got {r.device!r})")
            if not self.ray.colocate:
                bad.append("ray.colocate=true (got false)")
            if r.tensor_parallel_size != 1:
                bad.append(f"rollout.tensor_parallel_size=1 (got {r.tensor_parallel_size})")
            if r.num_engines > self.learner.num_ranks:
                bad.append(f"rollout.num_engines <= learner.num_ranks (got {r.num_engines} > {self.learner.num_ranks})")
            if bad:
                raise ValueError("train.weight_sync.transport='cuda_ipc' maps each engine onto the GPU memory of the "
                                 f"learner rank on its GPU and needs {', '.join(bad)}; set those, or use transport "
                                 "'collective' or 'object_store'")
        if self.ray.num_gpus is not None and self.rollout.device == "cuda":
            need = self.rollout.num_engines * self.rollout.tensor_parallel_size
            need += 0 if self.ray.colocate else self.learner.num_ranks
            if need > self.ray.num_gpus:
                raise ValueError(
                    f"the layout needs {need} GPUs (rollout.num_engines * rollout.tensor_parallel_size"
                    f"{'' if self.ray.colocate else ' + learner.num_ranks'}) but ray.num_gpus={self.ray.num_gpus}; "
                    "lower those or set ray.colocate=true")
        return self


ASYNC_TIS_CAP = 2.0  # Yao et al. 2025's truncation cap, the async schedule's default correction


def derived_defaults(data):
    """Defaults of one section that follow another, filled in only where the recipe leaves the key out:
    learner.temperature = sampling.temperature (the learner scores the distribution the engine sampled);
    algo.loss_norm_len = sampling.max_tokens for Dr.GRPO's constant normaliser (the generation budget);
    algo.tis_cap = 2.0 under train.schedule='async' (the one-version lag is corrected by default)."""
    if not isinstance(data, dict):
        return data
    sampling = data.get("sampling") or {}
    sampling = sampling.model_dump() if isinstance(sampling, BaseModel) else sampling
    learner, algo, train = (data.get(k) or {} for k in ("learner", "algo", "train"))
    if not all(isinstance(x, dict) for x in (sampling, learner, algo, train)):
        return data
    learner, algo = dict(learner), dict(algo)
    t = sampling.get("temperature", 1.0)
    if "temperature" not in learner and isinstance(t, (int, float)) and t > 0:
        learner["temperature"] = t
    if algo.get("loss_agg") == "seq_mean_token_sum_norm" and "loss_norm_len" not in algo:
        algo["loss_norm_len"] = sampling.get("max_tokens", SamplingConfig.model_fields["max_tokens"].default)
    if train.get("schedule") == "async" and "tis_cap" not in algo:
        algo["tis_cap"] = ASYNC_TIS_CAP
    return {**data, "learner": learner, "algo": algo}


def _check_sampling_vs_learner(cfg: RunConfig) -> None:
    """The learner's log-probs must describe the distribution the engine sampled from, or ratios are biased."""
    s, r = cfg.sampling, cfg.rollout
    if s.temperature > 0 and abs(cfg.learner.temperature - s.temperature) > 1e-9:
        raise ValueError(
            f"learner.temperature={cfg.learner.temperature} but sampling.temperature={s.temperature}: the learner "
            "divides its logits by learner.temperature to score the distribution the engine sampled; leave "
            "learner.temperature unset (it follows sampling.temperature) or set both alike")
    if r.logprobs_mode == "raw_logprobs" and s.temperature not in (0.0, 1.0):
        raise ValueError(
            f"rollout.logprobs_mode='raw_logprobs' returns temperature-1 log-probs but sampling.temperature="
            f"{s.temperature}: set rollout.logprobs_mode='processed_logprobs' (the default)")
    if cfg.algo.tis_cap is not None and (s.top_p < 1 or s.top_k > 0):
        raise ValueError(
            f"algo.tis_cap={cfg.algo.tis_cap} with sampling.top_p={s.top_p}, sampling.top_k={s.top_k}: the engine "
            "renormalises over the truncated token set, which the learner cannot reproduce, so the IS weight "
            "would be biased; set sampling.top_p=1 and sampling.top_k=0, or algo.tis_cap=null"
            + (" (train.schedule='async' defaults it to 2.0)" if cfg.train.schedule == "async" else ""))


EMBEDDED_DATA = {"arith": "embedded", "code": "embedded_code"}  # model.embedded.task -> its dataset name


def _check_embedded_data(cfg: RunConfig) -> None:
    """An embedded prior reads only its own task's prompts (the other task's characters are not in its vocabulary)."""
    if cfg.model.embedded is None:
        return
    task = cfg.model.embedded.task
    wrong = sorted({s.name for s in cfg.data.train + cfg.data.eval
                    if s.name in EMBEDDED_DATA.values() and s.name != EMBEDDED_DATA[task]})
    if wrong:
        raise ValueError(f"model.embedded.task={task!r} with data name(s) {wrong}: that task's data is "
                         f"{EMBEDDED_DATA[task]!r}; change data.train/data.eval or model.embedded.task")


def validate_config(data: dict) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, RunConfig)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML recipe, apply dotted overrides, validate. Raises ConfigError with a readable message."""
    return validate_config(apply_overrides(load_yaml(path), overrides or []))


def to_yaml(cfg: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
