"""Atomic, retained checkpoints of a run.

A checkpoint is written into `checkpoints/step-000010.tmp-<pid>/`, completed with a `COMPLETE` file holding its
metadata, then renamed to `checkpoints/step-000010/` (rename is atomic on one filesystem). Readers only ever
pick directories that have `COMPLETE`, so a kill -9 while writing leaves a `.tmp-*` directory that is ignored
(and swept on the next save), never a half-written checkpoint that looks whole. Replaced and retired
checkpoints are renamed to `.tmp-` names before they are deleted, for the same reason.
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
    try:
        write(tmp)
        with open(tmp / MARKER, "w") as f:
            json.dump({"step": step, **meta}, f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:  # e.g. a full disk: free what was written; earlier checkpoints are untouched
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():  # the same step saved again (end of run, or re-run after resume): move the old one
        _discard(final)  # out of readers' sight first, so a kill mid-delete never leaves a gutted `step-N`
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
        _discard(old)


def _discard(ckpt: Path) -> None:
    # Rename, then delete: a kill during rmtree leaves a `.tmp-` directory (ignored, swept later) instead of a
    # half-deleted checkpoint that still holds its COMPLETE marker.
    trash = ckpt.with_name(f"{ckpt.name}.tmp-discard-{os.getpid()}")
    shutil.rmtree(trash, ignore_errors=True)
    os.rename(ckpt, trash)
    shutil.rmtree(trash, ignore_errors=True)


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
