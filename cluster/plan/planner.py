"""Placement and memory plan of a run, on paper: which role lands on which node and GPU, and what each GPU holds.

    rlvr plan configs/gpu_qwen7b_r1zero_ppo.yaml --nodes 2 --gpus-per-node 8 --gpu-memory-gib 80

Pure: no Ray, no GPU, no weights (model shapes come from cluster/plan/model_specs.py). The layout follows
cluster/placement.py exactly: one bundle per GPU, filled in order (node 0 GPU 0, 1, ...; then node 1).
Separate layout: engine e takes bundles e*tp .. e*tp+tp-1, learner ranks the next num_ranks. Colocated:
learner rank i shares bundle i with an engine shard; the engine sleeps (weights to host RAM, KV freed)
while the learner trains, so a colocated GPU peaks at max(generate, train), not at the sum.

Every learner rank holds the policy, a frozen reference when algo.kl_coef > 0 (ZeRO-3 sharded if
learner.zero_stage=3, else a full copy) and a critic (backbone + value head) when algo.advantage='gae',
as learner/worker.py builds them. Memory per GPU (GiB), mixed precision = learner.dtype bf16:
  params       P*2 (fp32: P*4), divided by num_ranks under ZeRO-3, on the host with offload_param
  grads        P*2 (fp32: P*4), divided by num_ranks under ZeRO-2/3, on the host with offload_optimizer
  optimizer    Adam: P*12 (fp32 master + two moments; fp32 training: P*8), divided by num_ranks under
               ZeRO >= 1, on the host with offload_optimizer (ZeRO-Offload, arXiv:2101.06840)
  activations  34 bytes per token per hidden unit per layer for one micro-batch of learner.micro_batch_tokens
               (Korthikanti et al. arXiv:2205.05198, flash attention; 2 bytes + one layer with
               grad_checkpointing). Rough.
  logits       micro_batch_tokens * vocab * (dtype + 8 bytes): LM-head output plus fp32 logits and log-softmax.
  engine       weights P*dtype/tp, rollout.kv_cache_gib (vLLM's kv_cache_memory_bytes is per GPU), activations
               of one 8192-token forward (rough), the current weight-sync bucket
  runtime      1 GiB per process (CUDA context, NCCL and allocator slack); rough.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from cluster.config_error import ConfigError
from cluster.placement import gpu_slots, required_resources
from cluster.plan.model_specs import ModelSpec, model_spec

GIB = 1024**3
RUNTIME_GIB = 1.0
ENGINE_BATCH_TOKENS = 8192  # vLLM's profiling forward (max_num_batched_tokens) sizes its activation reserve
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "fp32": 4, "bf16": 2}


@dataclass
class GpuPlan:
    """One GPU: the roles on it and its estimated peak memory."""

    node: int
    gpu: int
    roles: list[str]
    memory: dict[str, float]  # GiB per item, everything that is ever resident on this GPU
    peak_gib: float  # colocated: max over the generate and train phases, else the sum


@dataclass
class Plan:
    model: ModelSpec
    nodes: int
    gpus_per_node: int
    gpu_memory_gib: float
    colocate: bool
    device: str
    gpus: list[GpuPlan] = field(default_factory=list)
    engine_memory: dict[str, float] = field(default_factory=dict)  # GiB on one engine GPU
    learner_memory: dict[str, float] = field(default_factory=dict)  # GiB on learner rank 0's GPU
    host_gib: dict[int, float] = field(default_factory=dict)  # offloaded state per node
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# ---- memory estimates ------------------------------------------------------------------------------------


def critic_params(spec: ModelSpec) -> int:
    """AutoModel backbone (the LM head is dropped unless tied to the embedding) plus a hidden->1 value head."""
    return spec.params - (0 if spec.tied else spec.vocab * spec.hidden) + spec.hidden + 1


def learner_activations(spec: ModelSpec, tokens: int, checkpointing: bool) -> float:
    """Bytes of one micro-batch's layer activations (rough; see the module docstring)."""
    per_layer = 34 * tokens * spec.hidden
    return float((2 * tokens * spec.hidden * spec.layers + per_layer) if checkpointing else per_layer * spec.layers)


def logits_bytes(spec: ModelSpec, tokens: int, dtype_bytes: int) -> float:
    """The LM head's output for every packed token, plus fp32 logits and log-softmax at the response tokens
    (learner/forward.py); counted at full length because response tokens dominate RL micro-batches."""
    return float(tokens * spec.vocab * (dtype_bytes + 8))


def learner_rank_memory(cfg, spec: ModelSpec, critic: ModelSpec | None, rank: int) -> tuple[dict, dict]:
    """(GiB on the GPU, GiB on the host) of one learner rank, by item."""
    lc, n = cfg.learner, cfg.learner.num_ranks
    b = DTYPE_BYTES[lc.dtype]
    opt_bytes = 12 if b == 2 else 8
    shard_p = n if lc.zero_stage == 3 else 1
    shard_g = n if lc.zero_stage >= 2 else 1
    shard_o = n if lc.zero_stage >= 1 else 1
    gpu: dict[str, float] = {}
    host: dict[str, float] = {}

    def put(item: str, nbytes: float, offloaded: bool) -> None:
        where = host if offloaded else gpu
        where[item] = where.get(item, 0.0) + nbytes / GIB

    def trained(prefix: str, p: int) -> None:
        put(f"{prefix} params", p * b / shard_p, lc.offload_param)
        put(f"{prefix} grads", p * b / shard_g, lc.offload_optimizer)
        put(f"{prefix} optimizer", p * opt_bytes / shard_o, lc.offload_optimizer)

    trained("policy", spec.params)
    if cfg.algo.kl_coef > 0:
        put("reference params", spec.params * b / shard_p, lc.offload_param)
    if critic is not None:
        trained("critic", critic_params(critic))
    # The critic's backward runs after the policy's and has no LM head: the policy sets the peak.
    gpu["activations"] = learner_activations(spec, lc.micro_batch_tokens, lc.grad_checkpointing) / GIB
    gpu["logits"] = logits_bytes(spec, lc.micro_batch_tokens, b) / GIB
    if rank == 0:  # rank 0 assembles each weight-sync bucket (gathered under ZeRO-3) before sending it
        gpu["weight-sync bucket"] = 2 * cfg.train.weight_sync.bucket_mb / 1024
    gpu["runtime"] = RUNTIME_GIB
    return gpu, host


def engine_gpu_memory(cfg, spec: ModelSpec) -> dict[str, float]:
    """GiB on each GPU of one engine (tensor-parallel shards are equal)."""
    tp, b = cfg.rollout.tensor_parallel_size, DTYPE_BYTES[cfg.rollout.dtype]
    act = ENGINE_BATCH_TOKENS * (4 * spec.hidden + 2 * spec.intermediate // tp) * b
    return {"engine weights": spec.params * b / tp / GIB, "KV cache": cfg.rollout.kv_cache_gib,
            "engine activations": act / GIB, "weight-sync bucket": cfg.train.weight_sync.bucket_mb / 1024,
            "runtime": RUNTIME_GIB}


def kv_sequences(cfg, spec: ModelSpec) -> tuple[int, int]:
    """(full-length sequences the KV budget holds, sequences an engine gets per step)."""
    tp, b = cfg.rollout.tensor_parallel_size, DTYPE_BYTES[cfg.rollout.dtype]
    kv_heads_per_gpu = math.ceil(spec.kv_heads / tp)  # fewer KV heads than GPUs: vLLM replicates them
    per_token = 2 * spec.layers * kv_heads_per_gpu * spec.head_dim * b
    fits = int(cfg.rollout.kv_cache_gib * GIB // (per_token * cfg.rollout.max_model_len))
    wanted = math.ceil(cfg.train.prompts_per_step * cfg.sampling.n / cfg.rollout.num_engines)
    return fits, wanted


# ---- placement --------------------------------------------------------------------------------------------


def _layout_problems(cfg, nodes: int, g: int, engine_idx: list[list[int]], total: int) -> list[str]:
    tp = cfg.rollout.tensor_parallel_size
    if tp > g:
        return [f"rollout.tensor_parallel_size={tp} exceeds --gpus-per-node={g}: an engine's tensor-parallel "
                "group must stay within one node; lower rollout.tensor_parallel_size or use larger nodes"]
    out = []
    if total > nodes * g:
        how = "rollout.num_engines * rollout.tensor_parallel_size"
        how += "" if cfg.ray.colocate else " + learner.num_ranks"
        fix = "" if cfg.ray.colocate else ", or set ray.colocate=true"
        out.append(f"the layout needs {total} GPUs ({how}) but the cluster has --nodes={nodes} x --gpus-per-node={g}"
                   f" = {nodes * g}; add nodes, lower rollout.num_engines or learner.num_ranks{fix}")
    for e, idx in enumerate(engine_idx):
        first, last = idx[0] // g, idx[-1] // g
        if first != last:
            out.append(f"engine {e}'s tensor-parallel group (GPUs {idx[0]}..{idx[-1]} in fill order) would span nodes "
                       f"{first} and {last}; choose rollout.tensor_parallel_size dividing --gpus-per-node={g}")
            break
    return out


def _over_memory_fix(memory: dict[str, float], checkpointing: bool) -> str:
    top = max(memory, key=memory.get)
    if "optimizer" in top or "grads" in top:
        return ("shard or offload optimizer state: raise learner.zero_stage, add learner.num_ranks, or set "
                "learner.offload_optimizer=true")
    if "params" in top:
        return "set learner.zero_stage=3 with more learner.num_ranks, or learner.offload_param=true"
    if top == "activations" and not checkpointing:
        return "set learner.grad_checkpointing=true or lower learner.micro_batch_tokens"
    if top in ("activations", "logits"):
        return "lower learner.micro_batch_tokens"
    if top == "KV cache":
        return "lower rollout.kv_cache_gib"
    if top == "engine weights":
        return "raise rollout.tensor_parallel_size"
    return "use GPUs with more memory"


def plan(cfg, nodes: int, gpus_per_node: int, gpu_memory_gib: float) -> Plan:
    """Place every role of `cfg` on `nodes` x `gpus_per_node` GPUs and estimate memory; problems say why not."""
    if nodes < 1 or gpus_per_node < 1 or gpu_memory_gib <= 0:
        raise ConfigError(f"--nodes={nodes}, --gpus-per-node={gpus_per_node}, --gpu-memory-gib={gpu_memory_gib}: "
                          "expected positive values")
    if cfg.model.path is None:
        raise ConfigError("model.embedded is the built-in CPU model; `rlvr plan` sizes GPU runs of a Hugging Face "
                          "model: set model.path to an HF directory or hub id")
    spec = model_spec(cfg.model.path)
    critic_spec = None
    if cfg.algo.critic is not None:
        critic_spec = model_spec(cfg.algo.critic.model_path) if cfg.algo.critic.model_path else spec
    p = Plan(spec, nodes, gpus_per_node, gpu_memory_gib, cfg.ray.colocate, cfg.rollout.device)
    p.engine_memory = engine_gpu_memory(cfg, spec)
    p.learner_memory, host_rank0 = learner_rank_memory(cfg, spec, critic_spec, rank=0)
    _check_model_limits(cfg, spec, p)
    if cfg.rollout.device == "cpu":
        need = required_resources(cfg)["CPU"]
        p.notes.append(f"rollout.device='cpu': engines and learner ranks run on CPUs ({need:g} CPUs reserved); "
                       "the per-process sizes below are host RAM, and no GPU placement applies")
        return p

    engine_idx, learner_idx, total = gpu_slots(cfg)
    p.problems += _layout_problems(cfg, nodes, gpus_per_node, engine_idx, total)
    if cfg.rollout.tensor_parallel_size > gpus_per_node:  # no node can hold an engine: nothing to place
        return p
    roles: dict[int, list[str]] = {i: [] for i in range(total)}
    tp = cfg.rollout.tensor_parallel_size
    for e, idx in enumerate(engine_idx):
        for r, i in enumerate(idx):
            roles[i].append(f"engine {e}" + (f" (tp {r}/{tp})" if tp > 1 else ""))
    extras = ("+ref " if cfg.algo.kl_coef > 0 else "") + ("+critic" if critic_spec is not None else "")
    host_per_rank = sum(host_rank0.values())
    for rank, i in enumerate(learner_idx):
        roles[i].append(f"learner {rank} {extras}".strip())
        p.host_gib[i // gpus_per_node] = p.host_gib.get(i // gpus_per_node, 0.0) + host_per_rank
    worst: dict[str, GpuPlan] = {}
    for i in range(total):
        g = _gpu_plan(cfg, spec, critic_spec, i, roles[i], learner_idx, gpus_per_node, p)
        p.gpus.append(g)
        kind = " & ".join(sorted({r.split()[0] for r in g.roles}))
        if kind not in worst or g.peak_gib > worst[kind].peak_gib:
            worst[kind] = g
    for kind, g in worst.items():
        if g.peak_gib > gpu_memory_gib:
            shown = ", ".join(f"{k} {v:.1f}" for k, v in sorted(g.memory.items(), key=lambda kv: -kv[1])[:3])
            p.problems.append(f"node {g.node} GPU {g.gpu} ({kind}): estimated peak {g.peak_gib:.1f} GiB exceeds "
                              f"--gpu-memory-gib={gpu_memory_gib:g} (largest: {shown} GiB); "
                              f"{_over_memory_fix(g.memory, cfg.learner.grad_checkpointing)}")
    return p


def _gpu_plan(cfg, spec, critic_spec, i: int, roles: list[str], learner_idx: list[int], g: int, p: Plan) -> GpuPlan:
    has_engine = any(r.startswith("engine") for r in roles)
    rank = learner_idx.index(i) if i in learner_idx else None
    engine = dict(p.engine_memory) if has_engine else {}
    learner = learner_rank_memory(cfg, spec, critic_spec, rank)[0] if rank is not None else {}
    if has_engine and rank is not None:
        # Colocated: generation holds the engine plus the learner's resident state; training holds the
        # learner with the engine asleep (its weights in host RAM, KV freed, its CUDA context kept).
        resident = sum(v for k, v in learner.items() if k not in ("activations", "logits"))
        peak = max(resident + sum(engine.values()), sum(learner.values()) + RUNTIME_GIB)
        p.host_gib[i // g] = p.host_gib.get(i // g, 0.0) + engine["engine weights"]
        memory = {k: engine.get(k, 0.0) + learner.get(k, 0.0) for k in {**engine, **learner}}
    else:
        memory = engine or learner
        peak = sum(memory.values())
    return GpuPlan(node=i // g, gpu=i % g, roles=roles, memory=memory, peak_gib=peak)


def _check_model_limits(cfg, spec: ModelSpec, p: Plan) -> None:
    r = cfg.rollout
    if spec.max_positions and r.max_model_len > spec.max_positions:
        p.problems.append(f"rollout.max_model_len={r.max_model_len} exceeds the model's max_position_embeddings="
                          f"{spec.max_positions} ({spec.name}); lower rollout.max_model_len (and sampling.max_tokens)")
    fits, wanted = kv_sequences(cfg, spec)
    if fits < 1:
        p.problems.append(f"rollout.kv_cache_gib={r.kv_cache_gib:g} holds no full sequence of rollout.max_model_len="
                          f"{r.max_model_len} tokens for {spec.name}; raise rollout.kv_cache_gib or lower "
                          "rollout.max_model_len")
    elif fits < wanted:
        p.notes.append(f"each engine gets {wanted} sequences per step but its KV cache holds {fits} at full length "
                       f"({r.max_model_len} tokens); the rest queue. Shorter answers share the budget, so this is a "
                       "worst case; raise rollout.kv_cache_gib or add engines to run them in one wave")
