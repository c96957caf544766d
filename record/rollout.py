"""The rollout record: one step's rollout data, built once where the engine returns and read everywhere after.

    batch = RolloutBatch(pool.generate(prompt_ids, sampling))   # groups of samples, one group per prompt
    for group in batch.groups: group.prompt_ids, [s.response_ids for s in group]
    learner.train_step(batch)                                   # packs its micro-batches from the groups

Groups stay groups: the prompt's token ids are stored once per group, never per sample. Per sample: the response
token ids, the engine's log-prob of each (0 where the model did not write the token), a per-token loss mask
(True = a model-written token that counts in the loss, advantages, KL, entropy and the engine-vs-learner
metrics; False = excluded, e.g. a tool's output in a multi-turn rollout), the finish reason, the policy version
that generated it, and one outcome reward (set by the controller after scoring). Arrays are numpy (int32 ids,
float32 log-probs, bool mask): they cross Ray as flat buffers, not as lists of Python numbers.

Imports numpy only, so that actors/, learner/ and cluster/ may all import it (actors and learner never import
each other; see docs/design.md).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

FINISH_REASONS = ("stop", "length")


def ids_array(ids: Sequence[int]) -> np.ndarray:
    """Token ids as the record stores them: (L,) int32."""
    return np.asarray(ids, dtype=np.int32).reshape(-1)


@dataclass
class Sample:
    """One response to its group's prompt."""

    response_ids: np.ndarray  # (R,) int32: every token after the prompt (model-written and, multi-turn, tool output)
    logprobs: np.ndarray  # (R,) float32: the engine's log-prob of each token; 0 where loss_mask is False
    loss_mask: np.ndarray  # (R,) bool: True = model-written token that counts in loss/advantage/KL/metrics
    finish_reason: str  # 'stop' | 'length'
    version: int  # policy version of the weights that generated it
    text: str = ""  # the decoded response (what the verifier scores)
    reward: float = 0.0  # outcome reward, set by the controller after scoring (a rewards.verdict.Verdict there)
    tools: dict | None = None  # multi-turn rollouts (actors/multiturn.py): calls, errors, timeouts, seconds, turns

    @classmethod
    def model_written(cls, response_ids: Sequence[int], logprobs: Sequence[float], finish_reason: str,
                      version: int, text: str = "") -> "Sample":
        """A single-turn sample: every token was written by the model (loss_mask all True)."""
        ids = ids_array(response_ids)
        return cls(ids, np.asarray(logprobs, dtype=np.float32).reshape(-1), np.ones(len(ids), dtype=bool),
                   finish_reason, int(version), text)

    @property
    def num_loss_tokens(self) -> int:
        return int(self.loss_mask.sum())


@dataclass
class Group:
    """The samples of one prompt; the prompt's ids are stored here once."""

    prompt_ids: np.ndarray  # (P,) int32
    samples: list[Sample]
    group_id: int = 0  # unique within a RolloutBatch; samples of one group share it
    problem: int | str = 0  # the problem it answers: the prompt's index in the generate call, or the problem's id

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, j: int) -> Sample:
        return self.samples[j]


@dataclass
class RolloutBatch:
    """One step's rollout: groups in order; flat per-sample views follow group order, then sample order."""

    groups: list[Group] = field(default_factory=list)

    def samples(self) -> list[Sample]:
        return [s for g in self.groups for s in g.samples]

    def __len__(self) -> int:
        """Number of samples."""
        return sum(len(g.samples) for g in self.groups)

    def group_ids(self) -> list[int]:
        """Per sample, its group's id."""
        return [g.group_id for g in self.groups for _ in g.samples]

    def rewards(self) -> list[float]:
        return [s.reward for g in self.groups for s in g.samples]

    def versions(self) -> list[int]:
        return [s.version for g in self.groups for s in g.samples]

    def set_rewards(self, rewards: Sequence[float]) -> None:
        """Store one outcome reward per sample (flat, in this batch's sample order)."""
        if len(rewards) != len(self):
            raise ValueError(f"{len(rewards)} rewards for {len(self)} samples; pass one per sample in group order")
        it = iter(rewards)
        for g in self.groups:
            for s in g.samples:
                s.reward = next(it)

    def keep_groups(self, group_ids: set[int]) -> "RolloutBatch":
        """The groups whose id is in `group_ids`, in order (the sample objects are shared, not copied)."""
        return RolloutBatch([g for g in self.groups if g.group_id in group_ids])

    def first_groups(self, k: int) -> "RolloutBatch":
        """The first k groups: DAPO trains on prompts_per_step whole groups."""
        return RolloutBatch(self.groups[:k])

    def extend(self, other: "RolloutBatch") -> "RolloutBatch":
        """This batch followed by `other`, whose groups get ids after this batch's largest."""
        offset = max((g.group_id for g in self.groups), default=-1) + 1
        moved = [Group(g.prompt_ids, g.samples, offset + i, g.problem) for i, g in enumerate(other.groups)]
        return RolloutBatch(self.groups + moved)

    def check(self) -> None:
        """Raise ValueError naming the first group/sample whose arrays do not fit the record's contract."""
        if not self.groups:
            raise ValueError("rollout batch has no groups; generate at least one prompt")
        seen: set[int] = set()
        for gi, g in enumerate(self.groups):
            where = f"group {gi} (group_id {g.group_id})"
            if g.group_id in seen:
                raise ValueError(f"{where}: group_id repeats; group ids must be unique within a batch")
            seen.add(g.group_id)
            if len(g.prompt_ids) == 0 or not g.samples:
                raise ValueError(f"{where}: needs >= 1 prompt token and >= 1 sample; got {len(g.prompt_ids)} "
                                 f"prompt tokens, {len(g.samples)} samples")
            for j, s in enumerate(g.samples):
                lens = (len(s.response_ids), len(s.logprobs), len(s.loss_mask))
                if len(set(lens)) != 1 or not s.loss_mask.any():
                    raise ValueError(f"{where}, sample {j}: response_ids, logprobs and loss_mask must have one entry "
                                     f"per token and >= 1 token with loss_mask True; got lengths {lens}, "
                                     f"{s.num_loss_tokens} loss tokens")
                if s.finish_reason not in FINISH_REASONS:
                    raise ValueError(f"{where}, sample {j}: finish_reason={s.finish_reason!r}; expected one of "
                                     f"{list(FINISH_REASONS)}")

    @classmethod
    def from_lists(cls, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]],
                   rewards: Sequence[float], group_ids: Sequence[int], logprobs: Sequence[Sequence[float]] | None = None,
                   loss_mask: Sequence[Sequence[int]] | None = None, finish_reason: Sequence[str] | None = None,
                   versions: Sequence[int] | None = None) -> "RolloutBatch":
        """Build a record from per-sample lists (tests, benches, data from elsewhere). Consecutive samples with
        the same group id form one group, whose prompt must be the same for all of them."""
        n = len(response_ids)
        groups: list[Group] = []
        for i in range(n):
            resp = ids_array(response_ids[i])
            lp = np.zeros(len(resp), np.float32) if logprobs is None else np.asarray(logprobs[i], np.float32)
            mask = np.ones(len(resp), bool) if loss_mask is None else np.asarray(loss_mask[i], bool)
            s = Sample(resp, lp, mask, "stop" if finish_reason is None else finish_reason[i],
                       0 if versions is None else int(versions[i]), reward=float(rewards[i]))
            if groups and groups[-1].group_id == group_ids[i]:
                if not np.array_equal(groups[-1].prompt_ids, ids_array(prompt_ids[i])):
                    raise ValueError(f"sample {i}: group {group_ids[i]} has samples with different prompts")
                groups[-1].samples.append(s)
            else:
                groups.append(Group(ids_array(prompt_ids[i]), [s], int(group_ids[i]), i))
        batch = cls(groups)
        batch.check()
        return batch

    def to_plain(self) -> dict:
        """JSON-ready form (checkpoints keep an async run's prefetched batch); `from_plain` reads it back."""
        return {"groups": [{"prompt_ids": g.prompt_ids.tolist(), "group_id": g.group_id, "problem": g.problem,
                            "samples": [{"response_ids": s.response_ids.tolist(), "logprobs": s.logprobs.tolist(),
                                         "loss_mask": s.loss_mask.astype(int).tolist(),
                                         "finish_reason": s.finish_reason, "version": s.version, "text": s.text,
                                         "reward": float(s.reward), "tools": s.tools} for s in g.samples]}
                           for g in self.groups]}

    @classmethod
    def from_plain(cls, plain: dict) -> "RolloutBatch":
        return cls([Group(ids_array(g["prompt_ids"]),
                          [Sample(ids_array(s["response_ids"]), np.asarray(s["logprobs"], np.float32),
                                  np.asarray(s["loss_mask"], bool), s["finish_reason"], s["version"], s["text"],
                                  s["reward"], s.get("tools")) for s in g["samples"]], g["group_id"], g["problem"])
                    for g in plain["groups"]])
