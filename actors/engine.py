"""One rollout engine: a plain class owning an in-process `vllm.LLM`, plus its thin Ray actor wrapper.

    engine = RolloutEngine("/path/to/hf_model", RolloutConfig(dtype="float32"))
    groups = engine.generate([[1, 5, 6]], SamplingConfig(n=4, max_tokens=32))  # [Group of 4 record.rollout.Sample]

vLLM runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0) so pushed tensors reach the model without a
copy; vLLM changes its host process (LD_PRELOAD, torch.set_num_threads becomes a no-op), so run engines in
their own Ray actor (`RolloutEngineActor`), not in a learner or test process.
"""

import os

import ray

from actors.config import RolloutConfig, SamplingConfig
from actors.types import StaleWeightsError
from record.rollout import Group, Sample, ids_array
from actors.weight_sync import (CollectiveReceiver, Meta, iter_cuda_ipc_buckets, iter_object_store_buckets,
                                 reload_weights)


def _set_vllm_env(cfg: RolloutConfig) -> None:
    """Environment vLLM reads at import/start; must run before `import vllm`."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if cfg.enforce_eager:
        os.environ["TORCHDYNAMO_DISABLE"] = "1"  # otherwise g++ compiles kernels for 20-80 s at start
    # The KV budget comes from rollout.kv_cache_gib only; this legacy variable would override it.
    os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None)


def set_cpu_threads(n: int) -> None:
    """The engine's OpenMP thread count. vLLM's CPU worker replaces `torch.set_num_threads` with a no-op at start
    (it expects to bind threads itself, which it does only in multiprocess mode), so call torch's own binding."""
    import torch

    torch._C.set_num_threads(n)


def sampling_params(sampling: SamplingConfig, prompt_indices: list[int]):
    """vLLM SamplingParams per prompt. With a seed, prompt i gets seed + i*n: vLLM seeds its j-th sample with
    seed+j, so spacing by n keeps streams disjoint, and results do not depend on the engine split.
    Without stop strings vLLM need not detokenize step by step (nor decode every sampled token for its
    log-prob entry): the engine decodes each finished response once instead, 10-20% of a small model's step."""
    from vllm import SamplingParams

    def make(seed):
        return SamplingParams(
            n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
            max_tokens=sampling.max_tokens, min_tokens=sampling.min_tokens, ignore_eos=sampling.ignore_eos,
            stop=list(sampling.stop) or None,
            stop_token_ids=list(sampling.stop_token_ids) or None, seed=seed, logprobs=0,
            detokenize=bool(sampling.stop))

    if sampling.seed is None:
        return make(None)
    return [make(sampling.seed + i * sampling.n) for i in prompt_indices]


class RolloutEngine:
    """Generates samples with sampled-token log-probs; loads pushed weights without a restart."""

    def __init__(self, model_path: str, cfg: RolloutConfig, engine_index: int = 0, tools: list | None = None):
        """`tools`: tools.base.Tool instances (the cluster builds them from rollout.tools); with any, generate()
        runs multi-turn rollouts (actors/multiturn.py)."""
        _set_vllm_env(cfg)
        from vllm import LLM

        self.cfg, self.model_path, self.engine_index = cfg, model_path, engine_index
        extra = {}
        if cfg.enable_sleep_mode:
            extra["enable_sleep_mode"] = True
        if cfg.device == "cpu":
            # A chunked prefill rewinds the per-request RNG offset, which CPU generators refuse ("CPU Generator
            # does not use offset") as soon as a seeded batch's prompts get split across steps.
            extra.update(enable_chunked_prefill=False, max_num_batched_tokens=max(4096, cfg.max_model_len))
        self.llm = LLM(
            model_path, dtype=cfg.dtype, max_model_len=cfg.max_model_len, enforce_eager=cfg.enforce_eager,
            seed=cfg.seed + engine_index, tensor_parallel_size=cfg.tensor_parallel_size,
            kv_cache_memory_bytes=int(cfg.kv_cache_gib * 2**30), enable_prefix_caching=cfg.enable_prefix_caching,
            logprobs_mode=cfg.logprobs_mode, use_tqdm_on_load=False, **extra)  # no per-engine loading bar in the log
        if cfg.device == "cpu":
            set_cpu_threads(cfg.num_threads or max(1, len(os.sched_getaffinity(0)) // cfg.num_engines))
        self._version = 0
        self.receiver = CollectiveReceiver(self.llm)
        self.multiturn = None
        if tools:
            from actors.multiturn import MultiTurnGenerator

            self.multiturn = MultiTurnGenerator(self.llm, tools, cfg.max_turns, cfg.max_obs_tokens)

    # --- generation -------------------------------------------------------------------------------------
    def generate(self, prompt_token_ids: list[list[int]], sampling: SamplingConfig,
                 prompt_indices: list[int] | None = None, expected_version: int | None = None) -> list[Group]:
        """One rollout-record group (n samples) per prompt, in prompt order. `prompt_indices` label the prompts
        (Group.problem and Group.group_id; default 0..P-1);
        `expected_version` makes a restarted engine (serving its initial weights) refuse with StaleWeightsError."""
        if expected_version is not None and expected_version != self._version:
            raise StaleWeightsError(f"engine {self.engine_index} serves version {self._version}, "
                                    f"the pool expects {expected_version}")
        if self.receiver.in_push:
            raise RuntimeError(f"engine {self.engine_index}: generate during a weight push; finish the push first")
        indices = list(range(len(prompt_token_ids))) if prompt_indices is None else list(prompt_indices)
        if len(indices) != len(prompt_token_ids):
            raise ValueError(f"{len(prompt_token_ids)} prompts but {len(indices)} prompt_indices")
        self._check_lengths(prompt_token_ids, indices)
        if not prompt_token_ids:
            return []
        if self.multiturn is not None:
            seeds = [None if sampling.seed is None else sampling.seed + i * sampling.n for i in indices]
            return self.multiturn.generate(prompt_token_ids, indices, sampling, self._version, seeds)
        prompts = [{"prompt_token_ids": list(ids)} for ids in prompt_token_ids]
        outputs = self.llm.generate(prompts, sampling_params(sampling, indices), use_tqdm=False)
        if not sampling.stop:  # not detokenized by vLLM: decode each response once, as vLLM's own text would be
            texts = iter(self.llm.get_tokenizer().batch_decode([c.token_ids for out in outputs for c in out.outputs],
                                                               skip_special_tokens=True))
            for out in outputs:
                for c in out.outputs:
                    c.text = next(texts)
        return [Group(ids_array(out.prompt_token_ids), [self._sample(idx, c) for c in out.outputs], idx, idx)
                for idx, out in zip(indices, outputs)]

    def _check_lengths(self, prompt_token_ids: list[list[int]], indices: list[int]) -> None:
        # Checked up front so that a bad prompt fails the call cleanly instead of reaching the engine.
        for idx, ids in zip(indices, prompt_token_ids):
            if not ids:
                raise ValueError(f"prompt {idx} is empty; every prompt needs at least one token")
            if len(ids) >= self.cfg.max_model_len:
                raise ValueError(
                    f"prompt {idx} has {len(ids)} tokens; rollout.max_model_len={self.cfg.max_model_len} leaves no "
                    "room for a response. Encode prompts with actors.prompts.PromptEncoder (policy "
                    "rollout.prompt.overlong) or raise rollout.max_model_len")

    def _sample(self, prompt_index: int, completion) -> Sample:
        if completion.finish_reason not in ("stop", "length"):
            raise RuntimeError(f"prompt {prompt_index}: vLLM finished a sample with reason "
                               f"{completion.finish_reason!r}; expected 'stop' or 'length'")
        token_ids = completion.token_ids
        logprobs = [step[tok].logprob for step, tok in zip(completion.logprobs, token_ids)]
        return Sample.model_written(token_ids, logprobs, completion.finish_reason, self._version, completion.text)

    # --- weights in -------------------------------------------------------------------------------------
    # A failed or abandoned push leaves some layers new and fused ones half-written: the engine then reports
    # version -1, so the pool's version check refuses it until a full push (or a reload from refs) lands.
    def load_weights_from_refs(self, refs: list, version: int) -> int:
        """Object-store transport: load buckets (dict[name, tensor] refs) one at a time; returns the version."""
        self._abandon_push()
        self._version = -1
        reload_weights(self.llm, iter_object_store_buckets(refs))
        self._version = int(version)
        return self._version

    def load_weights_cuda_ipc(self, payloads: list, version: int) -> int:
        """CUDA IPC transport (engine colocated with the learner rank that exported `payloads`)."""
        import torch

        self._abandon_push()
        self._version = -1
        reload_weights(self.llm, iter_cuda_ipc_buckets(payloads, torch.cuda.current_device()))
        torch.cuda.synchronize()  # done reading the learner's buffers before it may free them
        self._version = int(version)
        return self._version

    def join_weight_group(self, master_addr: str, port: int, rank: int, world_size: int,
                          timeout_s: float = 120.0) -> int:
        """Collective transport: join the learner's gloo group as `rank` (1..N); returns the rank."""
        self._abandon_push()
        self.receiver.join(master_addr, port, rank, world_size, timeout_s)
        return rank

    def receive_bucket(self, meta: Meta, version: int | None = None) -> int:
        """Collective transport: receive one broadcast bucket; the last bucket of a push carries its version."""
        try:
            self.receiver.receive(meta, last=version is not None)
        except BaseException:
            self._version = -1
            raise
        if version is not None:
            self._version = int(version)
        return self._version

    def _abandon_push(self) -> None:
        if self.receiver.abort():
            self._version = -1

    # --- colocated GPUs: give the memory to the learner between rollouts ---------------------------------
    def sleep(self) -> None:
        """Level 1: offload weights to CPU and drop the KV cache; wake_up() restores both."""
        self.llm.sleep(level=1)

    def wake_up(self) -> None:
        self.llm.wake_up()
        self.llm.reset_prefix_cache()

    # --- state ------------------------------------------------------------------------------------------
    def version(self) -> int:
        return self._version

    def health(self) -> dict:
        return {"engine_index": self.engine_index, "version": self._version, "pid": os.getpid(),
                "in_group": self.receiver.group is not None, "in_push": self.receiver.in_push}


RolloutEngineActor = ray.remote(RolloutEngine)
