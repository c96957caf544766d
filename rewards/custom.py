"""User reward hooks: `kind: custom` datasets name a function that scores one completion.

A hook is `path/to/file.py:function` (a relative path resolves against the working directory of the process
that loads the config) or `package.module:function` (importable on the workers' sys.path). Its signature:

    def reward(completion: str, problem: dict) -> float

`problem` holds the record's `id`, `prompt` and `answer` (the mapped fields) plus every other field of the
record, unchanged. The hook runs in the verifier worker pool (rewards/pool.py) under the same per-sample
timeout as the built-in verifiers; an exception, a timeout or a return value that is not a finite number
scores 0.0 and is counted (metric `reward/errors`, `reward/timeouts`), never passed silently.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from pathlib import Path
from typing import Callable

_LOADED: dict[str, Callable] = {}


class RewardHookError(ValueError):
    """A hook reference cannot be resolved or loaded; the message names the reference and what to change."""


def split_ref(ref: str) -> tuple[str, str]:
    """'target:function' -> (target, function); the target is a .py file or a dotted module name."""
    target, sep, fn = ref.rpartition(":")
    if not sep or not target or not fn.isidentifier():
        raise RewardHookError(f"reward={ref!r}: expected 'path/to/file.py:function' or 'package.module:function'")
    return target, fn


def is_file_ref(ref: str) -> bool:
    return split_ref(ref)[0].endswith(".py")


def absolute_ref(ref: str, cwd: Path | None = None) -> str:
    """The reference with a file target made absolute (against `cwd`, default the working directory),
    so worker processes started anywhere load the same file. Raises if the file does not exist."""
    target, fn = split_ref(ref)
    if not target.endswith(".py"):
        return ref
    path = Path(target).expanduser()
    path = path if path.is_absolute() else (cwd or Path.cwd()) / path
    if not path.is_file():
        raise RewardHookError(f"reward={ref!r}: file {path} does not exist (relative paths resolve against the "
                              f"working directory {cwd or Path.cwd()}); fix the dataset's reward key")
    return f"{path.resolve()}:{fn}"


def load_hook(ref: str) -> Callable:
    """The callable `ref` names, loaded once per process; raises RewardHookError saying what went wrong."""
    if ref in _LOADED:
        return _LOADED[ref]
    target, fn = split_ref(ref)
    try:
        if target.endswith(".py"):
            name = f"rlvr_reward_{abs(hash(target)):x}"
            spec = importlib.util.spec_from_file_location(name, target)
            if spec is None or spec.loader is None:
                raise RewardHookError(f"reward={ref!r}: cannot load {target} as a Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses and pickling inside the hook's module need it registered
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except RewardHookError:
        raise
    except Exception as e:  # a user module can raise anything while importing
        raise RewardHookError(f"reward={ref!r}: importing {target} failed: {type(e).__name__}: {e}") from e
    hook = getattr(module, fn, None)
    if not callable(hook):
        have = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        raise RewardHookError(f"reward={ref!r}: {target} has no function {fn!r} (its callables: {have})")
    _LOADED[ref] = hook
    return hook


def call_hook(ref: str, completion: str, problem: dict) -> float:
    """Run the hook; a result that is not a finite real number raises (and is counted as an error)."""
    value = load_hook(ref)(completion, problem)
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"reward hook {ref} returned {type(value).__name__} {value!r:.40}, expected a float")
    try:  # ints, bools, numpy scalars and 0-d tensors convert
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"reward hook {ref} returned {type(value).__name__}, expected a float") from None
    if not math.isfinite(number):
        raise ValueError(f"reward hook {ref} returned {number}, expected a finite float")
    return number
