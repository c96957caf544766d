"""The real learner on real multi-turn records (engine + calculator, tiny embedded tool prior, fp32):
the learner's log-probs of the model-written tokens equal the engine's, and its update equals a plain-PyTorch
GRPO step whose loss sums over model tokens only, so the gradient with respect to tool tokens is zero (the same
step with the tool tokens in the loss is a different update)."""

import numpy as np
import pytest
import torch

from actors.config import RolloutConfig, SamplingConfig
from actors.pool import RolloutPool
from cluster.embedded.tasks import CALL_CLOSE, CALL_OPEN, OBS_CLOSE, OBS_OPEN, problems
from learner.config import AlgoConfig, LearnerConfig
from learner.group import LearnerGroup
from record.rollout import RolloutBatch
from tiny_models import tool_prior
from tools.calculator import Calculator

pytestmark = pytest.mark.slow
LR, EPS, TOL = 1e-2, 1e-3, 1e-4


@pytest.fixture(scope="module")
def prior():
    return tool_prior()


@pytest.fixture(scope="module")
def record(prior, ray_session) -> RolloutBatch:
    """4 groups x 4 samples with tool calls, rewards 1/0 alternating inside each group (non-zero advantages)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(prior)
    tool = Calculator(open_tag=CALL_OPEN, close_tag=CALL_CLOSE, obs_open=OBS_OPEN, obs_close=OBS_CLOSE)
    pool = RolloutPool(prior, RolloutConfig(dtype="float32", max_model_len=128, kv_cache_gib=0.1, max_turns=3),
                       tools=[tool])
    try:
        prompts = [tok(p.prompt)["input_ids"] for p in problems("test", 4, 0, 3)]
        batch = RolloutBatch(pool.generate(prompts, SamplingConfig(n=4, max_tokens=40, seed=3)))
    finally:
        pool.shutdown()
    batch.set_rewards([float(j % 2) for g in batch.groups for j in range(len(g))])
    assert sum(not s.loss_mask.all() for s in batch.samples()) >= 4  # enough samples hold tool tokens
    return batch


def test_learner_logprobs_equal_engine_logprobs_on_model_tokens(prior, record):
    group = LearnerGroup(LearnerConfig(zero_stage=0), AlgoConfig(), prior)
    try:
        got = group.logprobs([g.prompt_ids.tolist() for g in record.groups for _ in g],
                             [s.response_ids.tolist() for s in record.samples()])
    finally:
        group.close()
    worst = max(np.abs(np.array(lp)[s.loss_mask] - s.logprobs[s.loss_mask]).max()
                for lp, s in zip(got, record.samples()))
    assert worst < TOL
    # the record's 0.0 on tool tokens is not the model's log-prob: comparing there would be wrong
    assert max(np.abs(np.array(lp)[~s.loss_mask]).max() for lp, s in zip(got, record.samples())
               if not s.loss_mask.all()) > 0.1


def reference_step(prior, record: RolloutBatch, tool_tokens_in_loss: bool) -> dict:
    """One on-policy GRPO step written from the paper (DeepSeekMath Sec. 4.1.2): adv = (r - mean) / (std + eps)
    per group; loss = -sum_t adv * pi/pi_detached over loss tokens / their count (token_mean); AdamW."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(prior, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, eps=EPS, weight_decay=0.0)
    terms, n_tokens = [], 0
    for g in record.groups:
        r = torch.tensor([s.reward for s in g], dtype=torch.float32)
        adv = (r - r.mean()) / (r.std() + 1e-6)
        for s, a in zip(g, adv):
            ids = torch.tensor([g.prompt_ids.tolist() + s.response_ids.tolist()])
            logits = model(input_ids=ids).logits[0, len(g.prompt_ids) - 1:-1]  # (R, V)
            logits.retain_grad()
            logp = torch.log_softmax(logits, -1).gather(-1, ids[0, len(g.prompt_ids):, None]).squeeze(-1)
            keep = torch.ones(len(logp), dtype=torch.bool) if tool_tokens_in_loss else torch.tensor(s.loss_mask)
            terms.append((-a * torch.exp(logp - logp.detach())[keep]).sum())
            n_tokens += int(keep.sum())
            terms[-1].logits = logits  # kept for the zero-gradient check below
    loss = sum(terms) / n_tokens
    loss.backward()
    if not tool_tokens_in_loss:  # d loss / d logits is exactly zero at every tool token
        for t, s in zip(terms, record.samples()):
            assert t.logits.grad[torch.tensor(~s.loss_mask)].abs().sum().item() == 0.0
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return {k: v.detach() for k, v in model.state_dict().items()}


def test_update_on_multiturn_record_equals_model_token_only_reference(prior, record):
    group = LearnerGroup(LearnerConfig(zero_stage=2, lr=LR, eps=EPS, micro_batch_tokens=4096), AlgoConfig(), prior)
    try:
        group.train_step(record)
        learned = group.state_dict()
    finally:
        group.close()
    masked = reference_step(prior, record, tool_tokens_in_loss=False)
    unmasked = reference_step(prior, record, tool_tokens_in_loss=True)
    names = [n for n in learned if n in masked]
    assert len(names) >= 5
    assert max((learned[n] - masked[n]).abs().max().item() for n in names) < 1e-6
    assert max((learned[n] - unmasked[n]).abs().max().item() for n in names) > 1e-4
