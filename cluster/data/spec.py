"""Dataset config: which problems to load and how to read them (see cluster/data/loaders.py).

A built-in dataset needs only its name and split, e.g. `DatasetSpec(name="gsm8k", split="test")`.
Any other local JSONL/JSON file: `DatasetSpec(name="jsonl", path="my.jsonl", kind="math",
fields={"prompt": "question", "answer": "answer"})`; with `kind="custom", reward="my_reward.py:score"` a
user function scores each completion (rewards/custom.py documents its signature). A Hugging Face dataset goes through
`datasets.load_dataset`: `DatasetSpec(name="hf", path="json", data_files="x.jsonl", kind="math",
fields={...})` or `path="openai/gsm8k", hf_subset="main"` where the hub (or its cache) is reachable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_serializer, model_validator

from cluster.data.registry import check_spec

Kind = Literal["math", "code", "countdown", "custom"]
FIELD_ROLES = ("prompt", "answer", "id")
GENERIC_NAMES = ("jsonl", "hf")


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    """Registry name (gsm8k, math500, ...), or 'jsonl' for any local file, or 'hf' for datasets.load_dataset."""
    split: str = "test"
    """Split of a built-in dataset (its loader lists the valid ones); for 'hf', the split passed to load_dataset."""
    path: str | None = None
    """'jsonl': the file (.jsonl, .jsonl.gz, .json, .parquet); 'hf': hub id or builder; built-in: a same-format
    file. A relative path resolves against the working directory, else the data root."""
    data_dir: str | None = None
    """Local mirror of the built-in datasets' files; None means $RLVR_DATA_DIR (cluster/data/root.py)."""
    limit: int | None = None
    """Keep only the first `limit` problems (after skipping bad records); None keeps all."""
    fields: dict[str, str] | None = None
    """For 'jsonl'/'hf': record field per role, keys from ('prompt', 'answer', 'id'); prompt and answer required."""
    answer_format: Literal["plain", "gsm8k", "boxed"] = "plain"
    """For 'jsonl'/'hf': how gold is read from the answer field: as is, after '####', or the last \\boxed{}."""
    kind: Kind | None = None
    """For 'jsonl'/'hf': problem kind (math, code, countdown, custom); built-in datasets know their own."""
    reward: str | None = None
    """For kind='custom': the reward function, 'path/to/file.py:function' (relative to the working directory)
    or 'package.module:function', called as fn(completion: str, problem: dict) -> float (rewards/custom.py)."""
    on_bad_record: Literal["error", "skip"] = "error"
    """Malformed line, missing field or empty gold: 'error' stops with file and line, 'skip' drops and counts it."""
    hf_subset: str | None = None
    """For 'hf': the dataset config name (e.g. 'main' for openai/gsm8k)."""
    data_files: str | list[str] | None = None
    """For 'hf': data_files passed to load_dataset (for builders such as 'json')."""
    round_to: int | Literal["prompt", "gold"] | None = None
    """Math: decimals answers are rounded to before comparing; 'prompt': as each problem says ("to the nearest
    tenth"), 'gold': a decimal gold counts as rounded to its printed places; null: exact (rewards/math/rules.py)."""
    list_order: Literal["prompt", "ordered", "unordered"] = "prompt"
    """Math: a bare list `a, b` must match in order, unless 'unordered' or the problem asks for all solutions."""

    @field_validator("limit")
    @classmethod
    def _limit_positive(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"limit={v}: expected a positive integer or null (null keeps all problems)")
        return v

    @field_validator("round_to")
    @classmethod
    def _round_to_range(cls, v):
        if isinstance(v, int) and not -9 <= v <= 12:
            raise ValueError(f"round_to={v}: expected decimals in [-9, 12], 'prompt', 'gold' or null (exact)")
        return v

    @field_validator("fields")
    @classmethod
    def _fields_known(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return v
        unknown = sorted(set(v) - set(FIELD_ROLES))
        if unknown:
            raise ValueError(f"fields has unknown roles {unknown}: allowed roles are {list(FIELD_ROLES)}")
        missing = [r for r in ("prompt", "answer") if r not in v]
        if missing:
            raise ValueError(f"fields lacks {missing}: map each to a record field, e.g. {{'prompt': 'question'}}")
        return v

    @model_validator(mode="after")
    def _reward_with_custom(self) -> DatasetSpec:
        if (self.kind == "custom") != (self.reward is not None):
            raise ValueError(f"kind={self.kind!r}, reward={self.reward!r}: kind='custom' needs reward="
                             "'path/to/file.py:function' or 'module:function', and reward applies only to kind='custom'")
        if self.reward is not None:
            from rewards.custom import split_ref

            split_ref(self.reward)
        return self

    @model_serializer(mode="wrap")
    def _drop_unused_split(self, handler):
        # A jsonl file has no splits: a printed `split: test` (the default) would suggest one was chosen.
        data = handler(self)
        if self.name == "jsonl":
            data.pop("split", None)
        return data

    @model_validator(mode="after")
    def _known_name_and_split(self) -> DatasetSpec:
        check_spec(self)
        return self

    @model_validator(mode="after")
    def _generic_needs_mapping(self) -> DatasetSpec:
        if self.name in GENERIC_NAMES:
            need = [k for k in ("path", "fields", "kind") if getattr(self, k) is None]
            if need:
                raise ValueError(f"dataset name={self.name!r} needs {need} set (path, field mapping and kind)")
        else:
            extra = [k for k in ("fields", "kind", "hf_subset", "data_files") if getattr(self, k) is not None]
            if extra or self.answer_format != "plain":
                extra += ["answer_format"] if self.answer_format != "plain" else []
                raise ValueError(
                    f"{extra} apply only to name='jsonl' or 'hf'; built-in dataset {self.name!r} "
                    "knows its own fields: remove them or set name='jsonl'"
                )
        return self
