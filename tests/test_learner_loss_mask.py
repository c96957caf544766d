"""The learner honours the rollout record's loss_mask (real Ray + DeepSpeed LearnerGroup, tiny Qwen2).

Tokens with loss_mask False (a tool's output in a multi-turn rollout) are context only: no loss, advantage, KL,
entropy, IS weight or token count. Two claims, each on a two-epoch update (the second epoch has ratios != 1) with
truncated IS and an entropy bonus, so that every per-token term is live:
- what the record says about masked tokens (their engine log-probs; the ids of trailing ones) changes nothing;
- masked tokens at the end of a response weigh exactly nothing: the update equals the one without them.
"""

import random

import numpy as np
import pytest

from learner.config import AlgoConfig, LearnerConfig
from learner.group import LearnerGroup
from record.rollout import Group, RolloutBatch, Sample

pytestmark = pytest.mark.slow
TRAIL = 3  # masked (tool) tokens at the end of every response


def make_record(garbage: bool = False, trailing: bool = True, seed: int = 0) -> RolloutBatch:
    """2 groups x 3 samples; each response: model tokens, 2 masked tokens, model tokens, then TRAIL masked tokens."""
    rng, grng = random.Random(seed), random.Random(99)
    groups = []
    for g in range(2):
        prompt = [1] + [rng.randrange(3, 500) for _ in range(3)]
        samples = []
        for j in range(3):
            model_a = [rng.randrange(3, 500) for _ in range(rng.randrange(2, 5))]
            tool = [rng.randrange(3, 500) for _ in range(2)]
            model_b = [rng.randrange(3, 500) for _ in range(rng.randrange(1, 4))]
            tail = [rng.randrange(3, 500) for _ in range(TRAIL)]
            if garbage:  # other tool output at the end: not seen by any loss token
                tail = [grng.randrange(3, 500) for _ in range(TRAIL)]
            ids = model_a + tool + model_b + (tail if trailing else [])
            mask = [1] * len(model_a) + [0] * 2 + [1] * len(model_b) + ([0] * TRAIL if trailing else [])
            lp = [-6.2 + 0.3 * ((k % 3) - 1) if m else 0.0 for k, m in enumerate(mask)]  # rollout != learner
            if garbage:
                lp = [x if m else grng.uniform(-40.0, 5.0) for x, m in zip(lp, mask)]
            s = Sample(np.array(ids, np.int32), np.array(lp, np.float32), np.array(mask, bool), "stop", 0)
            s.reward = float(j == g)  # within each group: one rewarded sample
            samples.append(s)
        groups.append(Group(np.array(prompt, np.int32), samples, g, g))
    return RolloutBatch(groups)


def update(model_dir, batch: RolloutBatch):
    cfg = LearnerConfig(lr=1e-2, eps=1e-3, ppo_epochs=2, micro_batch_tokens=64, row_tokens=32)
    g = LearnerGroup(cfg, AlgoConfig(tis_cap=1.5, entropy_coef=0.01), model_dir)
    try:
        init = g.state_dict()
        metrics = g.train_step(batch)
        return init, metrics, g.state_dict()
    finally:
        g.close()


def test_masked_tokens_get_no_gradient_and_no_weight(ray_session, model_dir):
    init, m_base, p_base = update(model_dir, make_record())
    _, m_garbage, p_garbage = update(model_dir, make_record(garbage=True))
    _, m_short, p_short = update(model_dir, make_record(trailing=False))
    assert max((p_base[n] - init[n]).abs().max().item() for n in p_base) > 1e-3  # the update moved the weights
    assert 0 < m_base["is_truncated_frac"] < 1 and m_base["clip_frac"] >= 0  # IS weights live: some hit the cap
    # masked tokens' engine log-probs and trailing ids: the same update, the same engine-vs-learner metrics
    skip = {"time_logprobs_s", "time_update_s", "tokens_per_s"}
    for other in (m_garbage, m_short):
        assert {k: v for k, v in other.items() if k not in skip} == pytest.approx(
            {k: v for k, v in m_base.items() if k not in skip}, abs=1e-6)
    for p in (p_garbage, p_short):
        assert max((p_base[n] - p[n]).abs().max().item() for n in p_base) < 1e-6
    assert m_base["response_len_mean"] == pytest.approx(np.mean([s.num_loss_tokens for s in make_record().samples()]))
