"""What every dataset becomes: a list of `Problem` (prompt, gold, kind), and the errors of loading one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

@dataclass(frozen=True)
class Problem:
    id: str
    prompt: str
    gold: str  # math/countdown: the answer; code: a test program run after the candidate's code
    kind: str  # 'math' | 'code' | 'countdown' | 'custom'
    source: str  # dataset name and split, e.g. 'gsm8k/test'
    meta: dict[str, Any] = field(default_factory=dict)
    reward: str | None = None  # kind 'custom': the hook, 'abs/path.py:fn' or 'module:fn'
    origin: str = ""  # 'file:line' of the record, for error messages

    @property
    def reward_gold(self) -> str | dict:
        """What `rewards.score_batch` takes as gold: {"nums", "target"} for countdown, {"answer", "round_to",
        "ordered"} for math with relaxed rules (dataset.round_to / list_order), the hook and the record for
        custom, else `gold`."""
        if self.kind == "countdown":
            return {"nums": self.meta["nums"], "target": self.meta["target"]}
        if self.kind == "math" and "answer_rules" in self.meta:
            return {"answer": self.gold, **self.meta["answer_rules"]}
        if self.kind == "custom":
            return {"reward": self.reward, "problem": {**self.meta, "id": self.id, "prompt": self.prompt,
                                                       "answer": self.gold}}
        return self.gold


@dataclass
class LoadedDataset:
    name: str
    problems: list[Problem]
    skipped: list[str]  # 'file:line: reason' for each record dropped under on_bad_record='skip'


class DatasetError(ValueError):
    """A dataset cannot be loaded as configured; the message says which file/line and what to change."""


class BadRecord(Exception):
    """One record is unusable; load_problems adds file and line, then raises or skips."""
