"""FLOPs of a decoder-only transformer, counted from its shape, and the machine's measured matmul peak.

Model FLOPs (what MFU counts; Kaplan et al. 2020 sec. 2.1, PaLM appendix B, causal attention counted once):
    forward, one sequence of L tokens = 2 * N * L + 4 * n_layers * d_attn * L * (L + 1) / 2
    forward + backward                = 3 x forward  (the backward computes two matmuls per forward one)
where N counts the parameters that take part in matmuls (attention q/k/v/o, gated MLP, LM head; not the input
embedding, a lookup) and d_attn = n_heads * head_dim. The second term is QK^T and AV (2 FLOPs per multiply-add,
two matmuls) over the L(L+1)/2 query-key pairs a causal mask keeps. Generating a sequence token by token costs
the forward of the whole sequence (prefill + one row per decoded token over the KV cache).

`peak_matmul_flops(dtype, threads)` times square matmuls on this process's CPU threads (a few hundred ms at
most, cached per process): the ceiling an MFU is measured against.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    """What the FLOP count needs from an HF config (Llama / Qwen2 / Mistral family: gated MLP)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    @classmethod
    def from_hf_config(cls, cfg) -> "ModelShape":
        """From a transformers PretrainedConfig or its config.json dict."""
        get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
        hidden, heads = get("hidden_size"), get("num_attention_heads")
        return cls(hidden=hidden, layers=get("num_hidden_layers"), heads=heads,
                   kv_heads=get("num_key_value_heads") or heads, head_dim=get("head_dim") or hidden // heads,
                   intermediate=get("intermediate_size"), vocab=get("vocab_size"))

    @property
    def matmul_params(self) -> int:
        """Parameters used in matmuls per token: attention and MLP projections of every layer, and the LM head."""
        d, hd = self.hidden, self.head_dim
        attn = d * self.heads * hd * 2 + d * self.kv_heads * hd * 2  # q, o; k, v
        mlp = 3 * d * self.intermediate  # gate, up, down
        return self.layers * (attn + mlp) + d * self.vocab

    def forward_flops(self, seq_lens) -> float:
        """Model FLOPs of one causal forward over sequences of these lengths (each attends to itself only)."""
        tokens = sum(seq_lens)
        pairs = sum(L * (L + 1) / 2 for L in seq_lens)
        return 2.0 * self.matmul_params * tokens + 4.0 * self.layers * self.heads * self.head_dim * pairs

    def train_flops(self, seq_lens) -> float:
        """Forward + backward (3 x forward)."""
        return 3.0 * self.forward_flops(seq_lens)


def load_shape(model_path: str) -> ModelShape:
    """The shape of an HF model directory (reads config.json only)."""
    import json
    from pathlib import Path

    return ModelShape.from_hf_config(json.loads((Path(model_path) / "config.json").read_text()))


@functools.lru_cache(maxsize=None)
def peak_matmul_flops(dtype: str = "fp32", threads: int | None = None, max_size: int = 1024,
                      budget_s: float = 0.15, device: str = "cpu") -> float:
    """Achieved FLOP/s of square matmuls in `dtype` ('fp32' or 'bf16') on `threads` torch threads (None: the
    current setting): the size doubles from 128 up to `max_size` while one matmul takes under budget_s / 8 (a CPU
    without bf16 kernels runs bf16 at < 1 GFLOP/s, and a 1024 matmul would take seconds), then the best of
    repeats within ~budget_s (at least 3). On a loaded machine this is what the process could get, not the
    hardware's peak: the load average belongs next to any MFU. `device` 'cuda' times the current GPU instead (use max_size 8192 there).
    Cached per process."""
    import torch

    if dtype not in ("fp32", "bf16"):
        raise ValueError(f"dtype={dtype!r}: expected 'fp32' or 'bf16'")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        dt = torch.float32 if dtype == "fp32" else torch.bfloat16
        g = torch.Generator().manual_seed(0)
        size = 128
        while True:
            a = torch.randn(size, size, generator=g).to(device=device, dtype=dt)
            b = torch.randn(size, size, generator=g).to(device=device, dtype=dt)
            out = torch.empty(size, size, dtype=dt, device=device)
            _timed_mm(a, b, out)  # warm-up: packing buffers, thread pool start
            best = min(_timed_mm(a, b, out) for _ in range(3))  # best of 3: a shared machine preempts
            if size >= max_size or best > budget_s / 8:
                break
            size *= 2
        start, reps = time.perf_counter(), 0
        while time.perf_counter() - start < budget_s or reps < 3:
            best, reps = min(best, _timed_mm(a, b, out)), reps + 1
        return 2.0 * size ** 3 / best
    finally:
        if threads is not None:
            torch.set_num_threads(before)


def _timed_mm(a, b, out) -> float:
    import torch

    sync = torch.cuda.synchronize if a.is_cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    torch.mm(a, b, out=out)
    sync()
    return time.perf_counter() - t0
