"""The names a dataset spec may use and the splits of each built-in dataset, known without loading anything, so
that DatasetSpec's validator checks them at config time (cluster/data/spec.py) without importing the loaders."""

from __future__ import annotations

import difflib

from cluster.data.problem import DatasetError

_MBPP_FILE = "mbpp/mbpp.jsonl"
BUILTIN_FILES: dict[str, dict[str, str]] = {  # name -> split -> file under the data root
    "gsm8k": {"test": "gsm8k/test.jsonl", "train": "gsm8k/train.jsonl"},
    "math500": {"test": "math500/test.jsonl"},
    "math": {"test": "math/test.jsonl"},
    "aime24": {"test": "aime24/test.jsonl"},
    "aime25": {"test": "aime25/test.jsonl"},
    "amc23": {"test": "amc23/test.jsonl"},
    "deepscaler": {"math_train": "deepscaler/math_train.jsonl", "aime_train": "deepscaler/aime_train.jsonl",
                   "amc_test": "deepscaler/amc_test.jsonl"},
    "humaneval": {"test": "humaneval/HumanEval.jsonl.gz"},
    "humaneval_plus": {"test": "humaneval_plus/HumanEvalPlus-v0.1.10.jsonl.gz"},
    "mbpp": {s: _MBPP_FILE for s in ("test", "train", "validation", "prompt", "all")},
    "mbpp_sanitized": {"all": "mbpp/sanitized-mbpp.json"},
    "mbpp_plus": {"test": "mbpp_plus/MbppPlus-v0.2.0.jsonl.gz"},
    "countdown": {"train": "countdown/countdown_3to4_train.jsonl.gz", "test": "countdown/countdown_3to4_test.jsonl.gz",
                  "test_4to6": "countdown/countdown_4to6_test.jsonl.gz"},
}
OTHER_NAMES = ("jsonl", "hf", "embedded")  # any local file, a Hugging Face dataset, the procedural task
NAMES = (*BUILTIN_FILES, *OTHER_NAMES)


def check_name(name: str) -> None:
    if name not in NAMES:
        close = difflib.get_close_matches(name, NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DatasetError(f"dataset.name={name!r} is unknown{hint}; valid names: {sorted(NAMES)}")


def check_split(spec) -> None:
    """A built-in dataset's split must be one of its files; other sources take any split."""
    files = BUILTIN_FILES.get(spec.name)
    if files is not None and spec.split not in files:
        raise DatasetError(f"dataset {spec.name!r}: split={spec.split!r} unknown; valid splits: {sorted(files)}")


def check_spec(spec) -> None:
    """Name and split known; called by DatasetSpec's validator so config errors surface at load time."""
    check_name(spec.name)
    check_split(spec)
