"""Sharding and packing of variable-length samples into padding-free micro-batches.

A sample is a dict with `ids` (list[int], prompt + response) and `loss_mask` (list[int], 1 on tokens the
model is trained to predict, 0 on prompt/pad), plus optional per-target-token lists (e.g. `old_logp`) or
per-sample scalars (e.g. `weight`) that get laid out along the target tokens.
Samples of one micro-batch are concatenated into one row; position ids restart at 0 per sample, which makes
transformers build a block-diagonal causal mask (`find_packed_sequence_indices`), so no padding is needed.
"""

from dataclasses import dataclass, field

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


@dataclass
class PackedBatch:
    """One packed row and where its target tokens are."""

    input_ids: torch.Tensor  # (1, T)
    position_ids: torch.Tensor  # (1, T)
    logit_pos: torch.Tensor  # (n,) position whose logits predict each target token
    targets: torch.Tensor  # (n,) target token ids
    token_seq: torch.Tensor  # (n,) index of the sample (within this micro-batch) of each target token
    counts: list[int]  # target tokens per sample
    fields: dict[str, torch.Tensor] = field(default_factory=dict)  # per-target-token floats, each (n,)

    def to(self, device: torch.device) -> "PackedBatch":
        """Move the tensors (not `counts`) to the engine's device."""
        move = {k: v.to(device) for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        return PackedBatch(**move, counts=self.counts, fields={k: v.to(device) for k, v in self.fields.items()})

    def split(self, values: torch.Tensor) -> list[list[float]]:
        """Per-sample lists of a per-target-token tensor (n,)."""
        return [v.tolist() for v in torch.split(values.detach().float().cpu(), self.counts)]


def collate(samples: list[dict], fields: tuple[str, ...] = ()) -> PackedBatch:
    """Concatenate samples into one row; lay out `fields` (per-target-token lists or per-sample scalars)."""
    ids: list[int] = []
    pos: list[int] = []
    logit_pos: list[int] = []
    targets: list[int] = []
    token_seq: list[int] = []
    counts: list[int] = []
    out: dict[str, list[float]] = {f: [] for f in fields}
    for s_idx, s in enumerate(samples):
        seq, mask = s["ids"], s["loss_mask"]
        if len(seq) != len(mask) or len(seq) < 2 or mask[0]:
            raise ValueError(
                f"sample {s_idx}: need len(ids)==len(loss_mask)>=2 and loss_mask[0]==0 (a first token has no "
                f"context); got {len(seq)} ids, {len(mask)} mask, mask[0]={mask[:1]}"
            )
        tgt = [j for j in range(1, len(seq)) if mask[j]]
        offset = len(ids)
        ids.extend(seq)
        pos.extend(range(len(seq)))
        logit_pos.extend(offset + j - 1 for j in tgt)
        targets.extend(seq[j] for j in tgt)
        token_seq.extend([s_idx] * len(tgt))
        counts.append(len(tgt))
        for f in fields:
            v = s[f]
            if isinstance(v, (int, float)):
                out[f].extend([float(v)] * len(tgt))
            elif len(v) != len(tgt):
                raise ValueError(f"sample {s_idx}: field {f!r} has {len(v)} values for {len(tgt)} target tokens")
            else:
                out[f].extend(v)
    long = dict(dtype=torch.long)
    return PackedBatch(
        input_ids=torch.tensor([ids], **long),
        position_ids=torch.tensor([pos], **long),
        logit_pos=torch.tensor(logit_pos, **long),
        targets=torch.tensor(targets, **long),
        token_seq=torch.tensor(token_seq, **long),
        counts=counts,
        fields={f: torch.tensor(v, dtype=torch.float32) for f, v in out.items()},
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
