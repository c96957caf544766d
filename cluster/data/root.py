"""Where dataset files come from, and what to do when they are not there.

Three sources, nothing assumed beside the checkout:
- a local mirror of the built-in datasets' files (the layout of tests/fixtures/data), named by
  `dataset.data_dir` or else $RLVR_DATA_DIR; built-in names (gsm8k, math500, ...) read from it;
- any local file: `{name: jsonl, path: FILE.jsonl|.jsonl.gz|.json|.parquet, kind, fields}`;
- a Hugging Face hub id through `datasets`: `{name: hf, path: openai/gsm8k, hf_subset: main, kind, fields}`
  (cached under ~/.cache/huggingface; with HF_DATASETS_OFFLINE=1 the cached copy is used without network).
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "RLVR_DATA_DIR"


def data_root(data_dir: str | None = None) -> Path | None:
    """The mirror built-in datasets read from: `dataset.data_dir`, else $RLVR_DATA_DIR, else None (none set)."""
    root = data_dir or os.environ.get(ENV)
    return Path(root).expanduser() if root else None


def resolve_path(path: str, data_dir: str | None = None) -> Path | None:
    """An absolute (or ~) path as is; a relative one under the data root; None when no root is set."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    root = data_root(data_dir)
    return None if root is None else root / p


def missing_help(what: str, rel: str, data_dir: str | None = None) -> str:
    """The error for a dataset whose file is not there: what was looked for, and the three ways to provide it."""
    root = data_root(data_dir)
    where = (f"{root / rel} does not exist" if root is not None
             else f"no data root is set (dataset.data_dir is null and ${ENV} is unset), so {rel} cannot be found")
    return (f"{what}: {where}. Provide the data one of three ways: (1) a local mirror holding {rel}: set "
            f"${ENV} or dataset.data_dir to its directory; (2) a local file: name: jsonl, path: FILE.jsonl or "
            "FILE.parquet, with kind and fields; (3) a Hugging Face hub id: name: hf, path: HUB_ID (e.g. "
            "openai/gsm8k with hf_subset: main), with kind and fields; `datasets` caches it and works offline "
            "once cached")
