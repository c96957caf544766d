"""Multi-turn rollouts with tools on the real vLLM engine (Ray actor) and a tiny embedded prior whose corpus
calls the calculator (`?a+b;=sum. #### sum`): observations are appended as tokens with loss mask 0, the model
tokens' engine log-probs equal a transformers forward over the whole token sequence (so nothing was
re-tokenised), slow calls time out without holding the batch, and the turn and token limits hold."""

import sys
import time
from dataclasses import dataclass

import pytest
import torch

import ray

from actors.config import RolloutConfig, SamplingConfig
from actors.pool import RolloutPool
from cluster.embedded.tasks import CALL_CLOSE, CALL_OPEN, OBS_CLOSE, OBS_OPEN, problems
from tiny_models import tool_prior
from tools.calculator import Calculator

pytestmark = pytest.mark.slow
TOL = 1e-4  # fp32 vLLM vs fp32 transformers
TAGS = dict(open_tag=CALL_OPEN, close_tag=CALL_CLOSE, obs_open=OBS_OPEN, obs_close=OBS_CLOSE)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the engine actors unpickle this module's tools


@dataclass(frozen=True)
class SlowCalculator(Calculator):
    """Sleeps before answering: `delay_s` for every call, `hang_s` more when the first operand is odd."""

    delay_s: float = 0.0
    hang_s: float = 0.0

    def execute(self, arg: str) -> str:
        time.sleep(self.delay_s + (self.hang_s if int(arg.split("+")[0]) % 2 else 0.0))
        return super().execute(arg)


@pytest.fixture(scope="module")
def prior():
    return tool_prior()


@pytest.fixture(scope="module")
def tokenizer(prior):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(prior)


def _pool(prior, tool, **cfg):
    rc = RolloutConfig(dtype="float32", max_model_len=128, kv_cache_gib=0.1, **cfg)
    return RolloutPool(prior, rc, tools=[tool])


def _prompts(tokenizer, n=6):
    return [tokenizer(p.prompt)["input_ids"] for p in problems("test", n, 0, 3)]


def _segments(s):
    """[(mask, ids)] runs of equal loss mask."""
    out = []
    for tok, m in zip(s.response_ids.tolist(), s.loss_mask.astype(int).tolist()):
        if out and out[-1][0] == m:
            out[-1][1].append(tok)
        else:
            out.append((m, [tok]))
    return out


@pytest.fixture(scope="module")
def pool(prior, ray_session):
    p = _pool(prior, Calculator(**TAGS), max_turns=3)
    yield p
    p.shutdown()


def test_tool_observation_is_appended_as_tokens_with_loss_mask_zero(pool, tokenizer):
    groups = pool.generate(_prompts(tokenizer), SamplingConfig(n=4, max_tokens=40, seed=0))
    called = [s for g in groups for s in g if s.tools["calls"]]
    assert len(called) >= 4, [s.text for g in groups for s in g]
    answered = 0
    for s in called:
        assert len(s.loss_mask) == len(s.response_ids) == len(s.logprobs)
        segs = _segments(s)
        # model call, tool observation, model answer (unless the budget ran out first), alternating
        assert [m for m, _ in segs] == [1, 0] * (len(segs) // 2) + [1] * (len(segs) % 2), segs
        assert len(segs) >= 3 or s.finish_reason == "length"
        call, obs = tokenizer.decode(segs[0][1]), tokenizer.decode(segs[1][1])
        assert call.endswith(CALL_CLOSE)
        result, status = Calculator().run(call.rsplit(CALL_OPEN, 1)[1][:-len(CALL_CLOSE)])
        if status == "ok":
            assert obs == OBS_OPEN + result + OBS_CLOSE  # the tool's answer, exactly, as tokens
            answered += 1
        assert all(lp == 0.0 for lp, m in zip(s.logprobs, s.loss_mask) if m == 0)
        assert all(lp <= 0.0 for lp, m in zip(s.logprobs, s.loss_mask) if m == 1)
        assert s.text == tokenizer.decode(s.response_ids.tolist(), skip_special_tokens=True)
    assert answered >= 2
    uncalled = [s for g in groups for s in g if not s.tools["calls"]]
    assert all(s.loss_mask.all() for s in uncalled)


def test_model_token_logprobs_match_a_transformers_forward_over_the_whole_sequence(pool, prior, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(prior, dtype=torch.float32).eval()
    groups = pool.generate(_prompts(tokenizer, 4), SamplingConfig(n=4, max_tokens=40, seed=1))
    worst, checked = 0.0, 0
    for g, s in ((g, s) for g in groups for s in g if s.tools["calls"]):
        ids = torch.tensor([g.prompt_ids.tolist() + s.response_ids.tolist()])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, len(g.prompt_ids) - 1:-1]
        ref = torch.log_softmax(logits, -1).gather(-1, ids[0, len(g.prompt_ids):, None]).squeeze(-1)
        mask = torch.tensor(s.loss_mask)
        worst = max(worst, (ref[mask] - torch.tensor(s.logprobs)[mask]).abs().max().item())
        checked += 1
    assert checked >= 2 and worst < TOL, (checked, worst)


def test_calls_run_concurrently_with_generation_and_slow_ones_time_out(prior, tokenizer, ray_session):
    tool = SlowCalculator(**TAGS, timeout_s=1.0, delay_s=0.4, hang_s=30.0)
    pool = _pool(prior, tool, max_turns=3)
    try:
        start = time.monotonic()
        groups = pool.generate(_prompts(tokenizer, 8), SamplingConfig(n=4, max_tokens=40, seed=0))
        wall = time.monotonic() - start
        print(f"generate with slow tools: {wall:.1f}s")
    finally:
        pool.shutdown()
    samples = [s for g in groups for s in g]
    calls = sum(s.tools["calls"] for s in samples)
    timeouts = sum(s.tools["timeouts"] for s in samples)
    assert calls >= 8 and timeouts >= 1, (calls, timeouts)
    # Run one after another, the calls alone would take calls * 0.4 s plus 1 s per timeout; a hung call
    # (30 s) must not hold the batch either.
    assert wall < 0.5 * (calls * 0.4 + timeouts * 1.0) and wall < 30, (wall, calls, timeouts)
    timed_out = [s for s in samples if s.tools["timeouts"]]
    # The observation ("timeout: ..." in characters outside this vocabulary) is appended and the sample goes on.
    assert all(not s.loss_mask.all() for s in timed_out)


def test_turn_and_token_limits_end_samples(prior, tokenizer, ray_session):
    pool = _pool(prior, Calculator(**TAGS), max_turns=1)
    try:
        one_turn = [s for g in pool.generate(_prompts(tokenizer), SamplingConfig(n=4, max_tokens=40, seed=0))
                    for s in g]
        short = [s for g in pool.generate(_prompts(tokenizer), SamplingConfig(n=4, max_tokens=6, seed=0)) for s in g]
    finally:
        pool.shutdown()
    assert all(s.tools["calls"] == 0 and s.tools["turns"] == 1 for s in one_turn)
    assert any(s.text.endswith(CALL_CLOSE) for s in one_turn)  # the call of the last turn is not run
    assert all(len(s.response_ids) <= 6 for s in short) and any(s.finish_reason == "length" for s in short)
