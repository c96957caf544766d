"""Sharding and packing of variable-length samples into padding-free micro-batches.

A sample is a dict with `ids` (ints, prompt + response) and `loss_mask` (1 on tokens the model is trained to
predict, 0 on prompt/pad and on response tokens the rollout record excludes), plus optional per-target-token
arrays (e.g. `old_logp`) or per-sample scalars (e.g. `weight`) that get laid out along the target tokens.
Rollout samples come from the rollout record (`record_samples`): they cross Ray without their prompt, which each
rank receives once per group and puts back in front (`expand`) before packing.
Samples of one micro-batch are concatenated into rows; position ids restart at 0 per sample, which makes
transformers build a block-diagonal causal mask (`find_packed_sequence_indices`). Attention over a row costs
its length squared, so a micro-batch is laid out as several rows of at most `row_tokens` tokens (first-fit-
decreasing), padded to the longest row; the pad tail of a row is one more block with no targets.

Shared prompts (GRPO's n samples per prompt): samples whose context before the first target token is the same
are laid out as one unit, the prompt once and then each sample's remaining tokens, with a mask that lets every
sample see the prompt and its own tokens only. Each sample's log-probs are those of its own sequence (the
prompt's hidden states are the same for all of them) and the prompt's gradient is the sum over the samples,
so the forward/backward is the unshared one minus the repeated prompt tokens.
The mask reaches the model as an additive float mask in the model's dtype (0 = may attend, dtype min = masked):
SDPA reads a boolean mask as "may attend" but eager attention adds whatever mask it gets to the scores, so a
boolean one masks nothing there. flash_attention_2 ignores arbitrary 4D masks: the worker refuses
share_prompts with it (the unshared layout needs no mask: flash packs by position_ids).
"""

from dataclasses import dataclass, field

import numpy as np
import torch


def balance_shards(lengths: list[int], n_ranks: int) -> list[list[int]]:
    """Assign sample indices to ranks, longest first to the least-loaded rank (balances tokens)."""
    loads = [0] * n_ranks
    shards: list[list[int]] = [[] for _ in range(n_ranks)]
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        r = loads.index(min(loads))
        shards[r].append(i)
        loads[r] += lengths[i]
    return [sorted(s) for s in shards]


def pack_micro_batches(lengths: list[int], budget: int) -> list[list[int]]:
    """First-fit-decreasing bin packing of sample indices into micro-batches of <= budget tokens.
    A sample longer than the budget gets a micro-batch of its own (samples are never split)."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(budget - lengths[i])
    return [sorted(b) for b in bins]


def prompt_len(sample: dict) -> int:
    """Tokens before the first target token: the context a sample may share with others."""
    if "prompt_len" in sample:  # a rollout sample (record_samples): its group's prompt
        return sample["prompt_len"]
    mask = np.asarray(sample["loss_mask"])
    return int(mask.argmax()) if mask.any() else len(mask)


def sample_len(sample: dict) -> int:
    """Tokens of a sample: prompt + response."""
    return len(sample["ids"]) if "ids" in sample else sample["prompt_len"] + len(sample["response"])


def shared_units(samples: list[dict], budget: int | None) -> tuple[list[list[int]], list[int]]:
    """Group sample indices by prompt into units of <= budget tokens laid out shared (the prompt once plus each
    sample's tokens after it; a sample alone may exceed it). Returns units and their lengths. Rollout samples
    are grouped by their record group; other samples (SFT) by identical context before the first target."""
    by_prompt: dict = {}
    for i, smp in enumerate(samples):
        key = smp["group"] if "group" in smp else tuple(smp["ids"][:prompt_len(smp)])
        by_prompt.setdefault(key, []).append(i)
    units: list[list[int]] = []
    lengths: list[int] = []
    for members in by_prompt.values():
        P = prompt_len(samples[members[0]])
        unit, size = [], P
        for i in members:
            rest = sample_len(samples[i]) - P
            if unit and budget is not None and size + rest > budget:
                units.append(unit)
                lengths.append(size)
                unit, size = [], P
            unit.append(i)
            size += rest
        units.append(unit)
        lengths.append(size)
    return units, lengths


def record_samples(batch) -> tuple[list[dict], dict[int, np.ndarray]]:
    """The rollout record (record.rollout.RolloutBatch) as the learner's per-sample dicts, in the record's sample
    order: {"group", "prompt_len", "response", "mask"} (arrays of the record, not copies), and each group's
    prompt once, by group id. `expand` rebuilds a sample's full sequence on the rank that packs it."""
    samples, prompts = [], {}
    for g in batch.groups:
        prompts[g.group_id] = g.prompt_ids
        samples += [{"group": g.group_id, "prompt_len": len(g.prompt_ids), "response": s.response_ids,
                     "mask": s.loss_mask} for s in g.samples]
    return samples, prompts


def expand(sample: dict, prompts: dict[int, np.ndarray] | None) -> dict:
    """A rollout sample with its full `ids` (prompt + response) and `loss_mask` (0 on the prompt, the record's
    mask on the response); other samples unchanged."""
    if "ids" in sample:
        return sample
    prompt = prompts[sample["group"]]
    return dict(sample, ids=np.concatenate([prompt, sample["response"]]),
                loss_mask=np.concatenate([np.zeros(len(prompt), bool), sample["mask"]]))


@dataclass
class PackedBatch:
    """Packed rows and where their target tokens are (positions index the flattened rows)."""

    input_ids: torch.Tensor  # (B, T)
    position_ids: torch.Tensor  # (B, T)
    logit_pos: torch.Tensor  # (n,) flat position (row * T + column) whose logits predict each target token
    targets: torch.Tensor  # (n,) target token ids
    token_seq: torch.Tensor  # (n,) index of the sample (within this micro-batch) of each target token
    counts: list[int]  # target tokens per sample
    fields: dict[str, torch.Tensor] = field(default_factory=dict)  # per-target-token floats, each (n,)
    attention_mask: torch.Tensor | None = None  # (B, 1, T, T) bool, True = may attend; set for shared prompts

    def to(self, device: torch.device) -> "PackedBatch":
        """Move the tensors (not `counts`) to the engine's device."""
        move = {k: v.to(device) for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        return PackedBatch(**move, counts=self.counts, fields={k: v.to(device) for k, v in self.fields.items()})

    def model_inputs(self, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """Keyword arguments of the model's forward; a shared-prompt mask becomes additive in `dtype` (the
        model's), which SDPA and eager attention both apply."""
        inputs = {"input_ids": self.input_ids, "position_ids": self.position_ids}
        if self.attention_mask is not None:
            inputs["attention_mask"] = additive_mask(self.attention_mask, dtype)
        return inputs

    def split(self, values: torch.Tensor) -> list[np.ndarray]:
        """Per-sample float32 arrays of a per-target-token tensor (n,)."""
        return [v.numpy() for v in torch.split(values.detach().float().cpu(), self.counts)]


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Bool "may attend" mask -> 0 where allowed, the dtype's lowest value elsewhere (same shape)."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed,
                                                                                      torch.finfo(dtype).min)


SHARED_PROMPT_ATTENTION = ("sdpa", "eager")  # attention implementations whose 4D-mask handling was verified


def check_share_prompts(model: torch.nn.Module) -> None:
    """Refuse share_prompts under an attention implementation that ignores custom 4D masks."""
    impl = getattr(model.config, "_attn_implementation", None)
    if impl not in SHARED_PROMPT_ATTENTION:
        raise ValueError(f"learner.share_prompts=true lays samples out with a custom 4D attention mask, which only "
                         f"{' and '.join(SHARED_PROMPT_ATTENTION)} attention were verified to apply; this model "
                         f"uses {impl!r}. Set learner.share_prompts=false (packing then needs no mask)")


def collate(samples: list[dict], fields: tuple[str, ...] = (), row_tokens: int | None = None,
            share_prompts: bool = False) -> PackedBatch:
    """Pack samples into rows of at most max(row_tokens, longest sample) tokens (None: one row), sharing prompts
    if asked, and lay out `fields` (per-target-token lists or per-sample scalars) along the target tokens, in
    sample order."""
    for s_idx, s in enumerate(samples):
        seq, mask = s["ids"], s["loss_mask"]
        if len(seq) != len(mask) or len(seq) < 2 or mask[0]:
            raise ValueError(
                f"sample {s_idx}: need len(ids)==len(loss_mask)>=2, loss_mask[0]==0 (a first token has no "
                f"context); got {len(seq)} ids, {len(mask)} mask, mask[0]={list(mask[:1])}"
            )
    lengths = [len(s["ids"]) for s in samples]
    cap = max(row_tokens or sum(lengths), max(lengths))  # row capacity: at least the longest sample
    if share_prompts:  # a group shares its prompt within a row, so long responses still share up to `cap`
        units, unit_len = shared_units(samples, cap)
    else:
        units, unit_len = [[i] for i in range(len(samples))], lengths
    packed = pack_micro_batches(unit_len, cap)
    T = max(sum(unit_len[u] for u in row) for row in packed)
    rows = [[units[u] for u in row] for row in packed]
    ids = torch.zeros(len(rows), T, dtype=torch.long)  # pad id 0; pad tails are blocks of their own
    pos = torch.zeros(len(rows), T, dtype=torch.long)
    unit_of = torch.zeros(len(rows), T, dtype=torch.long)  # which unit a column belongs to (pad tail: its own)
    member = torch.zeros(len(rows), T, dtype=torch.long)  # 0 = shared prompt, k = the unit's k-th sample
    where: list[tuple[int, int, int]] = [(0, 0, 0)] * len(samples)  # flat start of prompt, flat start of rest, P
    for r, row in enumerate(rows):
        col = 0
        for u_idx, unit in enumerate(row):
            P = prompt_len(samples[unit[0]]) if len(unit) > 1 else len(samples[unit[0]]["ids"])
            ids[r, col:col + P] = torch.as_tensor(samples[unit[0]]["ids"][:P])
            pos[r, col:col + P] = torch.arange(P)
            unit_of[r, col:col + P] = u_idx + 1
            prompt_at, col = r * T + col, col + P
            for k, i in enumerate(unit, start=1):
                rest = samples[i]["ids"][P:]
                ids[r, col:col + len(rest)] = torch.as_tensor(rest, dtype=torch.long)
                pos[r, col:col + len(rest)] = torch.arange(P, P + len(rest))
                unit_of[r, col:col + len(rest)] = u_idx + 1
                member[r, col:col + len(rest)] = k
                where[i] = (prompt_at, r * T + col, P)
                col += len(rest)
        pos[r, col:] = torch.arange(T - col)
    attention_mask = None
    if share_prompts:
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        same_unit = unit_of[:, :, None] == unit_of[:, None, :]  # (B, T, T): query, key
        visible = (member[:, None, :] == 0) | (member[:, None, :] == member[:, :, None])
        attention_mask = (same_unit & visible & causal)[:, None]  # (B, 1, T, T)

    def flat(i: int, j: int) -> int:  # flat position of token j of sample i
        prompt_at, rest_at, P = where[i]
        return prompt_at + j if j < P else rest_at + j - P

    logit_pos: list[int] = []
    targets: list[int] = []
    token_seq: list[int] = []
    counts: list[int] = []
    out: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    for s_idx, s in enumerate(samples):
        seq, mask = s["ids"], s["loss_mask"]
        tgt = (np.flatnonzero(np.asarray(mask[1:])) + 1).tolist()  # positions of the target tokens
        logit_pos.extend(flat(s_idx, j - 1) for j in tgt)
        targets.extend(int(seq[j]) for j in tgt)
        token_seq.extend([s_idx] * len(tgt))
        counts.append(len(tgt))
        for f in fields:
            v = s[f]
            if isinstance(v, (int, float)):
                out[f].append(np.full(len(tgt), v, np.float32))
            elif len(v) != len(tgt):
                raise ValueError(f"sample {s_idx}: field {f!r} has {len(v)} values for {len(tgt)} target tokens")
            else:
                out[f].append(np.asarray(v, np.float32))
    long = dict(dtype=torch.long)
    return PackedBatch(
        attention_mask=attention_mask,
        input_ids=ids,
        position_ids=pos,
        logit_pos=torch.tensor(logit_pos, **long),
        targets=torch.tensor(targets, **long),
        token_seq=torch.tensor(token_seq, **long),
        counts=counts,
        fields={f: torch.from_numpy(np.concatenate(v) if v else np.zeros(0, np.float32)) for f, v in out.items()},
    )


def dummy_sample(fields: tuple[str, ...] = ()) -> dict:
    """A 2-token sample with zero weight: ranks with fewer micro-batches run it so that every rank makes the
    same number of forward/backward calls (ZeRO-3 gathers and ZeRO-2 reductions are collective)."""
    s = {"ids": [0, 0], "loss_mask": [0, 1]}
    s.update({f: 0.0 for f in fields})
    return s


def rl_sample(prompt_ids: list[int], response_ids: list[int], **token_fields) -> dict:
    """Sample dict for an RL rollout: the response tokens are the targets."""
    if not prompt_ids or not response_ids:
        raise ValueError(f"rl sample needs >= 1 prompt and >= 1 response token; got {len(prompt_ids)}, "
                         f"{len(response_ids)}")
    return {
        "ids": list(prompt_ids) + list(response_ids),
        "loss_mask": [0] * len(prompt_ids) + [1] * len(response_ids),
        **token_fields,
    }
