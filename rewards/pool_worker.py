"""Verifier worker process: `python -m rewards.pool_worker FD CODE_TIMEOUT_S` (started by rewards.pool).

Reads (kind, completion, gold) tasks from the connection on FD and answers each with (reward, status, detail):
status "ok", or "error" with the exception text when the verifier raised (the pool counts those; they are not
wrong answers); a verifier that returns a Verdict (code: "timeout" for a program past its time) keeps its status. A plain subprocess rather than multiprocessing, so the caller's __main__ is never re-imported.
"""

import os
import signal
import sys


def _score_one(kind: str, completion: str, gold, code_timeout_s: float) -> float:
    if kind == "math":
        from rewards.math import score

        return score(completion, gold)
    if kind == "custom":
        from rewards.custom import call_hook

        return call_hook(gold["reward"], completion, gold["problem"])
    if kind == "countdown":
        from rewards.countdown import score

        return score(completion, gold["nums"], gold["target"])
    from rewards.code import verdict

    tests = gold if isinstance(gold, str) else gold["tests"]
    return verdict(completion, tests, code_timeout_s)  # a Verdict: a program that timed out is counted


def main() -> None:
    import ctypes
    from multiprocessing.connection import Connection

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the pool's owner
    conn, code_timeout_s = Connection(int(sys.argv[1])), float(sys.argv[2])
    import rewards.math  # noqa: F401  warm imports before reporting ready
    from rewards.math.equivalence import _sympy

    _sympy("x+1")  # loads sympy and the LaTeX parser
    conn.send("ready")
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reward = _score_one(*task, code_timeout_s)
            result = (float(reward), getattr(reward, "status", "ok"), getattr(reward, "detail", None))
        except Exception as e:  # a verifier bug, a broken hook or a malformed gold must never take the worker down
            result = (0.0, "error", f"{type(e).__name__}: {e}"[:500])
        conn.send(result)


if __name__ == "__main__":
    os.environ["OMP_NUM_THREADS"] = "1"
    main()
