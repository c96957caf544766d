"""One learner rank: a DeepSpeed policy engine, a frozen reference engine (kl_coef > 0) and a critic with a
value head (advantage=gae). `LearnerGroup` drives M of these as Ray actors; every collective method must be
called on all ranks with the same number of micro-batches (the group pads with empty ones).

Runs without Ray too (world size 1 in-process): `LearnerWorker(cfg, algo, model_path)`.
"""

import os
import shutil
import time
from collections import defaultdict

import ray
import torch

from learner.batching import PackedBatch, check_share_prompts, collate, dummy_sample, expand
from learner.config import AlgoConfig, LearnerConfig
from learner.flops import peak_matmul_flops
from learner.forward import gather_logp, model_dtype, rl_token_loss, target_logits
from learner.losses import KL_ESTIMATORS, clip_fraction, entropy_from_logits, ratio_of, value_loss_clipped
from learner.weight_sync import (CudaIpcExporter, WeightBroadcaster, bucket_meta, iter_buckets, plan_buckets,
                                 put_buckets)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "generation_config.json", "chat_template.jinja")


def ds_config(cfg: LearnerConfig, stage: int, train: bool) -> dict:
    """DeepSpeed config; gradient accumulation is driven by hand (`set_gradient_accumulation_boundary`)."""
    zero: dict = {"stage": stage}
    if train and cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu"}
    if cfg.offload_param and stage == 3:
        zero["offload_param"] = {"device": "cpu"}
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "steps_per_print": 10**9,
        "zero_optimization": zero,
        "bf16": {"enabled": cfg.dtype == "bf16"},
        "gradient_clipping": cfg.grad_clip if train else 0.0,
        # A client torch AdamW avoids JIT-building DeepSpeed's fused/cpu Adam ops (minutes, needs g++).
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
    }


def cpu_threads(world_size: int) -> int:
    """Default torch threads of a rank: on CPU the cores this process may use, shared by the ranks (all local in
    CPU mode); 1 on GPU, where the host threads only feed the device."""
    if torch.cuda.is_available():
        return 1
    return max(1, len(os.sched_getaffinity(0)) // world_size)


class ValueModel(torch.nn.Module):
    """Critic: a transformer backbone and a linear value head; V at the positions that predict each token."""

    def __init__(self, backbone: torch.nn.Module, hidden_size: int):
        super().__init__()
        self.backbone = backbone
        self.value_head = torch.nn.Linear(hidden_size, 1, dtype=backbone.dtype)  # ZeRO wants one dtype

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.backbone(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask,
                          use_cache=False).last_hidden_state
        return self.value_head(h).squeeze(-1).float()  # (B, T)


def _init_distributed(rank: int, world_size: int, master_addr: str, master_port: int) -> None:
    """Join the learner's torch.distributed group (gloo on CPU, NCCL on GPU) via DeepSpeed."""
    import torch.distributed as dist

    if dist.is_initialized():
        if dist.get_world_size() != world_size:
            raise RuntimeError(f"this process already has a world of {dist.get_world_size()}, asked {world_size}")
        return
    cuda = torch.cuda.is_available()
    # LOCAL_RANK 0: each Ray actor sees only its own device (Ray sets CUDA_VISIBLE_DEVICES per actor).
    os.environ.update(MASTER_ADDR=master_addr, MASTER_PORT=str(master_port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK="0")
    import deepspeed
    import deepspeed.ops

    if not cuda:
        # DeepSpeed JIT-builds a shared-memory all-reduce at every CPU init (50-80 s, needs g++); only its
        # inference all-reduce uses it, and training never calls that.
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")


class LearnerWorker:
    """One DeepSpeed rank. Micro-batches are lists of sample dicts (see `learner/batching.py`); [] = padding."""

    def __init__(self, cfg: LearnerConfig, algo: AlgoConfig, model_path: str, rank: int = 0,
                 world_size: int = 1, master_addr: str = "127.0.0.1", master_port: int = 29500):
        threads = cfg.num_threads or cpu_threads(world_size)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
        if not torch.cuda.is_available():
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
        _init_distributed(rank, world_size, master_addr, master_port)
        self.cfg, self.algo, self.model_path = cfg, algo, model_path
        self.rank, self.world_size = rank, world_size
        self.kl_fn = KL_ESTIMATORS[algo.kl_estimator]
        self.zero3 = cfg.zero_stage == 3
        from deepspeed.accelerator import get_accelerator

        self.device = torch.device(get_accelerator().current_device_name())
        torch.manual_seed(cfg.seed)
        self.policy = self._engine(self._load(model_path, cfg.zero_stage, causal_lm=True), cfg.zero_stage, cfg.lr)
        self.ref = None
        if algo.kl_coef > 0:  # no optimizer: DeepSpeed allows only stage 0 or 3 for it
            ref_stage = 3 if self.zero3 else 0
            self.ref = self._engine(self._load(model_path, ref_stage, causal_lm=True), ref_stage, None)
        self.critic = None
        if algo.critic is not None:
            backbone = self._load(algo.critic.model_path or model_path, cfg.zero_stage, causal_lm=False)
            self.critic = self._engine(ValueModel(backbone, backbone.config.hidden_size), cfg.zero_stage,
                                       algo.critic.lr)
        self.broadcaster: WeightBroadcaster | None = None
        self.ipc = CudaIpcExporter()

    def ready(self) -> int:
        """Returns the rank once construction (a collective) has finished."""
        return self.rank

    def peak_flops(self, dtypes: tuple[str, ...]) -> dict[str, float]:
        """Measured matmul FLOP/s per dtype on this rank's device and threads (a few hundred ms, cached)."""
        cuda = self.device.type == "cuda"
        return {d: peak_matmul_flops(d, device=self.device.type, max_size=8192 if cuda else 1024) for d in dtypes}

    # ----- construction -----
    def _load(self, path: str, stage: int, causal_lm: bool) -> torch.nn.Module:
        from transformers import AutoModel, AutoModelForCausalLM
        from transformers.integrations import HfDeepSpeedConfig

        # Under ZeRO-3 this makes from_pretrained partition weights while loading (no full copy per rank);
        # transformers holds it by weak reference, so it must stay alive during the load.
        keep = HfDeepSpeedConfig(ds_config(self.cfg, stage, train=True)) if stage == 3 else None
        dtype = torch.bfloat16 if self.cfg.dtype == "bf16" else torch.float32
        model = (AutoModelForCausalLM if causal_lm else AutoModel).from_pretrained(path, dtype=dtype)
        del keep
        model.config.use_cache = False
        if self.cfg.share_prompts:
            check_share_prompts(model)
        if self.cfg.grad_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return model

    def _engine(self, model: torch.nn.Module, stage: int, lr: float | None):
        import deepspeed

        if lr is None:
            model.requires_grad_(False)
            engine, *_ = deepspeed.initialize(model=model, config=ds_config(self.cfg, stage, train=False))
            engine.eval()
            return engine
        c = self.cfg
        opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay)
        warm = c.warmup_steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)
        engine, *_ = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=sched,
                                          config=ds_config(c, stage, train=True))
        return engine

    def _collate(self, samples: list[dict], fields: tuple[str, ...] = (), prompts: dict | None = None) -> PackedBatch:
        """Pack a micro-batch; rollout samples get their group's prompt (sent once per call in `prompts`)."""
        samples = [expand(s, prompts) for s in samples]
        return collate(samples, fields, self.cfg.row_tokens, self.cfg.share_prompts).to(self.device)

    # ----- phase 1: old / reference log-probs and values -----
    @torch.no_grad()
    def compute_logprobs(self, micro_batches: list[list[dict]], policy: bool = True,
                         prompts: dict | None = None) -> dict[str, list]:
        """Per-sample float32 arrays (in flattened micro-batch order) of old_logp (if `policy`), ref_logp (with a
        reference) and values (with a critic), over each sample's target tokens."""
        out: dict[str, list] = defaultdict(list)
        self.policy.eval()
        for samples in micro_batches:
            pb = self._collate(samples or [dummy_sample()], (), prompts)
            results = {}
            if policy:
                results["old_logp"] = gather_logp(target_logits(self.policy, pb, self.cfg.temperature), pb.targets)
            if self.ref is not None:
                results["ref_logp"] = gather_logp(target_logits(self.ref, pb, self.cfg.temperature), pb.targets)
            if self.critic is not None:
                self.critic.eval()
                results["values"] = self.critic(**pb.model_inputs(model_dtype(self.critic))).flatten()[pb.logit_pos]
            if samples:
                for k, v in results.items():
                    out[k].extend(pb.split(v))
        return dict(out)

    # ----- phase 2: one optimizer step per call -----
    def train_step(self, micro_batches: list[list[dict]], on_policy: bool = False, prompts: dict | None = None) -> dict:
        """One policy (and critic) optimizer step over this rank's share of a mini-batch. Each sample carries
        per-token old_logp, adv, rollout_logp (tis_cap set), ref_logp (kl_in=loss) and the scalar aggregation
        `weight`; for the critic also old_values and returns. Returns sums for the group to reduce.

        `on_policy`: this step is the only one on its batch, so the old log-probs are the current ones; they
        are taken from this forward (detached) instead of a separate pass, and returned per sample as `old_logp`."""
        algo = self.algo
        fields = (() if on_policy else ("old_logp",)) + ("adv", "weight") + \
            (("rollout_logp",) if algo.tis_cap is not None else ()) + (("ref_logp",) if self.ref is not None else ())
        eng, stats = self.policy, defaultdict(float)
        logp_rows: list = []
        eng.train()
        t0 = time.perf_counter()
        for i, samples in enumerate(micro_batches):
            pb = self._collate(samples or [dummy_sample(fields)], fields, prompts)
            f = pb.fields
            eng.set_gradient_accumulation_boundary(i == len(micro_batches) - 1)
            logits = target_logits(eng, pb, self.cfg.temperature)  # (n, V)
            logp = gather_logp(logits, pb.targets)
            if on_policy:
                f = dict(f, old_logp=logp.detach())
                if samples:
                    logp_rows.extend(pb.split(logp))
            with torch.set_grad_enabled(algo.entropy_coef > 0):
                entropy = entropy_from_logits(logits)
            ratio = ratio_of(logp, f["old_logp"])  # (n,) once: the loss and both statistics read it
            tok_loss = rl_token_loss(logp, ratio, entropy, f, algo, self.kl_fn)
            # Weights make the sum over all ranks the mini-batch loss; DeepSpeed averages grads over ranks.
            loss = (f["weight"] * tok_loss).sum() * self.world_size
            eng.backward(loss)
            if samples:
                with torch.no_grad():
                    stats["loss"] += loss.item() / self.world_size
                    stats["tokens"] += len(logp)
                    stats["entropy_sum"] += entropy.sum().item()
                    stats["clipfrac_sum"] += clip_fraction(ratio, f["adv"], algo.clip_low, algo.clip_high).sum().item()
                    stats["ratio_sum"] += ratio.sum().item()
                    if self.ref is not None:
                        stats["kl_sum"] += self.kl_fn(logp, f["ref_logp"]).sum().item()
        stats["lr"] = eng.get_lr()[0]  # the rate this step uses
        eng.step()
        stats["grad_norm"] = _grad_norm(eng)
        if self.critic is not None:
            stats.update(self._critic_step(micro_batches, prompts))
        stats["seconds"] = time.perf_counter() - t0
        return dict(stats, old_logp=logp_rows) if on_policy else dict(stats)

    def _critic_step(self, micro_batches: list[list[dict]], prompts: dict | None = None) -> dict[str, float]:
        fields = ("old_values", "returns", "weight")
        c, eng, stats = self.algo.critic, self.critic, defaultdict(float)
        eng.train()
        for i, samples in enumerate(micro_batches):
            pb = self._collate(samples or [dummy_sample(fields)], fields, prompts)
            f = pb.fields
            eng.set_gradient_accumulation_boundary(i == len(micro_batches) - 1)
            values = eng(**pb.model_inputs(model_dtype(eng))).flatten()[pb.logit_pos]  # (n,)
            tok_loss = c.vf_coef * value_loss_clipped(values, f["old_values"], f["returns"], c.value_clip)
            loss = (f["weight"] * tok_loss).sum() * self.world_size
            eng.backward(loss)
            if samples:
                stats["value_loss"] += loss.item() / self.world_size
        eng.step()
        stats["critic_grad_norm"] = _grad_norm(eng)
        return dict(stats)

    def sft_step(self, micro_batches: list[list[dict]]) -> dict[str, float]:
        """One next-token cross-entropy step; each sample has ids, loss_mask and a scalar `weight`."""
        eng, stats = self.policy, defaultdict(float)
        eng.train()
        for i, samples in enumerate(micro_batches):
            pb = self._collate(samples or [dummy_sample(("weight",))], ("weight",))
            eng.set_gradient_accumulation_boundary(i == len(micro_batches) - 1)
            logp = gather_logp(target_logits(eng, pb, 1.0), pb.targets)
            loss = -(pb.fields["weight"] * logp).sum() * self.world_size
            eng.backward(loss)
            if samples:
                stats["loss"] += loss.item() / self.world_size
                stats["tokens"] += len(logp)
        eng.step()
        stats["grad_norm"] = _grad_norm(eng)
        return dict(stats)

    # ----- checkpoints and export -----
    def save_checkpoint(self, ckpt_dir: str, client_state: dict | None = None) -> None:
        """DeepSpeed checkpoint (weights, optimizer, scheduler, step) of policy and critic; all ranks."""
        self.policy.save_checkpoint(os.path.join(ckpt_dir, "policy"), tag="state",
                                    client_state={"rlvr": client_state or {}})
        if self.critic is not None:
            self.critic.save_checkpoint(os.path.join(ckpt_dir, "critic"), tag="state")

    def load_checkpoint(self, ckpt_dir: str) -> dict:
        """Resume from `save_checkpoint`; returns the client_state saved with the policy."""
        path, client = self.policy.load_checkpoint(os.path.join(ckpt_dir, "policy"), tag="state")
        if path is None:
            raise FileNotFoundError(f"no policy checkpoint under {ckpt_dir}/policy (tag 'state')")
        if self.critic is not None:
            self.critic.load_checkpoint(os.path.join(ckpt_dir, "critic"), tag="state")
        return (client or {}).get("rlvr", {})

    def export_hf(self, out_dir: str, bucket_mb: float = 256) -> None:
        """Write the policy as an HF directory (safetensors, config, tokenizer); all ranks, rank 0 writes."""
        from safetensors.torch import save_file

        state = {}
        for bucket in iter_buckets(self.policy.module, bucket_mb, self.zero3):
            if self.rank == 0:
                state.update({n: t.detach().cpu().contiguous().clone() for n, t in bucket})
        if self.rank != 0:
            return
        os.makedirs(out_dir, exist_ok=True)
        save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        self.policy.module.config.save_pretrained(out_dir)
        for name in TOKENIZER_FILES:
            src = os.path.join(self.model_path, name)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(out_dir, name))

    def state_dict_cpu(self) -> dict[str, torch.Tensor]:
        """Full policy parameters on CPU (gathered under ZeRO-3; all ranks must call)."""
        # aliases: tied parameters under each name, as torch's state_dict and the weight-sync pushes list them
        return {n: t.cpu().clone() for b in iter_buckets(self.policy.module, 256, self.zero3, aliases=True)
                for n, t in b}

    # ----- weight sync (sending half) -----
    def weight_sync_meta(self, bucket_mb: float) -> list[list[tuple[str, str, tuple[int, ...]]]]:
        """`[(hf_name, dtype, shape)]` per bucket, for the controller's per-bucket control RPCs."""
        return bucket_meta(plan_buckets(self.policy.module, bucket_mb, aliases=True))

    def push_weights_object_store(self, bucket_mb: float) -> list:
        """All ranks (ZeRO-3 gathers); rank 0 returns one ObjectRef per bucket, others []."""
        buckets = iter_buckets(self.policy.module, bucket_mb, self.zero3, aliases=True)
        if self.rank == 0:
            return put_buckets(buckets)
        for _ in buckets:  # take part in the gathers
            pass
        return []

    def init_weight_broadcast(self, host: str, port: int, world_size: int, timeout_s: float = 600.0) -> None:
        """Rank 0 only: host the TCPStore and join the learner+engines group as rank 0 (blocks for engines).
        `timeout_s` bounds the join and every later broadcast, so a hung engine cannot wedge this rank."""
        self.broadcaster = None  # a previous group (maybe poisoned by a failed push) is dropped first
        self.broadcaster = WeightBroadcaster(host, port, world_size, timeout_s)

    def broadcast_weights(self, bucket_mb: float) -> int:
        """All ranks; rank 0 broadcasts one flat buffer per bucket. Returns bytes sent (0 on other ranks)."""
        sent = 0
        for bucket in iter_buckets(self.policy.module, bucket_mb, self.zero3, aliases=True):
            if self.rank == 0:
                if self.broadcaster is None:
                    raise RuntimeError("broadcast_weights before init_weight_broadcast on learner rank 0")
                sent += self.broadcaster.broadcast(bucket)
        return sent

    def push_weights_cuda_ipc(self, bucket_mb: float, export: bool) -> list:
        """All ranks walk the buckets (ZeRO-3 gathers); a rank with `export` returns CUDA IPC payloads of its
        own copy for the engine on its GPU and keeps the buffers until `release_cuda_ipc`."""
        self.ipc.release()
        buckets = iter_buckets(self.policy.module, bucket_mb, self.zero3, aliases=True)
        if export:
            return self.ipc.export(buckets)
        for _ in buckets:  # take part in the gathers
            pass
        return []

    def release_cuda_ipc(self) -> int:
        return self.ipc.release()

    def close(self) -> None:
        for e in (self.policy, self.ref, self.critic):
            if e is not None:
                e.destroy()


def _grad_norm(engine) -> float:
    n = engine.get_global_grad_norm()
    return float("nan") if n is None else float(n)


LearnerWorkerActor = ray.remote(LearnerWorker)
