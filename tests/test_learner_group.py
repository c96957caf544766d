"""LearnerGroup under real Ray with real DeepSpeed ranks (gloo): ZeRO/world-size equivalence, every algorithm
learning from rewards, SFT, checkpoints and both weight-sync transports.

One Ray runtime (private temp dir) serves the module; each group is closed when its test ends.
"""

import os
import random
from datetime import timedelta

import pytest
import ray
import torch

from learner.config import AlgoConfig, CriticConfig, LearnerConfig
from learner.group import LearnerGroup, free_port
from batches import record_of

pytestmark = pytest.mark.slow


def make_batch(n_groups=2, per_group=4, seed=0):
    """Groups of `per_group` samples: the first half of each group is rewarded 1, the rest 0."""
    rng = random.Random(seed)
    b = {k: [] for k in ("prompt_ids", "response_ids", "rewards", "group_ids", "finish_reason")}
    for g in range(n_groups):
        prompt = [1] + [rng.randrange(3, 500) for _ in range(rng.randrange(2, 6))]
        for j in range(per_group):
            b["prompt_ids"].append(prompt)
            b["response_ids"].append([rng.randrange(3, 500) for _ in range(rng.randrange(2, 8))])
            b["rewards"].append(1.0 if j < per_group // 2 else 0.0)
            b["group_ids"].append(g)
            b["finish_reason"].append("stop")
    b["rollout_logprobs"] = [[-6.2] * len(r) for r in b["response_ids"]]  # ~log(1/512): near the tiny model
    return b


def on_policy(group, batch):
    """Replace rollout log-probs with the learner's own (as a matching rollout engine would report)."""
    return dict(batch, rollout_logprobs=group.logprobs(batch["prompt_ids"], batch["response_ids"]))


def test_zero2_zero3_and_world_sizes_1_2_reach_the_same_params(ray_session, model_dir):
    # AdamW's eps=1e-3 keeps gradients that are zero up to float noise (e.g. key biases, which softmax ignores)
    # from being normalised into lr-sized steps whose sign depends on the reduction order across ranks.
    batch = make_batch()
    params = {}
    for stage, ranks in [(2, 1), (2, 2), (3, 2)]:
        cfg = LearnerConfig(zero_stage=stage, num_ranks=ranks, lr=1e-3, eps=1e-3, micro_batch_tokens=24,
                            mini_batches=2)
        g = LearnerGroup(cfg, AlgoConfig(kl_coef=0.05, loss_agg="seq_mean_token_mean"), model_dir)
        init = g.state_dict()
        g.train_step(record_of(batch))
        params[(stage, ranks)] = g.state_dict()
        g.close()
    base = params[(2, 1)]
    assert max((base[n] - init[n]).abs().max().item() for n in base) > 1e-4  # two steps moved the weights
    for key, p in params.items():
        diff = max((base[n] - p[n]).abs().max().item() for n in base)
        assert diff < 1e-6, f"{key} differs from ZeRO-2 world size 1 by {diff}"


def test_shared_prompts_rows_and_threads_take_the_same_on_policy_step(ray_session, model_dir):
    """One optimizer step per batch (old log-probs from the update's own forward), laid out three ways: every
    sample in its own block of one row; prompts shared in rows of 16 tokens over two ranks; prompts shared with
    two passive-waiting threads per rank. Same step each time."""
    batch = make_batch(n_groups=3, per_group=4, seed=3)
    layouts = {"unshared": dict(share_prompts=False, row_tokens=None),
               "shared_rows_2ranks": dict(share_prompts=True, row_tokens=16, num_ranks=2),
               "shared_2threads": dict(share_prompts=True, num_threads=2)}
    params, metrics = {}, {}
    for name, opts in layouts.items():
        g = LearnerGroup(LearnerConfig(lr=1e-3, eps=1e-3, micro_batch_tokens=40, **opts), AlgoConfig(), model_dir)
        def threads(_worker):  # nested, so it travels to the actor by value
            import os

            return torch.get_num_threads(), os.environ["OMP_WAIT_POLICY"]

        # num_threads unset: the cores shared among the ranks (so a sync-schedule learner uses the whole machine)
        expected = opts.get("num_threads") or max(1, len(os.sched_getaffinity(0)) // opts.get("num_ranks", 1))
        assert ray.get(g.workers[0].__ray_call__.remote(threads)) == (expected, "PASSIVE")
        metrics[name] = g.train_step(record_of(batch))
        params[name] = g.state_dict()
        g.close()
    base = params["unshared"]
    for name in layouts:
        assert metrics[name]["time_logprobs_s"] < 0.05  # no separate old-log-prob pass
        assert metrics[name]["loss"] == pytest.approx(metrics["unshared"]["loss"], abs=1e-6)
        diff = max((base[n] - params[name][n]).abs().max().item() for n in base)
        assert diff < 1e-6, f"{name} differs from the unshared layout by {diff}"


ALGOS = {
    "grpo": AlgoConfig(advantage="grpo", kl_coef=0.01, kl_in="loss", kl_estimator="k3", clip_high=0.28),
    "dr_grpo": AlgoConfig(advantage="dr_grpo", loss_agg="seq_mean_token_sum_norm", loss_norm_len=8, dual_clip=3.0,
                          entropy_coef=1e-3),
    "rloo": AlgoConfig(advantage="rloo", loss_agg="seq_mean_token_mean", kl_coef=0.01, kl_in="reward",
                       kl_estimator="k1", tis_cap=2.0),
    "reinforce_pp": AlgoConfig(advantage="reinforce_pp", kl_coef=0.01, kl_in="reward", kl_estimator="k2",
                               overlong_max_len=8, overlong_buffer_len=4),
    "gae": AlgoConfig(advantage="gae", gamma=1.0, lam=0.95, critic=CriticConfig(lr=1e-3)),
}


@pytest.mark.parametrize("name", list(ALGOS))
def test_every_algorithm_raises_logprob_of_rewarded_responses(ray_session, model_dir, name):
    """A smoke test of direction over several steps; the exact update of each algorithm is checked against
    plain loops from the papers in test_learner_parity.py."""
    cfg = LearnerConfig(zero_stage=2, num_ranks=1, lr=3e-3, micro_batch_tokens=32, mini_batches=2, ppo_epochs=2)
    g = LearnerGroup(cfg, ALGOS[name], model_dir)
    batch = make_batch(seed=1)
    good = [i for i, r in enumerate(batch["rewards"]) if r == 1.0]

    def margin():  # mean response log-prob of rewarded minus unrewarded samples
        lp = [sum(x) / len(x) for x in g.logprobs(batch["prompt_ids"], batch["response_ids"])]
        return sum(lp[i] for i in good) / len(good) - sum(lp[i] for i in range(len(lp)) if i not in good) / len(good)

    before = margin()
    for _ in range(3):
        m = g.train_step(record_of(on_policy(g, batch)))
    after = margin()
    g.close()
    assert after > before + 0.05, f"{name}: margin {before:.3f} -> {after:.3f}"
    assert m["optimizer_steps"] == 4 and all(v == v for v in m.values()), m  # 2 epochs x 2 mini-batches; no NaN
    if name == "gae":
        assert m["value_loss"] > 0 and m["critic_grad_norm"] > 0


@pytest.fixture(scope="module")
def z3_group(ray_session, model_dir):
    g = LearnerGroup(LearnerConfig(zero_stage=3, num_ranks=2, lr=1e-3, micro_batch_tokens=24),
                     AlgoConfig(), model_dir)
    yield g
    g.close()


def test_sft_step_loss_equals_transformers_loss_across_two_ranks(z3_group, model_dir):
    from transformers import AutoModelForCausalLM

    batch = make_batch(seed=2)
    ids = [p + r for p, r in zip(batch["prompt_ids"], batch["response_ids"])]
    masks = [[0] * len(p) + [1] * len(r) for p, r in zip(batch["prompt_ids"], batch["response_ids"])]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.load_state_dict(z3_group.state_dict(), strict=False)  # lm_head is tied to the embeddings
    T = max(map(len, ids))
    inp = torch.tensor([x + [0] * (T - len(x)) for x in ids])
    labels = torch.tensor([[t if m else -100 for t, m in zip(x, mk)] + [-100] * (T - len(x))
                           for x, mk in zip(ids, masks)])
    with torch.no_grad():
        hf_loss = model(input_ids=inp, attention_mask=(inp != 0).long(),
                        labels=labels).loss.item()
    m = z3_group.sft_step({"input_ids": ids, "loss_mask": masks})
    assert m["sft_loss"] == pytest.approx(hf_loss, abs=1e-5)
    assert z3_group.sft_step({"input_ids": ids, "loss_mask": masks})["sft_loss"] < m["sft_loss"]


def test_checkpoint_resume_under_zero3_two_ranks_is_bit_exact(z3_group, tmp_path):
    batch = make_batch(seed=3)
    z3_group.save_checkpoint(str(tmp_path))
    step = z3_group.step
    z3_group.train_step(record_of(batch))
    first = z3_group.state_dict()
    z3_group.load_checkpoint(str(tmp_path))
    assert z3_group.step == step
    z3_group.train_step(record_of(batch))
    second = z3_group.state_dict()
    assert all(torch.equal(first[n], second[n]) for n in first)


@ray.remote(num_cpus=0)
class Receiver:
    """Test stand-in for an engine's receiving half: rank 1 of the weight broadcast group."""

    def join(self, host, port, world_size, rank):
        import torch.distributed as dist

        self.store = dist.TCPStore(host, port, world_size, is_master=False, timeout=timedelta(seconds=60))
        self.pg = dist.ProcessGroupGloo(self.store, rank, world_size, timedelta(seconds=60))

    def recv(self, meta):
        import torch.distributed as dist

        sizes = [torch.Size(shape).numel() * getattr(torch, dtype).itemsize for _, dtype, shape in meta]
        flat = torch.empty(sum(sizes), dtype=torch.uint8)
        opts = dist.BroadcastOptions()
        opts.rootRank = 0
        self.pg.broadcast([flat], opts).wait()
        out = {}
        for (name, dtype, shape), chunk in zip(meta, torch.split(flat, sizes)):
            out[name] = chunk.view(getattr(torch, dtype)).reshape(shape).clone()
        return out


def test_weight_sync_object_store_and_broadcast_deliver_all_params(z3_group):
    bucket_mb = 0.05  # ~52 KB: several buckets for the ~110K-param model
    expected = z3_group.state_dict()
    meta = z3_group.weight_sync_meta(bucket_mb)
    assert len(meta) > 2
    for b in meta:  # a bucket exceeds the limit only when it holds one tensor
        nbytes = sum(torch.Size(s).numel() * 4 for _, _, s in b)
        assert nbytes <= bucket_mb * 2**20 or len(b) == 1

    refs = z3_group.push_weights_object_store(bucket_mb)
    got = {}
    for ref in refs:
        got.update(ray.get(ref))
    assert list(got) == [n for b in meta for n, _, _ in b] == list(expected)
    assert all(torch.equal(got[n], expected[n]) for n in expected)

    port = free_port()
    receiver = Receiver.remote()
    joined = [z3_group.start_weight_broadcast_group("127.0.0.1", port, 2),
              receiver.join.remote("127.0.0.1", port, 2, 1)]
    ray.get(joined, timeout=120)
    sent = z3_group.start_broadcast_weights(bucket_mb)
    received = [receiver.recv.remote(b) for b in meta]
    assert ray.get(sent, timeout=120)[0] == sum(t.numel() * 4 for t in expected.values())
    got = {}
    for part in ray.get(received, timeout=120):
        got.update(part)
    assert all(torch.equal(got[n], expected[n]) for n in expected)
    ray.kill(receiver)


def test_hung_rank_fails_the_step_within_call_timeout_naming_the_rank(ray_session, model_dir):
    import os
    import signal
    import time

    from learner.group import LearnerHung

    group = LearnerGroup(LearnerConfig(num_ranks=2, zero_stage=2, lr=1e-3, call_timeout_s=8), AlgoConfig(),
                         model_dir)
    pid = ray.get(group.workers[1].__ray_call__.remote(lambda self: os.getpid()))
    os.kill(pid, signal.SIGSTOP)  # a real hang: the rank stops answering mid-run
    try:
        t0 = time.monotonic()
        with pytest.raises(LearnerHung, match=r"rank\(s\) \[.*1\] did not finish within learner.call_timeout_s=8"):
            group.train_step(record_of(make_batch()))
        assert time.monotonic() - t0 < 60
    finally:
        os.kill(pid, signal.SIGCONT)
        group.close()
