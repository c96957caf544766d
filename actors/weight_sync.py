"""Receiving half of the weight-sync protocol (docs/design.md, "Weight-sync protocol").

Wire format of the collective transport, per bucket (the learner's sender must match it):
  meta  = [(hf_name, dtype, shape), ...]   dtype as a string ("float32", "bfloat16"; "torch." prefix allowed)
  flat  = one torch.uint8 tensor: the raw bytes of each tensor (contiguous, C order) concatenated in meta
          order, no padding; broadcast from group rank 0 (learner rank 0) to ranks 1..N (the engines).
The object-store transport sends each bucket as a `dict[hf_name, tensor]` instead. The CUDA IPC transport
(colocated GPU engines) sends, per bucket, `(meta, (rebuild_fn, args))` from torch's `reduce_tensor` of the
same flat buffer living on the learner's GPU; the engine maps that memory and splits it like a broadcast one.

Loading: vLLM's `reload_weights(weights_iterator=..., is_checkpoint_format=True)` maps HF names and repacks.
A whole push must go through ONE reload_weights call: vLLM rebuilds fused layers (qkv, gate_up) from meta
tensors, so a call that loads only q of a qkv layer leaves k/v as garbage. Buckets may split such layers, so
the collective path streams buckets into one running reload (a loader thread fed by a queue) and the
object-store path chains its refs into one iterator. Afterwards the prefix cache is reset (stale KV corrupts
log-probs).
"""

import queue
import threading
from collections.abc import Iterable, Iterator
from datetime import timedelta

import torch

Meta = list[tuple[str, str, list[int]]]
_END = object()


def parse_dtype(dtype) -> torch.dtype:
    """torch.dtype from 'float32' / 'torch.float32' / a torch.dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).removeprefix("torch.")
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"weight-sync meta dtype {dtype!r} is not a torch dtype (e.g. 'float32', 'bfloat16')")
    return value


def bucket_nbytes(meta: Meta) -> int:
    """Size in bytes of the flat buffer that carries a bucket with this meta."""
    return sum(_numel(shape) * parse_dtype(dt).itemsize for _, dt, shape in meta)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def unflatten_bucket(meta: Meta, flat: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Split a flat uint8 buffer into (name, tensor) pairs by meta (see the module docstring)."""
    if flat.dtype != torch.uint8 or flat.dim() != 1:
        raise ValueError(f"flat bucket buffer must be 1-D torch.uint8, got {flat.dtype} with shape {tuple(flat.shape)}")
    if flat.numel() != bucket_nbytes(meta):
        raise ValueError(f"flat bucket buffer has {flat.numel()} bytes, meta describes {bucket_nbytes(meta)}")
    pairs, offset = [], 0
    for name, dt, shape in meta:
        dtype = parse_dtype(dt)
        nbytes = _numel(shape) * dtype.itemsize
        chunk = flat[offset:offset + nbytes]
        if offset % dtype.itemsize:  # a view at an odd offset cannot be reinterpreted as fp32: copy it
            chunk = chunk.clone()
        pairs.append((name, chunk.view(dtype).reshape(list(shape))))
        offset += nbytes
    return pairs


def reload_weights(llm, pairs: Iterable[tuple[str, torch.Tensor]]) -> None:
    """Load HF-named tensors into a running in-process vLLM engine, then drop the stale prefix cache."""
    llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(pairs), "is_checkpoint_format": True})
    llm.reset_prefix_cache()


def iter_object_store_buckets(refs: list) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs from bucket refs, fetching one bucket at a time."""
    import ray

    for i, ref in enumerate(refs):
        bucket = ray.get(ref)
        if not isinstance(bucket, dict):
            raise TypeError(f"object-store bucket {i} is a {type(bucket).__name__}; expected dict[name, tensor]")
        yield from bucket.items()


def rebuild_cuda_ipc(handle: tuple, device: int) -> torch.Tensor:
    """Map a tensor shared by `reduce_tensor` in another process. Each Ray actor numbers its visible GPUs
    from 0, so the sender's device index is replaced by this process's own index of the same GPU."""
    rebuild, args = handle
    args = list(args)
    args[6] = device  # rebuild_cuda_tensor(..., storage_device, ...)
    return rebuild(*args)


def iter_cuda_ipc_buckets(payloads: list, device: int) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs, views of the learner's exported GPU buffers (valid until the learner releases)."""
    for i, payload in enumerate(payloads):
        if not (isinstance(payload, (tuple, list)) and len(payload) == 2):
            raise TypeError(f"cuda_ipc bucket {i} is a {type(payload).__name__}; expected (meta, ipc_handle)")
        meta, handle = payload
        yield from unflatten_bucket(meta, rebuild_cuda_ipc(handle, device))


class CollectiveReceiver:
    """One engine's membership in the weight-sync process group, and its streaming reload of a push."""

    def __init__(self, llm):
        self.llm = llm
        self.group = None
        self.rank = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def join(self, master_addr: str, port: int, rank: int, world_size: int, timeout_s: float) -> None:
        """Join the group (blocks until all ranks, including learner rank 0 which hosts the store, joined)."""
        if not 1 <= rank < world_size:
            raise ValueError(f"engine rank {rank} must be in 1..{world_size - 1} (rank 0 is the learner)")
        timeout = timedelta(seconds=timeout_s)
        store = torch.distributed.TCPStore(master_addr, port, world_size, is_master=False, timeout=timeout)
        self.group = torch.distributed.ProcessGroupGloo(store, rank, world_size, timeout)
        self.rank = rank

    @property
    def in_push(self) -> bool:
        return self._thread is not None

    def receive(self, meta: Meta, last: bool) -> None:
        """Receive one broadcast bucket and feed it to the running reload; `last` ends the push."""
        if self.group is None:
            raise RuntimeError("receive_bucket before join_weight_group: the engine is not in a weight-sync group")
        flat = torch.empty(bucket_nbytes(meta), dtype=torch.uint8)
        try:
            self.group.broadcast(flat, 0).wait()
        except BaseException:
            self.abort()  # a failed collective poisons the group; the caller marks the weights undefined
            raise
        if self._thread is None:
            self._start()
        self._queue.put(unflatten_bucket(meta, flat))
        if last:  # a load error is raised here, after the sender's whole push was consumed
            self._queue.put(_END)
            self._finish()

    def abort(self) -> bool:
        """End a half-received push; True if there was one (the weights are then undefined until a full push)."""
        if self._thread is None:
            return False
        self._queue.put(_END)
        self._thread.join()
        self._thread, self._queue, self._error = None, None, None
        return True

    def _start(self) -> None:
        self._queue, self._error = queue.Queue(), None

        def pairs():
            while (bucket := self._queue.get()) is not _END:
                yield from bucket

        def run():
            try:
                reload_weights(self.llm, pairs())
            except BaseException as e:  # surfaced to the caller in _finish
                self._error = e
                while self._queue.get() is not _END:  # let the sender's remaining buckets drain
                    pass

        self._thread = threading.Thread(target=run, name="weight-reload", daemon=True)
        self._thread.start()

    def _finish(self) -> None:
        self._thread.join()
        error = self._error
        self._thread, self._queue, self._error = None, None, None
        if error is not None:
            raise RuntimeError(f"loading the pushed weights failed: {error!r}") from error
