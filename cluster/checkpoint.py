"""Atomic, retained checkpoints of a run.

A checkpoint is written into `checkpoints/step-000010.tmp-<pid>/`, completed with a `COMPLETE` file holding its
metadata, then renamed to `checkpoints/step-000010/` (rename is atomic on one filesystem). Readers only ever
pick directories that have `COMPLETE`, so a kill -9 while writing leaves a `.tmp-*` directory that is ignored
(and swept on the next save), never a half-written checkpoint that looks whole.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

MARKER = "COMPLETE"


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_atomic(run_dir: str | Path, step: int, write: Callable[[Path], None], meta: dict, keep: int) -> Path:
    """Call `write(tmp_dir)` to fill a fresh directory, then publish it as the checkpoint of `step`."""
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    _sweep_partial(root)
    final = root / f"step-{step:06d}"
    tmp = root / f"step-{step:06d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write(tmp)
    with open(tmp / MARKER, "w") as f:
        json.dump({"step": step, **meta}, f)
        f.flush()
        os.fsync(f.fileno())
    if final.exists():  # a re-run of the same step after resume: replace it whole
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    _retain(root, keep)
    return final


def latest(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    complete = list_complete(run_dir)
    return complete[-1] if complete else None


def list_complete(run_dir: str | Path) -> list[Path]:
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    dirs = [d for d in root.iterdir() if d.is_dir() and ".tmp-" not in d.name and (d / MARKER).is_file()]
    return sorted(dirs, key=lambda d: d.name)


def read_meta(ckpt: str | Path) -> dict:
    return json.loads((Path(ckpt) / MARKER).read_text())


def _retain(root: Path, keep: int) -> None:
    for old in list_complete(root.parent)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _sweep_partial(root: Path) -> None:
    for d in root.iterdir():
        if ".tmp-" in d.name:
            shutil.rmtree(d, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
