"""RolloutPool: N engine actors behind one interface.

    pool = RolloutPool(model_path, RolloutConfig(num_engines=2), actor_options=layout.engine_options)
    groups = pool.generate(prompt_token_ids, SamplingConfig(n=8))    # groups[i]: record Group of prompt i
    pool.load_weights(bucket_refs, version=1)                        # object-store push

A batch is split into contiguous shards, one per engine; a prompt's n samples stay on its engine (they share
the prompt's KV prefix) and results come back in prompt order. Engines are created with `max_restarts`:
when one dies Ray restarts it (re-running its constructor, so it serves the initial weights); the pool then
reloads the last pushed weights (it keeps their object-store refs and version) and retries that engine's
requests once; a second failure is raised as RolloutError naming the prompts. After a collective push the
pool holds no copy of the weights: a restarted engine is skipped (its requests retried on another engine)
until the next push, for which the controller re-forms the group (`weight_group_incomplete()`).
"""

import os
import time

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

from actors.config import RolloutConfig, SamplingConfig
from actors.engine import RolloutEngineActor
from actors.types import RolloutError, StaleWeightsError
from actors.weight_sync import Meta
from record.rollout import Group

# Read at torch/vLLM import, before the engine's constructor runs.
# vLLM logs every weight reload at INFO; keep the run's console to the progress bar (override in the env).
# OMP_WAIT_POLICY: idle OpenMP threads sleep instead of spinning, so an engine and a learner can share cores.
_ENGINE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "TORCHDYNAMO_DISABLE": "1", "OMP_WAIT_POLICY": "PASSIVE",
               "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "ERROR")}


def split_evenly(num_items: int, num_parts: int) -> list[range]:
    """Contiguous shards whose sizes differ by at most one."""
    base, extra = divmod(num_items, num_parts)
    shards, start = [], 0
    for i in range(num_parts):
        size = base + (i < extra)
        shards.append(range(start, start + size))
        start += size
    return shards


class RolloutPool:
    """Generation over N engine actors, weight pushes to all of them, recovery of restarted engines."""

    def __init__(self, model_path: str, cfg: RolloutConfig, actor_options: list[dict] | None = None,
                 ready_timeout_s: float = 600.0, tools: list | None = None):
        """`tools`: tools.base.Tool instances given to every engine (multi-turn rollouts); None: single turn."""
        if actor_options is not None and len(actor_options) != cfg.num_engines:
            raise ValueError(f"got {len(actor_options)} actor_options for rollout.num_engines={cfg.num_engines}; "
                             "pass one options dict per engine (cluster.placement builds them)")
        self.cfg, self.ready_timeout_s = cfg, ready_timeout_s
        options = actor_options or [{} for _ in range(cfg.num_engines)]
        self.engines = [RolloutEngineActor.options(**self._actor_options(o)).remote(model_path, cfg, i, tools)
                        for i, o in enumerate(options)]
        ray.get([e.health.remote() for e in self.engines], timeout=ready_timeout_s)
        self._version = 0
        self._weights: tuple[list, int] | None = None  # last object-store push: (bucket refs, version)
        self._group_members: set[int] = set()  # engines that joined the current weight-sync group
        self._stale: set[int] = set()  # engines that do not serve self._version; generate() skips them
        self.stats = {"recovered_engines": 0, "retried_prompts": 0}

    def _actor_options(self, given: dict) -> dict:
        opts = {"max_restarts": self.cfg.max_restarts, "max_task_retries": 0, **given}
        if "num_cpus" not in opts and "num_gpus" not in opts:
            opts["num_cpus"] = 1
        runtime_env = dict(opts.get("runtime_env") or {})
        runtime_env["env_vars"] = {**_ENGINE_ENV, **(runtime_env.get("env_vars") or {})}
        opts["runtime_env"] = runtime_env
        return opts

    @property
    def version(self) -> int:
        """Policy version the pool's engines serve (the last completed push)."""
        return self._version

    # --- generation -------------------------------------------------------------------------------------
    def generate(self, prompt_token_ids: list[list[int]], sampling: SamplingConfig) -> list[Group]:
        """One record Group of n samples per prompt, in prompt order; Group.problem (and group_id) is the
        prompt's position here."""
        live = self._live_engines()
        shards = split_evenly(len(prompt_token_ids), len(live))
        calls = [(i, shard, self._submit(i, prompt_token_ids, shard, sampling))
                 for i, shard in zip(live, shards) if len(shard)]
        results: list[Group] = [None] * len(prompt_token_ids)
        for i, shard, ref in calls:
            try:
                out = ray.get(ref, timeout=self.cfg.generate_timeout_s)
            except (RayActorError, StaleWeightsError) as first:
                out = self._retry(i, prompt_token_ids, shard, sampling, first)
            except GetTimeoutError as e:
                raise RolloutError(f"engine {i} did not answer prompts {shard.start}..{shard.stop - 1} within "
                                   f"rollout.generate_timeout_s={self.cfg.generate_timeout_s}") from e
            for idx, group in zip(shard, out):
                results[idx] = group
        return results

    def _live_engines(self) -> list[int]:
        live = [i for i in range(len(self.engines)) if i not in self._stale]
        if not live:
            raise RolloutError(f"no engine serves version {self._version}: engines {sorted(self._stale)} restarted "
                               "and could not be restored; push weights again (pool.load_weights or a collective "
                               "push) or raise rollout.max_restarts")
        return live

    def _submit(self, i: int, prompts: list[list[int]], shard: range, sampling: SamplingConfig):
        return self.engines[i].generate.remote([prompts[j] for j in shard], sampling, list(shard), self._version)

    def _retry(self, i, prompts, shard, sampling, first: Exception) -> list[Group]:
        """The engine died (or came back from a restart with old weights): recover it and retry there once;
        if it cannot be restored, retry once on another engine."""
        try:
            self._recover(i)
            target = i
        except Exception as e:  # permanently dead, or no copy of the current weights to restore it from
            self._stale.add(i)
            others = [j for j in self._live_engines() if j != i]
            if not others:
                raise RolloutError(f"engine {i} failed on prompts {shard.start}..{shard.stop - 1} ({first!r}) "
                                   f"and could not be restored: {e}") from e
            target = others[0]
        self.stats["retried_prompts"] += len(shard)
        try:
            return ray.get(self._submit(target, prompts, shard, sampling), timeout=self.cfg.generate_timeout_s)
        except Exception as second:
            raise RolloutError(
                f"prompts {shard.start}..{shard.stop - 1} failed twice: on engine {i} with {first!r}, then on "
                f"engine {target} with {second!r}") from second

    def _recover(self, i: int) -> None:
        """Wait for Ray's restart of engine i, then load the pool's current weights into it."""
        engine, deadline = self.engines[i], time.monotonic() + self.ready_timeout_s
        while True:  # a restarting actor answers 'unavailable' until its constructor finished
            try:
                served = ray.get(engine.version.remote(), timeout=max(1.0, deadline - time.monotonic()))
                break
            except ActorUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self._group_members.discard(i)  # a restarted process is no longer in the weight-sync group
        if served != self._version:
            if self._weights is None or self._weights[1] != self._version:
                raise RolloutError(
                    f"engine {i} restarted and serves version {served}; version {self._version} arrived over the "
                    "collective transport and the pool holds no object-store copy, so the engine waits for the "
                    "next push")
            ray.get(engine.load_weights_from_refs.remote(*self._weights), timeout=self.ready_timeout_s)
        self.stats["recovered_engines"] += 1

    # --- weights in -------------------------------------------------------------------------------------
    def load_weights(self, refs: list, version: int, timeout_s: float | None = None) -> None:
        """Object-store push to every engine. The pool keeps `refs` to restore engines that restart later.
        Engines that have not loaded within `timeout_s` (default: the pool's ready timeout) raise TimeoutError
        naming them; they are skipped by generate() until a later push reaches them."""
        self._weights, self._version = (list(refs), int(version)), int(version)
        calls = [(i, e.load_weights_from_refs.remote(refs, version)) for i, e in enumerate(self.engines)]
        self._await_loads(calls, version, timeout_s, recover=True)

    def load_weights_cuda_ipc(self, payloads: list[list], version: int, timeout_s: float | None = None) -> None:
        """CUDA IPC push: engine i maps payloads[i], exported by the learner rank on its GPU. A restarted engine
        is skipped until the next push (the handles die with the push), as after a collective push."""
        if len(payloads) != len(self.engines):
            raise ValueError(f"{len(payloads)} cuda_ipc payload lists for {len(self.engines)} engines; one per engine")
        self._version = int(version)
        calls = [(i, e.load_weights_cuda_ipc.remote(p, version))
                 for i, (e, p) in enumerate(zip(self.engines, payloads))]
        self._await_loads(calls, version, timeout_s, recover=False)

    def _await_loads(self, calls: list, version: int, timeout_s: float | None, recover: bool) -> None:
        limit = self.ready_timeout_s if timeout_s is None else timeout_s
        deadline, late = time.monotonic() + limit, []
        for i, ref in calls:
            try:
                ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
                self._stale.discard(i)
            except GetTimeoutError:
                late.append(i)
                self._stale.add(i)
            except RayActorError:
                self._stale.add(i)  # permanently dead, or restarted without a copy; generate() uses the others
                if recover:
                    try:
                        self._recover(i)  # restarted mid-push: _recover loads the new refs
                        self._stale.discard(i)
                    except RayActorError:
                        pass
        if late:
            raise TimeoutError(f"engines {late} did not finish loading weights version {version} within {limit:g}s")
        self._live_engines()  # raises if none is left

    def join_weight_group(self, master_addr: str, port: int, timeout_s: float = 120.0) -> list:
        """Collective transport: engines join as ranks 1..N of a group whose rank 0 (the learner) hosts the
        TCPStore at master_addr:port. Returns refs to wait on after the learner joined (joining blocks)."""
        world_size = len(self.engines) + 1
        self._group_members = set(range(len(self.engines)))
        return [e.join_weight_group.remote(master_addr, port, i + 1, world_size, timeout_s)
                for i, e in enumerate(self.engines)]

    def receive_bucket(self, meta: Meta, version: int | None = None) -> list:
        """Collective transport: every engine receives the next broadcast bucket; pass the push's version with
        its last bucket. Returns refs to wait on after the learner's broadcast."""
        missing = sorted(set(range(len(self.engines))) - self._group_members)
        if missing:
            raise RolloutError(f"engines {missing} are not in the weight-sync group (restarted, or never joined); "
                               "form a new group: pool.join_weight_group with a fresh port on both sides")
        if version is not None:  # the last bucket: every engine (stale ones too) ends on this version
            self._version, self._stale = int(version), set()
        return [e.receive_bucket.remote(meta, version) for e in self.engines]

    def weight_group_incomplete(self) -> bool:
        """True when some engine is not in the current weight-sync group (restarted, or never joined)."""
        return len(self._group_members) < len(self.engines)

    # --- colocated GPUs ---------------------------------------------------------------------------------
    def sleep(self) -> None:
        """Free the engines' GPU memory while a colocated learner trains (needs rollout.enable_sleep_mode)."""
        ray.get([e.sleep.remote() for e in self.engines], timeout=self.ready_timeout_s)

    def wake_up(self) -> None:
        ray.get([e.wake_up.remote() for e in self.engines], timeout=self.ready_timeout_s)

    # --- state ------------------------------------------------------------------------------------------
    def versions(self) -> list[int]:
        return ray.get([e.version.remote() for e in self.engines])

    def health(self) -> list[dict]:
        return ray.get([e.health.remote() for e in self.engines])

    def shutdown(self) -> None:
        for e in self.engines:
            ray.kill(e, no_restart=True)
        self.engines = []
