"""Run model-written Python against unit tests in a sandbox.

Walls, strongest first (each used when the machine allows it, see `sandbox_mode()`):
- `unshare --net --pid --mount --kill-child`: no network; a private PID namespace, so every process the
  program starts dies with it (daemons, fork bombs) and no outside process can be signalled; private /tmp.
- an unprivileged, per-run uid (when we are root): files outside the work directory are read-only to it,
  and RLIMIT_NPROC counts only this run's processes.
- rlimits (address space, CPU, file size, processes, open files, no core), a new session, a wall-clock
  timeout that SIGKILLs the process group, and a sweep of the run's uid afterwards.
- a scrubbed environment (HOME and TMPDIR are the temp work directory) and an audit hook in the child that
  refuses sockets, signals, subprocesses and writes outside the work directory.
Test formats: HumanEval (`check(entry_point)`) via `humaneval_tests`, MBPP assert lists via `mbpp_tests`.
"""

import ctypes
import dataclasses
import json
import os
import pathlib
import random
import re
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

OUTPUT_CAP = 4096
_HARNESS = (pathlib.Path(__file__).with_name("sandbox_harness.py")).read_text()
_LIBC = ctypes.CDLL(None)  # resolved here: the pre-exec hook must not import (import locks + threads)
_FENCE_RE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.S)


@dataclasses.dataclass(frozen=True)
class CodeResult:
    passed: bool
    reason: str  # passed | failed | timeout | error | killed
    output: str  # stdout + stderr, capped at OUTPUT_CAP characters


def _world_executable(path: str) -> bool:
    """Can an unprivileged uid run this interpreter (every parent directory o+x, the file o+rx)?"""
    p = pathlib.Path(os.path.realpath(path))
    try:
        return all(d.stat().st_mode & stat.S_IXOTH for d in p.parents) and (p.stat().st_mode & 0o005) == 0o005
    except OSError:
        return False


def _probe_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "--net", "--pid", "--mount", "--fork", "--kill-child", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


_MODE: dict | None = None


def sandbox_mode() -> dict:
    """What this machine allows: {'namespaces': bool, 'drop_uid': bool, 'python': interpreter path}."""
    global _MODE
    if _MODE is None:
        root = os.geteuid() == 0
        python = next((p for p in (sys.executable, "/usr/bin/python3") if os.path.exists(p) and (
            not root or _world_executable(p))), None)
        _MODE = {"namespaces": root and _probe_unshare(), "drop_uid": root and python is not None,
                 "python": python or sys.executable}
    return _MODE


def _preexec(limits: list) -> None:
    """Runs in the forked child before exec: rlimits, and die if the caller dies (no imports here)."""
    for which, value in limits:
        resource.setrlimit(which, (value, value))
    _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def uid_processes(uid_range: range) -> list[int]:
    """Live (non-zombie) processes whose uid is in `uid_range`."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid in uid_range:
                    with open(f"/proc/{entry}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                            pids.append(int(entry))
            except (OSError, IndexError):
                pass
    return pids


def _kill_uid(uid: int, grace_s: float = 5.0) -> None:
    """SIGKILL every process owned by `uid` (the run's private uid) until none is left alive."""
    deadline = time.monotonic() + grace_s
    while (pids := uid_processes(range(uid, uid + 1))) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


_SWEPT = False


def _sweep_stale_dirs() -> None:
    """Once per process: remove work dirs left by callers that were killed mid-run (a pool worker past
    its deadline never reaches its own cleanup). The creator's pid is part of the directory name."""
    global _SWEPT
    if _SWEPT:
        return
    _SWEPT = True
    for d in pathlib.Path(tempfile.gettempdir()).glob("rlvr-sandbox-*-*"):
        pid = d.name.split("-")[2]
        if pid.isdigit() and not pathlib.Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


def _read_capped(path: pathlib.Path) -> str:
    with open(path, "rb") as f:
        head = f.read(OUTPUT_CAP)
    return head.decode("utf-8", "replace")


def _tail_has(path: pathlib.Path, token: str) -> bool:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 256))
        return token.encode() in f.read()


def run_tests(program: str, tests: str, timeout_s: float = 10.0, memory_mb: int = 1024) -> CodeResult:
    """Run `program` then `tests` (Python source) in the sandbox; passed iff the tests ran to the end."""
    if not isinstance(program, str) or not isinstance(tests, str):
        raise TypeError(f"run_tests expects program: str and tests: str, got {type(program).__name__}, "
                        f"{type(tests).__name__}")
    if timeout_s <= 0:
        raise ValueError(f"run_tests timeout_s={timeout_s}: expected a positive number of seconds")
    mode = sandbox_mode()
    _sweep_stale_dirs()
    uid = random.randint(200_000, 899_999) if mode["drop_uid"] else None
    base = pathlib.Path(tempfile.mkdtemp(prefix=f"rlvr-sandbox-{os.getpid()}-"))
    work = base / "work"
    work.mkdir()
    os.chmod(base, 0o711)
    if uid is not None:
        os.chown(work, uid, uid)
    os.chmod(work, 0o700)
    token = secrets.token_hex(16)
    limits = [(resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_CPU, int(timeout_s) + 2),
              (resource.RLIMIT_FSIZE, 16 << 20), (resource.RLIMIT_NOFILE, 256), (resource.RLIMIT_CORE, 0)]
    if uid is not None:
        limits.append((resource.RLIMIT_NPROC, 64))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    cmd = [mode["python"], "-I", "-c", _HARNESS]
    if mode["namespaces"]:
        cmd = ["unshare", "--net", "--pid", "--mount", "--fork", "--kill-child"] + cmd
    request = json.dumps({"program": program, "tests": tests, "token": token, "work": str(work), "uid": uid,
                          "mount_tmp": mode["namespaces"]})
    out_path, err_path = base / "stdout", base / "stderr"
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=work, env=env,
                                    start_new_session=True, preexec_fn=lambda: _preexec(limits))
        timed_out = False
        try:
            proc.stdin.write(request.encode())
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its leader if a daemon remains
            except ProcessLookupError:
                pass
            proc.kill()
            proc.wait()
            if uid is not None:
                _kill_uid(uid)
        output = (_read_capped(out_path) + _read_capped(err_path))[:OUTPUT_CAP]
        output = output.replace(token, "")
        if timed_out:
            return CodeResult(False, "timeout", output)
        if proc.returncode == 0 and _tail_has(out_path, token):
            return CodeResult(True, "passed", output)
        if proc.returncode < 0 or proc.returncode >= 128:  # signal (unshare reports 128 + signo)
            return CodeResult(False, "killed", output)
        failed = "AssertionError" in output or proc.returncode == 0
        return CodeResult(False, "failed" if failed else "error", output)
    finally:
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
