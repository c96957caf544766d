"""Run model-written Python against unit tests: the program in a sandbox, the tests in a trusted checker.

Three processes (docs/reliability.md, "What the code reward guarantees"):
- the sandbox (rewards/sandbox_harness.py, walls in rewards/sandbox.py) runs the program, and then only
  answers "call NAME with these arguments";
- the checker (rewards/code_checker.py, a clean interpreter that never runs the program) runs the tests;
  each call of a program function crosses the wall as plain values (rewards/code_wire.py), so every
  comparison, assert and expected value stays out of the program's reach;
- this process waits on both with a wall-clock timeout and reads the checker's verdict from a pipe that
  only the checker holds.
Test formats: HumanEval (`check(entry_point)`) via `humaneval_tests`, MBPP assert lists via `mbpp_tests`,
EvalPlus differential programs (cluster/data/evalplus.py): any Python test source that calls the program's
functions by name.
"""

import dataclasses
import json
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from rewards.sandbox import (SandboxUnavailable, kill_uid, limits, nproc_limit, preexec, require_wall,
                             sandbox_mode, sweep_stale_dirs, uid_processes)
from rewards.verdict import Verdict

__all__ = ["CodeResult", "SandboxUnavailable", "extract_program", "humaneval_tests", "mbpp_tests", "run_tests",
           "sandbox_mode", "score", "uid_processes", "verdict"]

OUTPUT_CAP = 4096
_HERE = pathlib.Path(__file__).parent
_WIRE = (_HERE / "code_wire.py").read_text()
_HARNESS = _WIRE + (_HERE / "sandbox_harness.py").read_text()
_CHECKER = _WIRE + (_HERE / "code_checker.py").read_text()
_FENCE_RE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.S)
STATUSES = ("passed", "failed", "timeout", "killed", "error")


@dataclasses.dataclass(frozen=True)
class CodeResult:
    passed: bool
    # passed | failed (the program is wrong, raised, or did not load) | timeout | killed (the program died
    # by a signal, e.g. its memory limit) | error (the verifier could not judge: bad tests, checker crash)
    reason: str
    output: str  # the program's stdout + stderr, then the checker's detail, capped at OUTPUT_CAP characters


def _read_capped(path: pathlib.Path) -> str:
    with open(path, "rb") as f:
        return f.read(OUTPUT_CAP).decode("utf-8", "replace")


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its leader if a daemon remains
    except (ProcessLookupError, PermissionError):
        pass
    proc.kill()
    proc.wait()


def _start(cmd, request: dict, limits_: list | None, pass_fds, **kw) -> subprocess.Popen:
    """Start a process and write its request to its stdin. With `limits_` None the process sets its own
    limits (no pre-exec hook, so Python can use vfork: cheaper from a large pool worker)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, pass_fds=pass_fds, start_new_session=True,
                            preexec_fn=None if limits_ is None else (lambda: preexec(limits_)), **kw)
    try:
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    return proc


def run_tests(program: str, tests: str, timeout_s: float = 10.0, memory_mb: int = 1024) -> CodeResult:
    """Run `program` in the sandbox and `tests` in the checker; passed iff the tests ran to the end.

    Raises SandboxUnavailable when this machine offers no wall and RLVR_CODE_SANDBOX=weak is not set."""
    if not isinstance(program, str) or not isinstance(tests, str):
        raise TypeError(f"run_tests expects program: str and tests: str, got {type(program).__name__}, "
                        f"{type(tests).__name__}")
    if timeout_s <= 0:
        raise ValueError(f"run_tests timeout_s={timeout_s}: expected a positive number of seconds")
    mode = require_wall()
    sweep_stale_dirs()
    uid = random.randint(200_000, 899_999) if mode["drop_uid"] else None
    base = pathlib.Path(tempfile.mkdtemp(prefix=f"rlvr-sandbox-{os.getpid()}-"))
    work = base / "work"
    work.mkdir()
    os.chmod(base, 0o711)
    if uid is not None:
        os.chown(work, uid, uid)
    os.chmod(work, 0o700)
    # The whole environment is ours (so no -E): PYTHONHASHSEED gives the program and the checker the same
    # set and dict order, as when both ran in one interpreter (`tuple(set(a) & set(b))` answers).
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    out_path, err_path = base / "stdout", base / "stderr"
    procs, fds = [], []
    try:
        fds += [*os.pipe(), *os.pipe(), *os.pipe()]
        to_prog_r, to_prog_w, to_check_r, to_check_w, verdict_r, verdict_w = fds
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            procs.append(_start(mode["unshare"] + [mode["python"], "-s", "-P", "-c", _HARNESS], {
                "program": program, "work": str(work), "uid": uid, "namespaces": mode["wall"] != "weak",
                "userns": mode["wall"] == "userns", "fds": [to_prog_r, to_check_w]},
                limits(timeout_s, memory_mb, nproc_limit(mode)), (to_prog_r, to_check_w), stdout=out, stderr=err,
                cwd=work, env=env))
        # -S: no site hooks to run at every start; the tests import from this process's sys.path instead.
        procs.append(_start([sys.executable, "-s", "-S", "-P", "-c", _CHECKER], {
            "tests": tests, "fds": [to_check_r, to_prog_w, verdict_w], "path": [p for p in sys.path if p],
            "limits": limits(timeout_s, max(memory_mb, 1024), None)}, None,
            (to_check_r, to_prog_w, verdict_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=base, env=dict(env, HOME=str(base), TMPDIR=str(base))))
        for fd in (to_prog_r, to_prog_w, to_check_r, to_check_w, verdict_w):  # only the children hold these
            fds.remove(fd)
            os.close(fd)
        prog, checker = procs
        timed_out, prog_rc = False, None
        try:
            checker.wait(timeout=timeout_s)
            prog_rc = prog.wait(timeout=0.2)  # ends by itself once the checker hangs up, unless it hangs
        except subprocess.TimeoutExpired:
            timed_out = prog_rc is None and checker.returncode is None
        for p in procs:
            _kill(p)
        if uid is not None:
            kill_uid(uid)
        fds.remove(verdict_r)
        with os.fdopen(verdict_r, "rb") as f:
            raw = f.read(65536)
        output = _read_capped(out_path) + _read_capped(err_path)
        try:
            verdict = json.loads(raw)
            status, detail = verdict["status"], str(verdict["detail"])
        except (ValueError, KeyError, TypeError):
            status, detail = "error", f"the checker gave no verdict (exit code {checker.returncode})"
        output = (output + ("\n" + detail if detail else ""))[:OUTPUT_CAP]
        if timed_out:
            return CodeResult(False, "timeout", output)
        if status == "passed":
            return CodeResult(True, "passed", output)
        if status == "failed" and prog_rc is not None and (prog_rc < 0 or prog_rc >= 128):  # unshare: 128+signo
            return CodeResult(False, "killed", output)
        return CodeResult(False, "failed" if status == "failed" else "error", output)
    finally:
        for p in procs:
            if p.returncode is None:
                _kill(p)
        for fd in fds:
            os.close(fd)
        shutil.rmtree(base, ignore_errors=True)


def extract_program(completion: str) -> str:
    """The last ```python fenced block of a completion, or the whole completion if it has none."""
    blocks = _FENCE_RE.findall(completion)
    return blocks[-1] if blocks else completion


def humaneval_tests(record: dict) -> str:
    """Tests of a HumanEval record: its `check` function, called on the entry point."""
    return f"{record['test']}\n\ncheck({record['entry_point']})\n"


def mbpp_tests(record: dict) -> str:
    """Tests of an MBPP record: setup code, then the assert list (test_imports for sanitized MBPP)."""
    lines = list(record.get("test_imports") or []) + [record.get("test_setup_code") or ""] + list(record["test_list"])
    return "\n".join(lines) + "\n"


def score(completion: str, tests: str, timeout_s: float = 10.0) -> float:
    """1.0 if the program in `completion` passes `tests`, else 0.0."""
    return float(run_tests(extract_program(completion), tests, timeout_s).passed)


_POOL_STATUS = {"passed": "ok", "failed": "ok", "killed": "ok", "timeout": "timeout", "error": "error"}


def verdict(completion: str, tests: str, timeout_s: float = 10.0) -> Verdict:
    """The reward as a `Verdict`: status "ok" when the program was judged (passed or not), "timeout" when it
    ran out of time, "error" when the verifier could not judge (the pool counts the last two as
    reward/timeouts and reward/errors instead of hiding them in a 0.0)."""
    res = run_tests(extract_program(completion), tests, timeout_s)
    status = _POOL_STATUS[res.reason]
    return Verdict(float(res.passed), status, None if status == "ok" else res.output[-500:] or res.reason)
