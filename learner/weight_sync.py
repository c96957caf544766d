"""Sending half of the weight-sync protocol (docs/design.md, "Weight-sync protocol").

A push is a sequence of buckets, each a list of `(hf_name, tensor)` of at most `bucket_mb` (a single larger
tensor gets a bucket of its own). Under ZeRO-3 every rank must walk the buckets together: each bucket is
gathered with `deepspeed.zero.GatheredParameters`, copied, and re-partitioned before the next, so peak extra
memory is about two buckets, not the model.
Transports: `put_buckets` (rank 0 `ray.put`s one dict per bucket) and `WeightBroadcaster` (rank 0 of a
standalone gloo/NCCL group over a TCPStore; engines are ranks 1..N and receive one flat uint8 buffer per bucket,
which they split with the bucket's metadata `[(name, dtype, shape)]`).
"""

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import timedelta

import torch

Bucket = list[tuple[str, torch.Tensor]]
BucketMeta = list[tuple[str, str, tuple[int, ...]]]


def _full_shape(p: torch.Tensor) -> tuple[int, ...]:
    return tuple(p.ds_shape) if hasattr(p, "ds_shape") else tuple(p.shape)  # ZeRO-3 params are partitioned


def plan_buckets(module: torch.nn.Module, bucket_mb: float) -> list[list[tuple[str, torch.nn.Parameter]]]:
    """Group named parameters, in `named_parameters` order, into buckets of <= bucket_mb each."""
    if bucket_mb <= 0:
        raise ValueError(f"bucket_mb={bucket_mb}: expected > 0 (the weight-sync bucket size in MiB)")
    limit = bucket_mb * 2**20
    plan: list[list[tuple[str, torch.nn.Parameter]]] = [[]]
    size = 0
    for name, p in module.named_parameters():
        nbytes = torch.Size(_full_shape(p)).numel() * p.element_size()
        if plan[-1] and size + nbytes > limit:
            plan.append([])
            size = 0
        plan[-1].append((name, p))
        size += nbytes
    return [b for b in plan if b]


def bucket_meta(plan: list[list[tuple[str, torch.nn.Parameter]]]) -> list[BucketMeta]:
    """`[(name, dtype, shape)]` per bucket; needs no gather."""
    return [[(n, str(p.dtype).removeprefix("torch."), _full_shape(p)) for n, p in b] for b in plan]


def iter_buckets(module: torch.nn.Module, bucket_mb: float, zero3: bool) -> Iterator[Bucket]:
    """Yield full (gathered) CPU-or-device tensors bucket by bucket; a collective under ZeRO-3 (all ranks)."""
    for planned in plan_buckets(module, bucket_mb):
        params = [p for _, p in planned]
        if zero3:
            import deepspeed

            ctx = deepspeed.zero.GatheredParameters(params, modifier_rank=None)
        else:
            ctx = nullcontext()
        with ctx:
            # Under ZeRO-3 the gathered storage is freed on exit, so copy; otherwise hand out views.
            bucket = [(n, p.detach().clone() if zero3 else p.detach()) for n, p in planned]
        yield bucket


def put_buckets(buckets: Iterator[Bucket]) -> list:
    """Object-store transport: one `ray.put(dict[name, tensor])` per bucket; returns the refs in order."""
    import ray

    return [ray.put({n: t.cpu() for n, t in b}) for b in buckets]


def flatten_bucket(bucket: Bucket) -> torch.Tensor:
    """All tensors of a bucket as one contiguous uint8 buffer, in bucket order (dtype-agnostic)."""
    return torch.cat([t.contiguous().reshape(-1).view(torch.uint8) for _, t in bucket])


class WeightBroadcaster:
    """Rank 0 of a standalone process group spanning learner rank 0 and N engines (ranks 1..N).

    Constructing it blocks until every engine has joined the same TCPStore with its own rank.
    """

    def __init__(self, host: str, port: int, world_size: int, timeout_s: float = 600.0):
        import torch.distributed as dist

        timeout = timedelta(seconds=timeout_s)
        self.store = dist.TCPStore(host, port, world_size, is_master=True, timeout=timeout, wait_for_workers=False)
        self.cuda = torch.cuda.is_available()
        if self.cuda:
            self.pg = dist.ProcessGroupNCCL(self.store, 0, world_size)
        else:
            self.pg = dist.ProcessGroupGloo(self.store, 0, world_size, timeout)

    def broadcast(self, bucket: Bucket) -> int:
        """Send one bucket as a flat buffer; returns its size in bytes."""
        import torch.distributed as dist

        flat = flatten_bucket(bucket)
        if self.cuda:
            flat = flat.cuda()
        opts = dist.BroadcastOptions()
        opts.rootRank = 0
        self.pg.broadcast([flat], opts).wait()
        return flat.numel()
