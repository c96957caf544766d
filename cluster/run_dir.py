"""One directory per run: resolved config, metrics (JSONL + TensorBoard), samples, checkpoints, plots, report.

output.dir is checked before any actor starts: it must be writable and have room, so a run does not die
hours in when its first checkpoint cannot be written. The run directory itself is created only after every
pre-flight check passed, so a failed start leaves nothing behind.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from cluster import checkpoint as ckpt
from cluster.config_error import ConfigError

MIN_FREE_BYTES = 512 * 1024**2


def check_output_dir(parent: str, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """output.dir must be writable and have room; checked before anything else is written into it."""
    out = Path(parent)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=out)  # a unique name: runs may start together
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"output.dir={parent!r}: {str(out)!r} is not writable ({e.strerror}); "
                          "point output.dir at a writable location") from None
    free = shutil.disk_usage(out).free
    if free < min_free_bytes:
        raise ConfigError(f"output.dir={parent!r}: only {free / 1024**2:.0f} MiB free, need at least "
                          f"{min_free_bytes / 1024**2:.0f} MiB for checkpoints; free space or change output.dir")


def prepare_run_dir(parent: str, name: str, min_free_bytes: int = MIN_FREE_BYTES, fresh: bool = False) -> Path:
    """The run directory parent/name, created. fresh=True (generated names): never an existing directory; a
    name taken (two runs started within a second) gets a suffix -2, -3, ..."""
    check_output_dir(parent, min_free_bytes)
    run = Path(parent) / name
    if not fresh:
        try:
            run.mkdir(exist_ok=True)
        except OSError as e:
            raise ConfigError(f"output.name={name!r}: cannot create {str(run)!r} ({e.strerror}); choose another "
                              "output.name") from None
        return run
    for i in range(1, 1000):
        candidate = run if i == 1 else run.with_name(f"{name}-{i}")
        try:
            candidate.mkdir()  # atomic: of two processes racing for a name, one gets it
            return candidate
        except FileExistsError:
            continue
    raise ConfigError(f"output.dir={parent!r}: {name!r} and 998 suffixed names exist; set output.name")


def default_run_name(config_path: str | None) -> str:
    stem = Path(config_path).stem if config_path else "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


class MetricsLog:
    """Appends one JSON object per step to metrics.jsonl, mirrors scalars to TensorBoard when enabled."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, wandb_project: str | None = None, config=None):
        self.path = run_dir / "metrics.jsonl"
        self._tb = None
        self._wandb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tensorboard"))
        if wandb_project:
            import wandb

            self._wandb = wandb.init(project=wandb_project, name=run_dir.name, config=config, dir=str(run_dir))

    def log(self, step: int, metrics: dict) -> None:
        row = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        scalars = {k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def truncate_after(self, step: int) -> None:
        """On resume, drop rows of steps that the restored checkpoint has not seen (they will be redone)."""
        truncate_jsonl(self.path, lambda row: row.get("step", 0) <= step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _plain(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def truncate_jsonl(path: Path, keep: Callable[[dict], bool]) -> None:
    """Rewrite a JSONL file with only the rows `keep` accepts (a missing file stays missing)."""
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    path.write_text("".join(r + "\n" for r in rows if keep(json.loads(r))))


def append_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def find_run_dir(cfg, config_path: str | None, resume: bool) -> Path | None:
    """The run directory to continue or reuse (it may not exist yet), or None for a new, generated name."""
    if cfg.output.name:
        return Path(cfg.output.dir) / cfg.output.name
    if resume:  # the newest run of this recipe that has a checkpoint
        stem = Path(config_path).stem if config_path else "run"
        runs = sorted(Path(cfg.output.dir).glob(f"{stem}-*"), key=lambda d: d.stat().st_mtime)
        runs = [r for r in runs if ckpt.latest(r) is not None]
        if not runs:
            raise ConfigError(f"--resume: no run of {stem!r} with a complete checkpoint under output.dir="
                              f"{cfg.output.dir!r}; set output.name to the run to resume")
        return runs[-1]
    return None


def abort_message(trainer, error: Exception, config_path: str | None) -> str:
    """What failed, where the run stopped, and how to continue it."""
    what = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    dead = trainer.dead_learner_ranks()  # the survivors' errors (a broken collective) are only a symptom
    if dead:
        what = f"learner rank(s) {dead} died ({what})"
    last = ckpt.latest(trainer.run_dir)
    return (f"training stopped after {trainer.step} completed step(s): {what}. Last complete checkpoint: "
            f"{last if last else 'none'}. Continue with: rlvr train {config_path or 'CONFIG'} --resume")
