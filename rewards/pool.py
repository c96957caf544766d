"""Bounded-time batch scoring: a pool of worker processes that survives hung and crashed verifiers.

Each item runs in a worker process with a deadline. A worker that misses it is SIGKILLed (a sandboxed
program it was running dies with it, via PDEATHSIG and the PID namespace) and replaced; a worker that
crashes is replaced; either way the item scores 0.0 and the batch goes on, and its `Verdict.status` says
"timeout" or "error" so the trainer counts it (reward/timeouts, reward/errors). Timeouts are enforced by the
parent with `multiprocessing.connection.wait`, not signals, so this works off the main thread and inside
Ray actors. Workers are fresh interpreters (rewards/pool_worker.py): forking a threaded process such as a
Ray actor can deadlock, and multiprocessing's spawn would re-import the caller's __main__.
"""

import collections
import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, wait

from rewards.verdict import Verdict

KINDS = ("math", "code", "countdown", "custom")
_STARTUP_TIMEOUT_S = 120.0


class _Worker:
    """One `python -m rewards.pool_worker` process and our end of its socket connection."""

    def __init__(self, code_timeout_s: float):
        ours, theirs = socket.socketpair()
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen([sys.executable, "-m", "rewards.pool_worker", str(theirs.fileno()),
                                      str(code_timeout_s)], pass_fds=(theirs.fileno(),), env=env,
                                     stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.ready = False
        self.task: tuple[int, float] | None = None  # (item index, deadline)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)
        self.conn.close()


class VerifierPool:
    """`VerifierPool(workers, timeout_s).score(kinds, completions, golds) -> list[Verdict]` (floats); thread-safe.
    A Verdict's `.failure` says why an item scored 0.0 without a decision: 'timeout', or the verifier's error."""

    def __init__(self, workers: int = 2, timeout_s: float = 5.0, code_timeout_s: float = 10.0):
        if workers < 1 or timeout_s <= 0 or code_timeout_s <= 0:
            raise ValueError(f"VerifierPool(workers={workers}, timeout_s={timeout_s}, code_timeout_s="
                             f"{code_timeout_s}): expected workers >= 1 and positive timeouts")
        self.timeout_s, self.code_timeout_s = timeout_s, code_timeout_s
        # Code items get the sandbox's own timeout plus slack: the sandbox kills its process tree itself.
        self.code_deadline_s = code_timeout_s + 5.0
        self._workers = [_Worker(code_timeout_s) for _ in range(workers)]
        self._lock = threading.Lock()
        self.replaced = 0  # workers killed or lost so far (a health metric)

    def _deadline(self, kind: str) -> float:
        return time.monotonic() + (self.code_deadline_s if kind == "code" else self.timeout_s)

    def _replace(self, k: int) -> None:
        self._workers[k].kill()
        self._workers[k] = _Worker(self.code_timeout_s)
        self.replaced += 1

    def _await_ready(self) -> None:
        end = time.monotonic() + _STARTUP_TIMEOUT_S
        for k, w in enumerate(self._workers):
            while not w.ready:
                if w.conn.poll(max(0.0, end - time.monotonic())):
                    try:
                        w.ready = w.conn.recv() == "ready"
                        continue
                    except (EOFError, OSError):
                        pass
                if time.monotonic() > end:
                    raise RuntimeError(f"verifier worker did not start within {_STARTUP_TIMEOUT_S}s")
                self._replace(k)
                w = self._workers[k]

    def score(self, kinds, completions: list[str], golds: list) -> list[Verdict]:
        kinds = [kinds] * len(completions) if isinstance(kinds, str) else list(kinds)
        if not len(kinds) == len(completions) == len(golds):
            raise ValueError(f"score_batch: kinds, completions and golds must have equal lengths, got "
                             f"{len(kinds)}, {len(completions)}, {len(golds)}")
        if bad := sorted({k for k in kinds if k not in KINDS}):
            raise ValueError(f"score_batch: unknown verifier kind(s) {bad}: expected one of {list(KINDS)}")
        with self._lock:
            return self._run(kinds, completions, golds)

    def _run(self, kinds, completions, golds) -> list[Verdict]:
        results = [Verdict(0.0, "error")] * len(completions)  # stays so for unsendable items and double crashes
        pending = collections.deque(range(len(completions)))
        retried: set[int] = set()
        self._await_ready()
        while pending or any(w.task for w in self._workers):
            for k in range(len(self._workers)):
                if self._workers[k].task is None and pending:
                    if self._workers[k].proc.poll() is not None:  # died while idle: not the next item's fault
                        self._replace(k)
                        self._await_ready()
                    w, i = self._workers[k], pending.popleft()
                    try:
                        w.conn.send((kinds[i], completions[i], golds[i]))
                        w.task = (i, self._deadline(kinds[i]))
                    except (OSError, ValueError, TypeError) as e:  # unpicklable item, or a pipe that just broke
                        if w.proc.poll() is not None:
                            pending.appendleft(i)
                        else:
                            results[i] = Verdict(0.0, "error", f"could not send the item: {type(e).__name__}: {e}")
            busy = [w for w in self._workers if w.task]
            if not busy:
                continue
            timeout = max(0.0, min(w.task[1] for w in busy) - time.monotonic())
            ready = set(wait([w.conn for w in busy], timeout))
            for k, w in enumerate(list(self._workers)):
                if w.task is None:
                    continue
                if w.conn in ready:
                    try:
                        results[w.task[0]] = Verdict(*w.conn.recv())
                        w.task = None
                        continue
                    except (EOFError, OSError):  # crashed: retry the item once on a fresh worker
                        if w.task[0] not in retried:
                            retried.add(w.task[0])
                            pending.appendleft(w.task[0])
                        else:
                            results[w.task[0]] = Verdict(0.0, "error", "verifier worker crashed twice")
                elif time.monotonic() < w.task[1]:
                    continue
                else:
                    results[w.task[0]] = Verdict(0.0, "timeout")
                self._replace(k)  # hung past its deadline, or crashed
                self._await_ready()
        return results

    def close(self) -> None:
        for w in self._workers:
            w.kill()
        self._workers = []


_DEFAULT: dict[tuple, VerifierPool] = {}


def default_pool(workers: int, timeout_s: float, code_timeout_s: float) -> VerifierPool:
    """One shared pool per process and setting, started on first use."""
    key = (workers, timeout_s, code_timeout_s)
    if key not in _DEFAULT:
        _DEFAULT[key] = VerifierPool(workers, timeout_s, code_timeout_s)
    return _DEFAULT[key]
