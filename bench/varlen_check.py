"""The GPU path's attention for packed micro-batches (docs/scaling.md): one row of concatenated samples, position
ids restarting at 0 per sample, and PyTorch's variable-length flash attention (torch.nn.attention.varlen,
torch >= 2.13, CUDA) over cumulative sequence offsets: no (T, T) mask is built (transformers' mask function
for this implementation returns None). Used by bench_gpu_learner.py to check its log-probs against unpacked
ones before the learner adopts it.
"""

import time

NAME = "rlvr_varlen"
_SEQ = {}  # cu_seqlens and max length of the row being run (set per forward by packed_logp)


def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers attention interface: query (1, H, T, D), key/value (1, Hkv, T, D) -> ((1, T, H, D), None)."""
    from torch.nn.attention.varlen import varlen_attn

    q, k, v = (t[0].transpose(0, 1).contiguous() for t in (query, key, value))  # (T, H, D)
    cu, m = _SEQ["cu"], _SEQ["max"]
    out = varlen_attn(q, k, v, cu, cu, m, m, scale=scaling, window_size=(-1, 0),
                      enable_gqa=k.shape[1] != q.shape[1])  # (T, H, D), causal within each sequence
    return out[None], None


def register() -> None:
    from transformers import AttentionInterface, AttentionMaskInterface

    AttentionInterface.register(NAME, _attention)
    AttentionMaskInterface.register(NAME, lambda *a, **k: None)  # the kernel needs no mask


def packed_logp(model, batch: list[dict], device: str) -> list:
    """Per-sample response log-probs from one packed row through the varlen kernel."""
    import torch

    lens = [len(s["ids"]) for s in batch]
    ids = torch.tensor([t for s in batch for t in s["ids"]], device=device)[None]
    pos = torch.cat([torch.arange(n) for n in lens]).to(device)[None]
    offsets = [0]
    for n in lens:
        offsets.append(offsets[-1] + n)
    _SEQ.update(cu=torch.tensor(offsets, dtype=torch.int32, device=device), max=max(lens))
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids, position_ids=pos).logits[0].float(), -1)  # (T, V)
    out = []
    for s, start in zip(batch, offsets):
        tgt = [j for j in range(1, len(s["ids"])) if s["loss_mask"][j]]
        rows = torch.tensor([start + j - 1 for j in tgt], device=device)
        out.append(logp[rows].gather(-1, ids[0, [start + j for j in tgt], None]).squeeze(-1).cpu())
    return out


def varlen_gap(model_path: str, batch: list[dict], ref: list, device: str, dtype) -> str:
    """One line: the varlen forward's max |log p| gap to `ref` (unpacked) and its time, or why it was skipped."""
    import torch

    try:
        import torch.nn.attention.varlen  # noqa: F401
    except ImportError:
        return "varlen attention: skipped (torch.nn.attention.varlen not in this torch)"
    if device != "cuda":
        return "varlen attention: skipped (needs CUDA)"
    from transformers import AutoModelForCausalLM

    register()
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, attn_implementation=NAME).to(device)
    packed_logp(model.eval(), batch, device)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    got = packed_logp(model, batch, device)
    torch.cuda.synchronize()
    gap = max((g - r).abs().max().item() for g, r in zip(got, ref))
    return (f"varlen attention, one packed row of {sum(len(s['ids']) for s in batch)} tokens: forward "
            f"{time.perf_counter() - t0:.3f} s, max |log p - unpacked| {gap:.2e} nats "
            f"({'OK' if gap < 0.05 else 'FAIL'}, tolerance 0.05)")
