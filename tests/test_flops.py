"""learner/flops.py: the shape-based FLOP count against torch's own FLOP counter on a real HF forward/backward,
and the matmul peak micro-benchmark."""

import time

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import LlamaConfig, LlamaForCausalLM

from learner.flops import ModelShape, load_shape, peak_matmul_flops

CFG = dict(vocab_size=96, hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4,
           num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True)


def _counted(model, L: int, backward: bool) -> dict[str, int]:
    """torch's FLOP counts for one sequence of L tokens: eager attention's QK^T and AV are batched matmuls (bmm),
    the projections and LM head 2-D ones (mm)."""
    ids = torch.randint(0, CFG["vocab_size"], (1, L))
    with FlopCounterMode(display=False) as fc:
        out = model(input_ids=ids).logits
        if backward:
            out.float().sum().backward()
    counts: dict[str, int] = {}
    for op, n in fc.get_flop_counts()["Global"].items():
        key = "attn" if "bmm" in str(op) else "matmul"
        counts[key] = counts.get(key, 0) + n
    return counts


@pytest.mark.parametrize("backward", [False, True])
def test_flop_count_matches_torch_counter_on_hf_llama(backward):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**CFG, attn_implementation="eager"))
    shape = ModelShape.from_hf_config(model.config)
    L = 40
    counted = _counted(model, L, backward)
    mult = 3 if backward else 1
    assert counted["matmul"] == mult * 2 * shape.matmul_params * L  # every projection and the LM head, exactly
    # torch counts the full L x L score matrix; a causal model needs L(L+1)/2 of it
    full = counted["attn"]
    causal = shape.forward_flops([L]) * mult - mult * 2 * shape.matmul_params * L
    assert causal == pytest.approx(full * (L + 1) / (2 * L), rel=1e-9)
    assert shape.train_flops([L]) == pytest.approx(3 * shape.forward_flops([L]))


def test_shape_from_config_json_and_param_count(tmp_path):
    model = LlamaForCausalLM(LlamaConfig(**CFG))
    model.save_pretrained(tmp_path)
    shape = load_shape(str(tmp_path))
    assert shape == ModelShape.from_hf_config(model.config)
    n_all = sum(p.numel() for p in model.parameters())  # tied head: the embedding counts once
    norms = sum(p.numel() for n, p in model.named_parameters() if "norm" in n)
    assert shape.matmul_params == n_all - norms  # the tied embedding is used as the head's matmul


def test_peak_matmul_flops_is_measured_quickly_and_cached():
    # CPU seconds of this process (1 thread), not wall time: the machine may be shared and preempt us
    t0 = time.process_time()
    fp32 = peak_matmul_flops("fp32", 1)
    took = time.process_time() - t0
    assert 1e9 < fp32 < 1e13 and took < 2.0  # a CPU core does GFLOP/s to a few hundred; budget ~0.15 s
    t0 = time.process_time()
    assert peak_matmul_flops("bf16", 1) > 0 and time.process_time() - t0 < 2.0  # bounded without bf16 kernels too
    t0 = time.perf_counter()
    assert peak_matmul_flops("fp32", 1) == fp32 and time.perf_counter() - t0 < 0.01
    before = torch.get_num_threads()
    peak_matmul_flops("bf16", 2, budget_s=0.05)
    assert torch.get_num_threads() == before  # the caller's thread setting is restored
    with pytest.raises(ValueError, match="dtype='fp16'"):
        peak_matmul_flops("fp16", 1)
