"""Weight sync end to end on the real stack: a DeepSpeed LearnerGroup updates, `cluster.weight_sync.WeightSync` pushes,
and vLLM engines in a RolloutPool then generate exactly as a transformers forward of the learner's exported
weights (`LearnerGroup.export_hf`): greedy tokens equal, sampled-token log-probs equal within fp32 noise.
Also: versions, bounded failures naming the engine (a frozen process, a dead one), restart rejoin, ZeRO-3.

One Ray runtime serves the module; the pool is rebuilt only when the engine count changes (tests are ordered
1 engine, then 2). Every push uses the next policy version, kept in `STATE`.
"""

import os
import random
import signal
import time

import pytest
import torch

import ray

from actors.config import RolloutConfig, SamplingConfig
from actors.pool import RolloutPool
from cluster.config import WeightSyncConfig
from cluster.weight_sync import WeightSync, WeightSyncError, WeightSyncTimeout
from learner.config import AlgoConfig, LearnerConfig
from learner.group import LearnerGroup
from batches import record_of

pytestmark = pytest.mark.slow

PROMPTS = [[1, 5, 6, 7], [1, 9, 9], [1, 20, 21, 22, 23, 24, 25], [1, 40]]
TOL = 1e-4  # fp32 vLLM vs fp32 transformers
BUCKET_MB = 0.05  # ~52 KB: several buckets for the ~110K-param model, so fused qkv/gate_up layers get split
STATE = {"version": 0, "pool": None}


@pytest.fixture(scope="module", autouse=True)
def _pool_closed_before_ray_stops(ray_session):
    yield
    if STATE["pool"] is not None:
        STATE["pool"].shutdown()


@pytest.fixture(scope="module")
def learner(ray_session, model_dir):
    g = LearnerGroup(LearnerConfig(zero_stage=2, lr=5e-3, micro_batch_tokens=512), AlgoConfig(), model_dir)
    yield g
    g.close()


def get_pool(model_dir: str, n_engines: int) -> RolloutPool:
    """The module's pool with `n_engines` engines (rebuilt on a change of count; engines start at version 0)."""
    pool = STATE["pool"]
    if pool is None or len(pool.engines) != n_engines:
        if pool is not None:
            pool.shutdown()
        cfg = RolloutConfig(dtype="float32", num_engines=n_engines, max_model_len=256, kv_cache_gib=0.25,
                            max_restarts=2)
        STATE["pool"] = pool = RolloutPool(model_dir, cfg)
    return pool


def update(group: LearnerGroup, seed: int) -> None:
    """One GRPO step on a synthetic batch (half of each group rewarded): the weights move."""
    rng = random.Random(seed)
    b = {k: [] for k in ("prompt_ids", "response_ids", "rewards", "group_ids", "finish_reason")}
    for g in range(2):
        prompt = [1] + [rng.randrange(3, 500) for _ in range(4)]
        for j in range(4):
            b["prompt_ids"].append(prompt)
            b["response_ids"].append([rng.randrange(3, 500) for _ in range(rng.randrange(2, 8))])
            b["rewards"].append(float(j < 2))
            b["group_ids"].append(g)
            b["finish_reason"].append("stop")
    b["rollout_logprobs"] = [[-6.2] * len(r) for r in b["response_ids"]]
    group.train_step(record_of(b))


def exported_model(group: LearnerGroup, out_dir):
    from transformers import AutoModelForCausalLM

    group.export_hf(str(out_dir))
    return AutoModelForCausalLM.from_pretrained(str(out_dir), dtype=torch.float32).eval()


def hf_logprobs(model, prompt_ids, response_ids) -> torch.Tensor:
    """(response, vocab) log-softmax at the positions that predict each response token."""
    prompt_ids, response_ids = [int(t) for t in prompt_ids], [int(t) for t in response_ids]
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1:-1].float()
    return torch.log_softmax(logits, -1)


def push(group, pool, transport: str, timeout_s: float = 120.0, sync: WeightSync | None = None) -> int:
    sync = sync or WeightSync(group, pool, WeightSyncConfig(transport=transport, bucket_mb=BUCKET_MB,
                                                            timeout_s=timeout_s))
    STATE["version"] += 1
    metrics = sync.push(STATE["version"])
    assert metrics["weight_sync/buckets"] > 2
    return STATE["version"]


def assert_engines_serve(pool: RolloutPool, model, version: int) -> None:
    """Every engine serves `version`; greedy and sampled outputs come from exactly `model`'s weights."""
    assert pool.versions() == [version] * len(pool.engines)
    greedy = pool.generate(PROMPTS, SamplingConfig(n=1, temperature=0.0, max_tokens=12))
    sampled = pool.generate(PROMPTS, SamplingConfig(n=2, temperature=1.0, max_tokens=12, seed=version))
    for group in greedy:  # greedy: each vLLM token is transformers' argmax given the same prefix (up to a tie
        s = group[0]      # within fp32 noise: then the runner-up's log-prob is within TOL of the top one)
        assert s.version == version
        lp = hf_logprobs(model, group.prompt_ids, s.response_ids)  # (response, vocab)
        chosen = lp.gather(-1, torch.tensor(s.response_ids, dtype=torch.long)[:, None])[:, 0]
        gap = (lp.max(-1).values - chosen).max().item()
        assert gap <= TOL, f"greedy token {lp.argmax(-1).tolist()} (transformers) vs {s.response_ids} (vLLM): {gap}"
    err = 0.0
    for group in sampled:
        for s in group:
            assert s.version == version
            ref = hf_logprobs(model, group.prompt_ids, s.response_ids).gather(
                -1, torch.tensor(s.response_ids, dtype=torch.long)[:, None])
            err = max(err, (ref[:, 0] - torch.tensor(s.logprobs)).abs().max().item())
    assert err <= TOL, f"engine log-probs differ from the exported weights' by {err}"


def engine_pid(pool: RolloutPool, i: int) -> int:
    return ray.get(pool.engines[i].health.remote())["pid"]


@pytest.mark.parametrize("n_engines,transport", [(1, "object_store"), (1, "collective"), (2, "object_store"),
                                                 (2, "collective")])
def test_engines_match_learner_export_after_update_and_push(learner, model_dir, tmp_path, n_engines, transport):
    pool = get_pool(model_dir, n_engines)
    before = exported_model(learner, tmp_path / "before")
    update(learner, seed=STATE["version"])
    version = push(learner, pool, transport)
    after = exported_model(learner, tmp_path / "after")
    assert_engines_serve(pool, after, version)
    # the update mattered: the weights before it give clearly different log-probs for the same tokens
    g = pool.generate(PROMPTS[:1], SamplingConfig(n=1, max_tokens=8, seed=1))[0]
    s = g[0]
    ids = torch.tensor(s.response_ids, dtype=torch.long)[:, None]
    diff = (hf_logprobs(before, g.prompt_ids, s.response_ids).gather(-1, ids)[:, 0] - torch.tensor(s.logprobs))
    assert diff.abs().max().item() > 100 * TOL


@pytest.mark.parametrize("transport", ["object_store", "collective"])
def test_push_to_frozen_engine_fails_within_timeout_naming_it_then_recovers(learner, model_dir, tmp_path, transport):
    pool = get_pool(model_dir, 2)
    sync = WeightSync(learner, pool, WeightSyncConfig(transport=transport, bucket_mb=BUCKET_MB, timeout_s=4))
    push(learner, pool, transport, sync=sync)  # the group (collective) exists before the engine freezes
    pid = engine_pid(pool, 1)
    os.kill(pid, signal.SIGSTOP)  # a real hang: the process is alive but answers nothing
    try:
        t0 = time.monotonic()
        with pytest.raises(WeightSyncTimeout, match=r"engines? \[?1\b.*timeout_s=4"):
            push(learner, pool, transport, sync=sync)
        assert time.monotonic() - t0 < 4 + 6  # the deadline, plus the learner's own share of the push
    finally:
        os.kill(pid, signal.SIGCONT)
    version = push(learner, pool, transport, sync=sync)  # the thawed engine takes the next push
    assert_engines_serve(pool, exported_model(learner, tmp_path / "m"), version)


def test_restarted_engine_rejoins_collective_group_at_next_push_and_serves_current_version(learner, model_dir,
                                                                                           tmp_path):
    pool = get_pool(model_dir, 2)
    sync = WeightSync(learner, pool, WeightSyncConfig(transport="collective", bucket_mb=BUCKET_MB, timeout_s=120))
    push(learner, pool, "collective", sync=sync)
    old_pid = engine_pid(pool, 1)
    ray.kill(pool.engines[1], no_restart=False)  # Ray restarts it with the initial weights, outside the group
    update(learner, seed=91)
    version = push(learner, pool, "collective", sync=sync)
    assert engine_pid(pool, 1) != old_pid
    assert_engines_serve(pool, exported_model(learner, tmp_path / "m"), version)


@pytest.mark.parametrize("transport", ["object_store", "collective"])
def test_zero3_two_rank_learner_push_matches_its_export(ray_session, model_dir, tmp_path, transport):
    pool = get_pool(model_dir, 2)
    group = LearnerGroup(LearnerConfig(zero_stage=3, num_ranks=2, lr=5e-3, micro_batch_tokens=512), AlgoConfig(),
                         model_dir)
    try:
        update(group, seed=7)
        version = push(group, pool, transport)  # every rank gathers bucket by bucket; rank 0 sends
        assert_engines_serve(pool, exported_model(group, tmp_path / "m"), version)
    finally:
        group.close()


def test_engine_dead_for_good_fails_collective_push_naming_it(learner, model_dir):
    pool = get_pool(model_dir, 2)
    ray.kill(pool.engines[1], no_restart=True)
    sync = WeightSync(learner, pool, WeightSyncConfig(transport="collective", bucket_mb=BUCKET_MB, timeout_s=60))
    t0 = time.monotonic()
    with pytest.raises(WeightSyncError, match="engine 1 is dead"):
        sync.push(STATE["version"] + 1)
    assert time.monotonic() - t0 < 30  # named at once, not after the timeout
