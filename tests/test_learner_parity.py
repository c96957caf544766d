"""LearnerGroup (real Ray + DeepSpeed) against plain loops written from the papers, one configuration per case.

Each case: one SFT step moves the policy away from the frozen reference (so KL terms are not zero), rollout
log-probs are the policy's own shifted per token (so the truncated-IS weight differs from 1 and hits its cap),
then one RL update of two epochs (the second has ratios != 1, so clipping, dual clip and clip-higher act).
The reference redoes all of it with a transformers model, unpacked samples and torch.optim.AdamW; every
parameter must agree to 1e-6 after the steps (lr 1e-2: a wrong sign, scale or missing term misses by far more).
"""

import math
import random

import pytest
import ray
import torch

from learner.config import AlgoConfig, CriticConfig, LearnerConfig
from learner.group import LearnerGroup
from tiny_models import make_tiny_qwen2
from batches import record_of

pytestmark = pytest.mark.slow
LR, EPS, GRAD_CLIP, EPOCHS = 1e-2, 1e-3, 1.0, 2


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_qwen2(str(tmp_path_factory.mktemp("tiny")), init_std=0.1)


def make_batch(seed=0, n_groups=2, per_group=4):
    rng = random.Random(seed)
    b = {k: [] for k in ("prompt_ids", "response_ids", "rewards", "group_ids", "finish_reason")}
    for g in range(n_groups):
        prompt = [1] + [rng.randrange(3, 500) for _ in range(rng.randrange(2, 5))]
        for j in range(per_group):
            resp = [rng.randrange(3, 500) for _ in range(rng.randrange(2, 9))]
            b["prompt_ids"].append(prompt)
            b["response_ids"].append(resp)
            b["rewards"].append(float(rng.choice([0.0, 0.5, 1.0, 2.0])))
            b["group_ids"].append(g)
            b["finish_reason"].append("length" if len(resp) == 8 or j == 3 else "stop")
    return b


# ----- the reference: plain loops from the papers -------------------------------------------------------------
def token_logp(model, prompt, resp, T, with_entropy=False):
    ids = torch.tensor([prompt + resp])
    logits = model(input_ids=ids).logits[0, len(prompt) - 1: -1] / T  # (R, V) predicting the response
    logp_all = torch.log_softmax(logits.float(), -1)
    logp = [logp_all[t, resp[t]] for t in range(len(resp))]
    if with_entropy:
        return logp, [-(logp_all[t].exp() * logp_all[t]).sum() for t in range(len(resp))]
    return logp


def kl_term(est, logp, ref):
    """Schulman's estimators of KL(pi || ref) from a sample of pi."""
    if est == "k1":
        return logp - ref
    if est == "k2":
        return 0.5 * (logp - ref) ** 2
    log_r = ref - logp
    return torch.exp(log_r) - log_r - 1  # k3


def group_stats(rewards, groups):
    members = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    mean = {g: sum(rewards[i] for i in m) / len(m) for g, m in members.items()}
    std = {g: math.sqrt(sum((rewards[i] - mean[g]) ** 2 for i in m) / (len(m) - 1)) for g, m in members.items()}
    return members, mean, std


def whiten_lists(rows, eps):
    flat = [x for r in rows for x in r]
    mu = sum(flat) / len(flat)
    sd = math.sqrt(sum((x - mu) ** 2 for x in flat) / (len(flat) - 1))
    return [[(x - mu) / (sd + eps) for x in r] for r in rows]


def advantages(algo, b, token_r, values):
    """Per-token advantages (lists) by algorithm: GRPO, Dr.GRPO, RLOO, REINFORCE++, GAE (+ whitening)."""
    seq_r = [sum(r) for r in token_r]
    members, mean, std = group_stats(seq_r, b["group_ids"])
    out = []
    for i, r in enumerate(token_r):
        g = b["group_ids"][i]
        if algo.advantage == "grpo":
            a = (seq_r[i] - mean[g]) / (std[g] + algo.adv_eps)
        elif algo.advantage == "dr_grpo":
            a = seq_r[i] - mean[g]
        elif algo.advantage == "rloo":
            others = [seq_r[j] for j in members[g] if j != i]
            a = seq_r[i] - sum(others) / len(others)
        elif algo.advantage == "reinforce_pp":  # returns-to-go
            out.append([sum(algo.gamma ** (s - t) * r[s] for s in range(t, len(r))) for t in range(len(r))])
            continue
        else:  # gae
            v, adv, nxt = values[i], [0.0] * len(r), 0.0
            for t in reversed(range(len(r))):
                delta = r[t] + algo.gamma * (v[t + 1] if t + 1 < len(r) else 0.0) - v[t]
                nxt = delta + algo.gamma * algo.lam * nxt
                adv[t] = nxt
            out.append(adv)
            continue
        out.append([a] * len(r))
    if algo.advantage == "reinforce_pp" or (algo.advantage == "gae" and algo.gae_whiten):
        out = whiten_lists(out, algo.adv_eps)
    return out


def surrogate_loss(algo, logp, old, adv, seen):
    """-min(r A, clip(r, 1-eps_low, 1+eps_high) A), with dual clip max(.., c A) on the objective for A < 0.
    `seen` counts tokens where clip-higher and dual clip change the result (so the case exercises them)."""
    ratio = torch.exp(logp - old)
    r = float(ratio)
    seen["clip_higher"] += adv > 0 and 1 + algo.clip_low < r <= 1 + algo.clip_high
    seen["dual_clip"] += algo.dual_clip is not None and adv < 0 and r > algo.dual_clip
    obj = torch.min(ratio * adv, torch.clamp(ratio, 1 - algo.clip_low, 1 + algo.clip_high) * adv)
    if algo.dual_clip is not None and adv < 0:
        obj = torch.max(obj, torch.tensor(algo.dual_clip * adv))
    return -obj


def reference_run(model_dir, algo, T, b, sft, values):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=EPS, weight_decay=0.0)

    def step(loss):
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()

    # SFT: next-token cross-entropy, mean over all target tokens of the batch
    sft_logp = []
    for ids, m in zip(sft["input_ids"], sft["loss_mask"]):
        lp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)  # (len, V)
        sft_logp += [lp[t - 1, ids[t]] for t in range(1, len(ids)) if m[t]]
    step(-sum(sft_logp) / len(sft_logp))

    N = len(b["prompt_ids"])
    with torch.no_grad():
        old = [token_logp(model, p, r, T) for p, r in zip(b["prompt_ids"], b["response_ids"])]
        ref_lp = [token_logp(ref, p, r, T) for p, r in zip(b["prompt_ids"], b["response_ids"])]
    rewards = list(b["rewards"])
    if algo.overlong_buffer_len > 0:  # DAPO Eq. 13
        Lmax, Lc = algo.overlong_max_len, algo.overlong_buffer_len
        for i, r in enumerate(b["response_ids"]):
            L = len(r)
            rewards[i] += algo.overlong_penalty * (0.0 if L <= Lmax - Lc else ((Lmax - Lc) - L) / Lc if L <= Lmax
                                                   else -1.0)
    token_r = []
    for i, r in enumerate(b["response_ids"]):
        tr = [0.0] * len(r)
        tr[-1] = rewards[i]
        if algo.kl_coef > 0 and algo.kl_in == "reward":  # -beta * KL(old || ref) per token
            tr = [x - algo.kl_coef * float(kl_term(algo.kl_estimator, old[i][t], ref_lp[i][t]))
                  for t, x in enumerate(tr)]
        token_r.append(tr)
    adv = advantages(algo, b, token_r, values)
    trained = [not (algo.overlong_filter and fr == "length") for fr in b["finish_reason"]]
    kept = [i for i in range(N) if trained[i]]

    losses, seen = [], {"clip_higher": 0, "dual_clip": 0}
    for _ in range(EPOCHS):
        seq_losses = []  # (token loss sum, token count) per trained sequence
        for i in kept:
            logp, ent = token_logp(model, b["prompt_ids"][i], b["response_ids"][i], T, with_entropy=True)
            tok = []
            for t in range(len(logp)):
                loss_t = surrogate_loss(algo, logp[t], old[i][t], adv[i][t], seen)
                if algo.tis_cap is not None:  # Yao et al.: min(pi_old / pi_rollout, C), no gradient
                    loss_t = loss_t * min(math.exp(float(old[i][t]) - b["rollout_logprobs"][i][t]), algo.tis_cap)
                if algo.kl_coef > 0 and algo.kl_in == "loss":
                    loss_t = loss_t + algo.kl_coef * kl_term(algo.kl_estimator, logp[t], ref_lp[i][t])
                loss_t = loss_t - algo.entropy_coef * ent[t]
                tok.append(loss_t)
            seq_losses.append((sum(tok), len(tok)))
        if algo.loss_agg == "token_mean":
            loss = sum(s for s, _ in seq_losses) / sum(n for _, n in seq_losses)
        elif algo.loss_agg == "seq_mean_token_mean":
            loss = sum(s / n for s, n in seq_losses) / len(seq_losses)
        elif algo.loss_agg == "seq_mean_token_sum":
            loss = sum(s for s, _ in seq_losses) / len(seq_losses)
        else:  # Dr.GRPO: a constant normaliser
            loss = sum(s / algo.loss_norm_len for s, _ in seq_losses) / len(seq_losses)
        losses.append(loss.item())
        step(loss)
    return dict(model.named_parameters()), sum(losses) / len(losses), seen


# ----- the cases ---------------------------------------------------------------------------------------------
CASES = {
    "grpo_kl_loss_k3_tis_clip_higher_T0.7_token_mean": (
        AlgoConfig(advantage="grpo", kl_coef=0.5, kl_in="loss", kl_estimator="k3", clip_low=0.3, clip_high=1.0,
                   tis_cap=1.2,
                   entropy_coef=0.01), 0.7),
    "rloo_kl_reward_k1_dual_clip_seq_mean_token_mean": (
        AlgoConfig(advantage="rloo", kl_coef=0.5, kl_in="reward", kl_estimator="k1", dual_clip=1.5,
                   loss_agg="seq_mean_token_mean"), 1.0),
    "dr_grpo_kl_loss_k2_seq_mean_token_sum_norm": (
        AlgoConfig(advantage="dr_grpo", kl_coef=0.5, kl_estimator="k2", loss_agg="seq_mean_token_sum_norm",
                   loss_norm_len=12, clip_low=0.1, clip_high=0.1), 1.0),
    "reinforce_pp_kl_reward_k3_overlong_seq_mean_token_sum": (
        AlgoConfig(advantage="reinforce_pp", kl_coef=0.5, kl_in="reward", kl_estimator="k3", gamma=0.9,
                   loss_agg="seq_mean_token_sum", overlong_max_len=6, overlong_buffer_len=3, overlong_filter=True),
        1.0),
    "gae_whitened_T1.3": (AlgoConfig(advantage="gae", gamma=0.9, lam=0.8, critic=CriticConfig(lr=1e-3)), 1.3),
}


@pytest.mark.parametrize("name", list(CASES))
def test_learner_update_equals_plain_loop_from_the_papers(ray_session, model_dir, name):
    algo, T = CASES[name]
    cfg = LearnerConfig(lr=LR, eps=EPS, grad_clip=GRAD_CLIP, ppo_epochs=EPOCHS, temperature=T,
                        micro_batch_tokens=40, row_tokens=24)
    b = make_batch(seed=len(name))
    sft = {"input_ids": [p + r for p, r in zip(b["prompt_ids"], b["response_ids"])],
           "loss_mask": [[0] * len(p) + [1] * len(r) for p, r in zip(b["prompt_ids"], b["response_ids"])]}
    g = LearnerGroup(cfg, algo, model_dir)
    try:
        g.sft_step(sft)  # the policy now differs from the reference
        own = g.logprobs(b["prompt_ids"], b["response_ids"])
        # a rollout policy that differs from the learner: log-probs shifted by +-0.3 (some IS weights hit the cap)
        b["rollout_logprobs"] = [[x + (0.3 if (i + t) % 2 else -0.3) for t, x in enumerate(row)]
                                 for i, row in enumerate(own)]
        values = None
        if algo.critic is not None:
            from learner.batching import rl_sample

            samples = [rl_sample(p, r) for p, r in zip(b["prompt_ids"], b["response_ids"])]
            values = ray.get(g.workers[0].__ray_call__.remote(
                lambda self, mbs: self.compute_logprobs(mbs, False), [samples]))["values"]
        metrics = g.train_step(record_of(b))
        params = g.state_dict()
    finally:
        g.close()
    assert metrics["optimizer_steps"] == EPOCHS
    if algo.kl_coef > 0:
        assert metrics["kl_old_ref"] > 1e-3  # the reference really differs from the policy
    if algo.tis_cap is not None:
        assert 0 < metrics["is_truncated_frac"] < 1
    expected, loss, seen = reference_run(model_dir, algo, T, b, sft, values)
    if algo.clip_high != algo.clip_low:
        assert seen["clip_higher"] > 0  # some tokens sit between the low and the high clip
    if algo.dual_clip is not None:
        assert seen["dual_clip"] > 0
    # the loss value catches scale errors (e.g. aggregation) that Adam's normalisation would hide in the params
    assert metrics["loss"] == pytest.approx(loss, rel=1e-5, abs=1e-7)
    moved = max((params[n] - p.detach()).abs().max().item() for n, p in expected.items())
    assert moved < 1e-6, f"{name}: learner and paper reference differ by {moved}"
