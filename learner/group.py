"""LearnerGroup: M `LearnerWorkerActor` ranks and the driver-side half of an RL step.

train_step(batch), batch a rollout record (record.rollout.RolloutBatch; docs/design.md, "The rollout record"):
  phase 1  ranks compute old (+ reference) log-probs (+ critic values) on token-balanced shards; with a single
         optimizer step per batch (ppo_epochs = mini_batches = 1) the old log-probs equal the current ones, so
         the update's own forward supplies them (detached) and phase 1 runs only for a reference or critic;
  driver   shapes rewards (DAPO overlong, KL-in-reward) and computes advantages over whole groups / batch;
  phase 2  ppo_epochs x mini_batches optimizer steps, each sharded over ranks and packed by token budget.
Placement (`actor_options`, e.g. a placement-group strategy per rank) is chosen by the controller.
"""

import socket
import time

import ray
import torch

from learner.advantages import ADVANTAGES, AdvInputs, length_reward, overlong_penalty, whiten
from learner.batching import balance_shards, pack_micro_batches, record_samples, rl_sample, sample_len, shared_units
from learner.config import AlgoConfig, LearnerConfig
from learner.losses import KL_ESTIMATORS, LOSS_AGGREGATIONS
from learner.worker import LearnerWorkerActor

# What a rollout sample carries to a rank besides its per-token fields (learner.batching.record_samples).
WIRE_KEYS = ("group", "prompt_len", "response", "mask")


class LearnerHung(RuntimeError):
    """Some rank did not answer within learner.call_timeout_s."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_env(options: dict, **env: str) -> dict:
    """Actor options with extra environment variables (merged into any runtime_env the options carry)."""
    runtime_env = dict(options.get("runtime_env") or {})
    runtime_env["env_vars"] = {**(runtime_env.get("env_vars") or {}), **env}
    return {**options, "runtime_env": runtime_env}


def mini_batch_parts(group_ids: list, k: int, seed: int) -> list[list[int]]:
    """Sample indices of k mini-batches made of whole groups, groups shuffled by `seed` (k = 1: all, in order)."""
    members: dict = {}
    for i, gid in enumerate(group_ids):
        members.setdefault(gid, []).append(i)
    groups = list(members.values())
    if len(groups) < k:
        raise ValueError(f"batch of {len(groups)} groups cannot be split into learner.mini_batches={k} (a group "
                         "stays within one mini-batch); lower learner.mini_batches")
    if k == 1:
        return [list(range(len(group_ids)))]
    perm = torch.randperm(len(groups), generator=torch.Generator().manual_seed(seed))
    return [[i for gi in part.tolist() for i in groups[gi]] for part in torch.tensor_split(perm, k)]


def _pad(rows: list, T: int) -> torch.Tensor:
    """Per-sample float arrays -> (N, T), zero after each row's end."""
    out = torch.zeros(len(rows), T)  # (N, T)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out


class LearnerGroup:
    """M DeepSpeed ranks as Ray actors; methods block and return plain floats/dicts."""

    def __init__(self, cfg: LearnerConfig, algo: AlgoConfig, model_path: str,
                 actor_options: list[dict] | None = None, master_addr: str = "127.0.0.1"):
        m = cfg.num_ranks
        opts = actor_options if actor_options is not None else [{} for _ in range(m)]
        if len(opts) != m:
            raise ValueError(f"{len(opts)} actor_options for learner.num_ranks={m}; pass one dict per rank")
        # OpenMP reads these when torch loads, before the actor's code runs; the worker sets its thread count
        # (num_threads None: its node's cores) and passive waits let an engine sharing the cores run.
        opts = [_with_env(o, OMP_WAIT_POLICY="PASSIVE", **({"OMP_NUM_THREADS": str(cfg.num_threads)}
                                                           if cfg.num_threads else {})) for o in opts]
        port = free_port()
        self.workers = [LearnerWorkerActor.options(**o).remote(cfg, algo, model_path, r, m, master_addr, port)
                        for r, o in enumerate(opts)]
        ray.get([w.ready.remote() for w in self.workers])
        self.cfg, self.algo = cfg, algo
        self.adv_fn = ADVANTAGES[algo.advantage]  # picked once, from the config name
        self.agg_fn = LOSS_AGGREGATIONS[algo.loss_agg]
        self.kl_fn = KL_ESTIMATORS[algo.kl_estimator]
        self.step = 0

    # ----- distribution helpers -----
    def _micro_batches(self, samples: list[dict]) -> tuple[list[list[list[dict]]], list[list[int]]]:
        """Per rank: micro-batches (padded with [] to an equal count) and the flattened sample order. With
        share_prompts, samples of one prompt travel together (units) so that their prompt is computed once."""
        if self.cfg.share_prompts:
            units, lengths = shared_units(samples, self.cfg.micro_batch_tokens)
        else:
            units, lengths = [[i] for i in range(len(samples))], [sample_len(s) for s in samples]
        per_rank, orders = [], []
        for shard in balance_shards(lengths, len(self.workers)):
            mbs = [[i for j in mb for i in units[shard[j]]]
                   for mb in pack_micro_batches([lengths[u] for u in shard], self.cfg.micro_batch_tokens)]
            per_rank.append(mbs)
            orders.append([i for mb in mbs for i in mb])
        k = max(1, max(len(mbs) for mbs in per_rank))
        padded = [[[samples[i] for i in mb] for mb in mbs] + [[] for _ in range(k - len(mbs))] for mbs in per_rank]
        return padded, orders

    def _run(self, method, samples: list[dict], *args, prompts: dict | None = None) -> tuple[list, list[list[int]]]:
        """Call `method(worker)` (an actor method) on every rank with its micro-batches; wait for all. Rollout
        samples travel without their prompt: each rank gets the prompts of its groups once (`prompts`)."""
        mbs, orders = self._micro_batches(samples)
        if prompts is None:
            return self._wait([method(w).remote(mb, *args) for w, mb in zip(self.workers, mbs)]), orders
        per_rank = [{s["group"]: prompts[s["group"]] for m in mb for s in m} for mb in mbs]
        return self._wait([method(w).remote(mb, *args, prompts=p)
                           for w, mb, p in zip(self.workers, mbs, per_rank)]), orders

    def _scatter(self, samples: list[dict], results: list[dict], orders: list[list[int]], keys) -> None:
        """Store per-sample result rows (rank order -> sample order) under `keys` in the sample dicts."""
        for res, order in zip(results, orders):
            for key in keys:
                for i, row in zip(order, res.pop(key, [])):
                    samples[i][key] = row

    def _wait(self, refs: list) -> list:
        """ray.get with a deadline: a rank stuck in a collective (a peer died or hangs) must not hang the run."""
        done, pending = ray.wait(refs, num_returns=len(refs), timeout=self.cfg.call_timeout_s)
        if pending:
            late = sorted(refs.index(r) for r in pending)
            raise LearnerHung(f"learner rank(s) {late} did not finish within learner.call_timeout_s="
                              f"{self.cfg.call_timeout_s:g}s (hung, or stuck in a collective); resume from the "
                              "last checkpoint with --resume, or raise learner.call_timeout_s for slow steps")
        return ray.get(refs)

    # ----- RL step -----
    def train_step(self, batch) -> dict[str, float]:
        """One RL update on a rollout record (record.rollout.RolloutBatch); returns flat float metrics.
        Only tokens with loss_mask True count: they are the targets the ranks compute, and the token axis of
        rewards, advantages, KL and the engine-vs-learner metrics runs over them alone (compacted per sample)."""
        t0 = time.perf_counter()
        batch.check()
        algo = self.algo
        records = batch.samples()
        samples, prompts = record_samples(batch)
        n = len(samples)
        resp_lens = torch.tensor([s.num_loss_tokens for s in records])  # (N,) tokens that count, per sample
        T = int(resp_lens.max())
        mask = (torch.arange(T)[None, :] < resp_lens[:, None]).float()  # (N, T) over each sample's loss tokens
        group_ids = torch.tensor(batch.group_ids())  # (N,)

        # phase 1: old / reference log-probs and values (old ones from the update itself when it is the only one)
        on_policy = self.cfg.ppo_epochs * self.cfg.mini_batches == 1 and algo.kl_in != "reward"
        if not on_policy or algo.kl_coef > 0 or algo.critic is not None:
            results, orders = self._run(lambda w: w.compute_logprobs, samples, not on_policy, prompts=prompts)
            self._scatter(samples, results, orders, ("old_logp", "ref_logp", "values"))
        t1 = time.perf_counter()

        # driver: rewards and advantages over the whole batch
        rewards = torch.tensor(batch.rewards(), dtype=torch.float32)  # (N,) one outcome reward per sample
        if algo.overlong_buffer_len > 0:  # the generation budget counts every response token
            full_lens = torch.tensor([len(s.response_ids) for s in records])  # (N,)
            rewards = rewards + overlong_penalty(full_lens, algo.overlong_max_len, algo.overlong_buffer_len,
                                                 algo.overlong_penalty)
        if algo.length_coef > 0:  # correctness is the verifier's reward before any shaping
            correct = torch.tensor(batch.rewards()) > 0.5  # (N,)
            rewards = rewards + algo.length_coef * length_reward(correct, resp_lens, group_ids)
        token_rewards = torch.zeros(n, T)  # (N, T): outcome reward on the last loss token
        token_rewards[torch.arange(n), resp_lens - 1] = rewards
        metrics: dict[str, float] = {}
        outcome = rewards  # (N,) what the outcome estimators (grpo, dr_grpo, rloo) read, unless KL joins below
        if "ref_logp" in samples[0] and not on_policy:
            old_logp = _pad([s["old_logp"] for s in samples], T)  # (N, T)
            kl = self.kl_fn(old_logp, _pad([s["ref_logp"] for s in samples], T)) * mask  # (N, T)
            metrics["kl_old_ref"] = float(kl.sum() / mask.sum())
            if algo.kl_in == "reward":
                token_rewards, outcome = token_rewards - algo.kl_coef * kl, None
        values = _pad([s["values"] for s in samples], T) if "values" in samples[0] else None
        adv = self.adv_fn(AdvInputs(token_rewards, mask, group_ids, values, algo.gamma, algo.lam,
                                    algo.adv_eps, outcome))  # (N, T)
        returns = adv + values if values is not None else None  # the critic's targets, from unwhitened GAE
        if algo.advantage == "gae" and algo.gae_whiten:
            adv = whiten(adv, mask, algo.adv_eps)
        for i, (s, rec) in enumerate(zip(samples, records)):
            L = int(resp_lens[i])
            s["adv"] = adv[i, :L].numpy()
            if algo.tis_cap is not None:  # the engine's log-probs reach the ranks only for the IS weight
                s["rollout_logp"] = rec.logprobs[rec.loss_mask]
            if returns is not None:
                s["old_values"], s["returns"] = s.pop("values"), returns[i, :L].numpy()
        # DAPO overlong filtering: truncated samples stay in the advantage baseline but get no loss.
        trained = torch.tensor([not (algo.overlong_filter and r.finish_reason == "length") for r in records])
        valid = mask.bool()
        metrics.update(reward_mean=float(rewards.mean()), adv_mean=float(adv[valid].mean()),
                       adv_std=float(adv[valid].std()) if valid.sum() > 1 else 0.0,
                       response_len_mean=float(resp_lens.float().mean()),
                       overlong_filtered_frac=float(1 - trained.float().mean()))

        # phase 2: ppo_epochs x mini_batches optimizer steps
        steps = []
        for epoch in range(self.cfg.ppo_epochs):
            steps += self._update_epoch(samples, prompts, resp_lens, batch.group_ids(), trained, epoch, on_policy)
        t2 = time.perf_counter()
        old_logp = _pad([s["old_logp"] for s in samples], T)  # (N, T)
        rollout_logp = _pad([r.logprobs[r.loss_mask] for r in records], T)  # (N, T)
        metrics.update(_rollout_metrics(old_logp, rollout_logp, mask, algo.tis_cap))
        self.step += 1
        tokens = sum(len(g.prompt_ids) + len(s.response_ids) for g in batch.groups for s in g.samples)
        metrics.update(_reduce_steps(steps), time_logprobs_s=t1 - t0, time_update_s=t2 - t1,
                       tokens_per_s=tokens / (t2 - t0), step=float(self.step))
        if on_policy and "kl" in metrics:  # the update's KL to the reference was measured at the old policy
            metrics["kl_old_ref"] = metrics["kl"]
        return metrics

    def _update_epoch(self, samples: list[dict], prompts: dict, resp_lens: torch.Tensor, group_ids: list,
                      trained: torch.Tensor, epoch: int, on_policy: bool = False) -> list[list[dict]]:
        """One pass over the batch in `learner.mini_batches` optimizer steps; groups stay whole within a
        mini-batch (shuffled by group), and samples that are not `trained` get zero weight."""
        seed = self.cfg.seed * 1_000_003 + self.step * 1009 + epoch
        keys = WIRE_KEYS + ("adv",) + (() if on_policy else ("old_logp",)) + \
            tuple(k for k in ("rollout_logp", "ref_logp", "old_values", "returns") if k in samples[0])
        out = []
        for part in mini_batch_parts(group_ids, self.cfg.mini_batches, seed):
            idx = torch.tensor(part)
            keep = trained[idx]  # (n_mb,)
            w = torch.zeros(len(idx))  # (n_mb,) per-sequence weights; only trained samples count
            if keep.any():
                w[keep] = self.agg_fn(resp_lens[idx][keep], self.algo.loss_norm_len)
            mb = [{**{k: samples[i][k] for k in keys}, "weight": float(wi)} for i, wi in zip(part, w)]
            results, orders = self._run(lambda w: w.train_step, mb, on_policy, prompts=prompts)
            if on_policy:  # the log-probs the update computed are the old ones (one mini-batch: mb = samples)
                self._scatter(samples, results, orders, ("old_logp",))
            out.append(results)
        return out

    def logprobs(self, prompt_ids: list[list[int]], response_ids: list[list[int]]) -> list[list[float]]:
        """The policy's per-token log-probs of each response (evaluation, tests, rollout checks)."""
        samples = [rl_sample(p, r) for p, r in zip(prompt_ids, response_ids)]
        results, orders = self._run(lambda w: w.compute_logprobs, samples)
        self._scatter(samples, results, orders, ("old_logp",))
        return [s["old_logp"].tolist() for s in samples]

    # ----- SFT -----
    def sft_step(self, batch: dict) -> dict[str, float]:
        """One next-token CE step on {"input_ids": [[int]], "loss_mask": [[0|1]]}: token-mean over the batch."""
        t0 = time.perf_counter()
        ids, masks = batch.get("input_ids"), batch.get("loss_mask")
        if ids is None or masks is None or len(ids) != len(masks) or not ids:
            raise ValueError("sft batch needs equal-length non-empty lists 'input_ids' and 'loss_mask'")
        n_tok = sum(sum(m[1:]) for m in masks)
        if n_tok == 0:
            raise ValueError("sft batch has no target tokens: every loss_mask is 0 after position 0")
        samples = [{"ids": list(i), "loss_mask": [0] + list(m[1:]), "weight": 1.0 / n_tok} for i, m in zip(ids, masks)]
        res, _ = self._run(lambda w: w.sft_step, samples)
        dt = time.perf_counter() - t0
        return {"sft_loss": sum(r["loss"] for r in res), "grad_norm": res[0]["grad_norm"],
                "tokens_per_s": sum(len(i) for i in ids) / dt, "time_s": dt}

    # ----- checkpoints, export, weights -----
    def save_checkpoint(self, ckpt_dir: str) -> None:
        self._wait([w.save_checkpoint.remote(ckpt_dir, {"step": self.step}) for w in self.workers])

    def load_checkpoint(self, ckpt_dir: str) -> None:
        states = self._wait([w.load_checkpoint.remote(ckpt_dir) for w in self.workers])
        self.step = int(states[0].get("step", 0))

    def export_hf(self, out_dir: str) -> None:
        self._wait([w.export_hf.remote(out_dir) for w in self.workers])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Full policy parameters (from rank 0) on the driver."""
        return ray.get([w.state_dict_cpu.remote() for w in self.workers])[0]

    def weight_sync_meta(self, bucket_mb: float) -> list:
        return ray.get(self.workers[0].weight_sync_meta.remote(bucket_mb))

    def push_weights_object_store(self, bucket_mb: float) -> list:
        """Object refs (one dict[name, tensor] per bucket) for the engines to ray.get one at a time."""
        return self._wait([w.push_weights_object_store.remote(bucket_mb) for w in self.workers])[0]

    def start_weight_broadcast_group(self, host: str, port: int, world_size: int, timeout_s: float = 600.0):
        """Rank 0 hosts the TCPStore and joins as rank 0; returns an ObjectRef. Start the engines' joins
        (ranks 1..world_size-1), then ray.get it. `timeout_s` bounds the join and each later broadcast."""
        return self.workers[0].init_weight_broadcast.remote(host, port, world_size, timeout_s)

    def start_broadcast_weights(self, bucket_mb: float) -> list:
        """All ranks walk the buckets, rank 0 broadcasts each; returns ObjectRefs to ray.get after issuing the
        engines' per-bucket receive RPCs (metadata from `weight_sync_meta`)."""
        return [w.broadcast_weights.remote(bucket_mb) for w in self.workers]

    def push_weights_cuda_ipc(self, bucket_mb: float, num_engines: int) -> list[list]:
        """CUDA IPC payloads per engine: engine i gets those of learner rank i (colocated on its GPU). The
        ranks keep the buffers alive until `release_cuda_ipc`."""
        if num_engines > len(self.workers):
            raise ValueError(f"cuda_ipc weight sync: {num_engines} engines but {len(self.workers)} learner ranks; "
                             "engine i loads from learner rank i on its GPU, so rollout.num_engines must be "
                             "<= learner.num_ranks")
        refs = [w.push_weights_cuda_ipc.remote(bucket_mb, r < num_engines) for r, w in enumerate(self.workers)]
        return ray.get(refs)[:num_engines]

    def release_cuda_ipc(self) -> None:
        ray.get([w.release_cuda_ipc.remote() for w in self.workers])

    def peak_flops(self, dtypes: tuple[str, ...]) -> dict[str, float]:
        """Rank 0's measured matmul FLOP/s per dtype ('fp32', 'bf16') on its own threads (learner/flops.py)."""
        return ray.get(self.workers[0].peak_flops.remote(dtypes))

    def close(self) -> None:
        for w in self.workers:
            ray.kill(w)
        self.workers = []


def _rollout_metrics(old_logp: torch.Tensor, rollout_logp: torch.Tensor, mask: torch.Tensor,
                     tis_cap: float | None) -> dict[str, float]:
    """Engine-vs-learner mismatch: IS ratio pi_learner / pi_rollout stats and KL(rollout || learner) (k1, k3)."""
    valid = mask.bool()
    log_ratio = (old_logp - rollout_logp)[valid]  # (n_tokens,)
    ratio = log_ratio.exp()
    out = {"is_ratio_mean": float(ratio.mean()), "is_ratio_max": float(ratio.max()),
           "is_ratio_min": float(ratio.min()), "engine_kl_k1": float((-log_ratio).mean()),
           "engine_kl_k3": float((ratio - 1 - log_ratio).mean()),
           "engine_logp_absdiff_max": float(log_ratio.abs().max())}
    if tis_cap is not None:
        out["is_truncated_frac"] = float((ratio > tis_cap).float().mean())
        out["tis_weight_mean"] = float(ratio.clamp(max=tis_cap).mean())
    return out


def _reduce_steps(steps: list[list[dict]]) -> dict[str, float]:
    """Sum per-rank sums within a step, then average over optimizer steps."""
    per_step = []
    for ranks in steps:
        tot = {k: sum(r.get(k, 0.0) for r in ranks) for k in ranks[0]}
        tok = max(tot["tokens"], 1.0)
        m = {"loss": tot["loss"], "entropy": tot["entropy_sum"] / tok, "clip_frac": tot["clipfrac_sum"] / tok,
             "ratio_mean": tot["ratio_sum"] / tok, "grad_norm": ranks[0]["grad_norm"], "lr": ranks[0]["lr"]}
        if "kl_sum" in tot:
            m["kl"] = tot["kl_sum"] / tok
        if "value_loss" in tot:
            m.update(value_loss=tot["value_loss"], critic_grad_norm=ranks[0]["critic_grad_norm"])
        per_step.append(m)
    return {k: sum(s[k] for s in per_step) / len(per_step) for k in per_step[0]} | {"optimizer_steps": len(steps)}
