"""Weight sync, controller side: drives the learner's sending half and the pool's receiving half.

object_store: learner rank 0 puts each bucket once into Ray's object store; every engine loads the buckets.
collective:   learner rank 0 and all engines form one gloo/NCCL group (once, again after an engine restart and
              after a failed push); per push, one control RPC per bucket tells engines its metadata, then rank 0
              broadcasts the bucket's flat buffer.
cuda_ipc:     colocated GPU engines: learner rank i exports CUDA IPC handles of flat bucket buffers on its GPU,
              engine i maps and loads them; the ranks free the buffers once every engine answered.
Every wait has a deadline (train.weight_sync.timeout_s); its error names the engines that did not answer. The
learner's side of the collective group uses the same timeout, so a hung engine cannot wedge learner rank 0.
"""
from __future__ import annotations

import time

import ray
from ray.exceptions import ActorUnavailableError, RayActorError

from learner.group import free_port


class WeightSyncError(RuntimeError):
    pass


class WeightSyncTimeout(WeightSyncError):
    pass


def wait_all(refs: list, names: list[str], timeout_s: float, what: str) -> list:
    """ray.get with a deadline; on timeout say which of `names` did not answer, on an error whose it was."""
    ready, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    if pending:
        late = [names[refs.index(r)] for r in pending]
        raise WeightSyncTimeout(f"{what}: {', '.join(late)} did not answer within "
                                f"train.weight_sync.timeout_s={timeout_s:g}s")
    out = []
    for ref, name in zip(refs, names):
        try:
            out.append(ray.get(ref))
        except Exception as e:
            raise WeightSyncError(f"{what}: {name} failed: {e}") from e
    return out


class WeightSync:
    """`push(version)` sends the learner's current weights to every engine over `cfg.transport`."""

    def __init__(self, group, pool, cfg, host: str = "127.0.0.1"):
        self.group, self.pool, self.cfg, self.host = group, pool, cfg, host
        self._group_formed = False

    def push(self, version: int) -> dict:
        t0 = time.perf_counter()
        if self.cfg.transport == "object_store":
            refs = self.group.push_weights_object_store(self.cfg.bucket_mb)
            try:
                self.pool.load_weights(refs, version, timeout_s=self.cfg.timeout_s)
            except TimeoutError as e:
                raise WeightSyncTimeout(f"weight push of version {version}: {e} "
                                        f"(train.weight_sync.timeout_s={self.cfg.timeout_s:g})") from e
            n_buckets = len(refs)
        elif self.cfg.transport == "cuda_ipc":
            n_buckets = self._push_cuda_ipc(version)
        else:
            n_buckets = self._push_collective(version)
        return {"time/weight_sync": time.perf_counter() - t0, "weight_sync/buckets": n_buckets}

    # --- collective -------------------------------------------------------------------------------------
    def _engines_in_group(self) -> bool:
        """Ask every engine whether it is in the group. A restarted engine left it (its new process has no
        group) even if the pool has not noticed the restart yet; a dead or hung engine is named here."""
        n, deadline = len(self.pool.engines), time.monotonic() + self.cfg.timeout_s
        answers: dict[int, dict] = {}
        died: dict[int, int] = {}  # a call in flight when an engine restarts fails once; a dead one keeps failing
        while len(answers) < n:
            asked = {i: self.pool.engines[i].health.remote() for i in range(n) if i not in answers}
            ready, _ = ray.wait(list(asked.values()), num_returns=len(asked),
                                timeout=max(0.0, deadline - time.monotonic()))
            for i, ref in asked.items():
                if ref not in ready:
                    continue
                try:
                    answers[i] = ray.get(ref)
                except ActorUnavailableError:
                    pass  # restarting: its constructor has not finished; ask again
                except RayActorError as e:
                    died[i] = died.get(i, 0) + 1
                    if died[i] < 2:
                        continue
                    raise WeightSyncError(f"engine {i} is dead and cannot join the weight-sync group ({e}); raise "
                                          "rollout.max_restarts or restart the run") from e
            missing = [i for i in range(n) if i not in answers]
            if missing and time.monotonic() >= deadline:
                raise WeightSyncTimeout(f"checking the weight-sync group: {', '.join(f'engine {i}' for i in missing)} "
                                        f"did not answer within train.weight_sync.timeout_s={self.cfg.timeout_s:g}s")
            if missing:
                time.sleep(0.2)
        return all(answers[i]["in_group"] for i in range(n))

    def _form_group(self) -> None:
        port = free_port()
        world = len(self.pool.engines) + 1
        engine_refs = self.pool.join_weight_group(self.host, port, self.cfg.timeout_s)
        learner_ref = self.group.start_weight_broadcast_group(self.host, port, world, self.cfg.timeout_s)
        names = ["learner rank 0"] + [f"engine {i}" for i in range(len(engine_refs))]
        wait_all([learner_ref] + engine_refs, names, self.cfg.timeout_s, "forming the weight-sync group")
        self._group_formed = True

    def _push_collective(self, version: int) -> int:
        # A restarted engine left the group: form a new group first, before rank 0 starts broadcasting into a
        # group that cannot complete. A failed push poisons the group, so it is formed anew after one.
        self._group_formed = self._group_formed and not self.pool.weight_group_incomplete()
        if not self._engines_in_group():
            self._group_formed = False
        if not self._group_formed:
            self._form_group()
        self._group_formed = False  # until this push completes
        metas = self.group.weight_sync_meta(self.cfg.bucket_mb)
        send = self.group.start_broadcast_weights(self.cfg.bucket_mb)
        recv = [self.pool.receive_bucket(meta, version if k == len(metas) - 1 else None)
                for k, meta in enumerate(metas)]
        refs = send + [r for per_bucket in recv for r in per_bucket]
        names = [f"learner rank {i}" for i in range(len(send))]
        names += [f"engine {i} (bucket {k})" for k, per_bucket in enumerate(recv) for i in range(len(per_bucket))]
        wait_all(refs, names, self.cfg.timeout_s, f"weight push of version {version}")
        self._group_formed = True
        return len(metas)

    # --- cuda_ipc ---------------------------------------------------------------------------------------
    def _push_cuda_ipc(self, version: int) -> int:
        payloads = self.group.push_weights_cuda_ipc(self.cfg.bucket_mb, len(self.pool.engines))
        try:
            self.pool.load_weights_cuda_ipc(payloads, version, timeout_s=self.cfg.timeout_s)
        except TimeoutError as e:
            raise WeightSyncTimeout(f"weight push of version {version}: {e} "
                                    f"(train.weight_sync.timeout_s={self.cfg.timeout_s:g})") from e
        finally:
            self.group.release_cuda_ipc()
        return len(payloads[0]) if payloads else 0
