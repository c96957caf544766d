"""Weight sync, controller side: drives the learner's sending half and the pool's receiving half.

object_store: learner rank 0 puts each bucket once into Ray's object store; every engine loads the buckets.
collective:   learner rank 0 and all engines form one gloo/NCCL group (once, and again after an engine
              restart); per push, one control RPC per bucket tells engines its metadata, then rank 0
              broadcasts the bucket's flat buffer.
Every wait has a timeout whose error names the engines that did not answer.
"""
from __future__ import annotations

import socket
import time

import ray


class WeightSyncTimeout(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_all(refs: list, names: list[str], timeout_s: float, what: str) -> list:
    """ray.get with a deadline; on timeout say which of `names` did not answer."""
    ready, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    if pending:
        late = [names[refs.index(r)] for r in pending]
        raise WeightSyncTimeout(f"{what}: {', '.join(late)} did not answer within "
                                f"train.weight_sync.timeout_s={timeout_s:g}s")
    return ray.get(refs)


class WeightSync:
    def __init__(self, group, pool, cfg, host: str = "127.0.0.1"):
        self.group, self.pool, self.cfg, self.host = group, pool, cfg, host
        self._group_formed = False

    def push(self, version: int) -> dict:
        t0 = time.perf_counter()
        if self.cfg.transport == "object_store":
            refs = self.group.push_weights_object_store(self.cfg.bucket_mb)
            self.pool.load_weights(refs, version)
            n_buckets = len(refs)
        else:
            n_buckets = self._push_collective(version)
        return {"time/weight_sync": time.perf_counter() - t0, "weight_sync/buckets": n_buckets}

    def _form_group(self) -> None:
        port = _free_port()
        world = len(self.pool.engines) + 1
        engine_refs = self.pool.join_weight_group(self.host, port, self.cfg.timeout_s)
        learner_ref = self.group.start_weight_broadcast_group(self.host, port, world)
        names = ["learner rank 0"] + [f"engine {i}" for i in range(len(engine_refs))]
        wait_all([learner_ref] + engine_refs, names, self.cfg.timeout_s, "forming the weight-sync group")
        self._group_formed = True

    def _push_collective(self, version: int) -> int:
        # A restarted engine left the group (the pool drops it from its members): form a new group first,
        # before rank 0 starts broadcasting into a group that cannot complete.
        if not self._group_formed or self.pool.weight_group_incomplete():
            self._form_group()
        metas = self.group.weight_sync_meta(self.cfg.bucket_mb)
        send = self.group.start_broadcast_weights(self.cfg.bucket_mb)
        recv = [self.pool.receive_bucket(meta, version if k == len(metas) - 1 else None)
                for k, meta in enumerate(metas)]
        refs = send + [r for per_bucket in recv for r in per_bucket]
        names = [f"learner rank {i}" for i in range(len(send))]
        names += [f"engine {i} (bucket {k})" for k, per_bucket in enumerate(recv) for i in range(len(per_bucket))]
        wait_all(refs, names, self.cfg.timeout_s, f"weight push of version {version}")
        return len(metas)
