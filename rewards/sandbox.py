"""The process walls around model-written code, and what this machine allows (`sandbox_mode()`).

Walls, strongest first; `sandbox_mode()` picks one and never silently drops to a weaker one:
- "root": `unshare --net --pid --mount --mount-proc --kill-child` as root, then a private per-run uid.
- "userns": the same namespaces without root, inside an unprivileged user namespace (`unshare --user
  --map-root-user`); the harness then enters a nested user namespace, so it holds no capability over the
  mounts it set up.
  Both: no network; a private PID namespace and /proc (every process the program starts dies with it; no
  outside process can be seen, signalled or traced); every mount read-only except the work directory,
  which is also the private /tmp, /var/tmp and /dev/shm.
- "weak" (only with RLVR_CODE_SANDBOX=weak): rlimits, a new session and a Python audit hook. A program can
  get past the hook (e.g. `_posixsubprocess.fork_exec`, ctypes) and then acts with the caller's uid.
Where neither namespace wall works and the opt-in is not set, code rewards are refused (SandboxUnavailable).
Always: rlimits (address space, CPU, file size, processes, open files, no core), a new session, a
wall-clock timeout that SIGKILLs the process group, a sweep of the run's uid afterwards, a scrubbed env.
"""

import ctypes
import os
import pathlib
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

WEAK_ENV = "RLVR_CODE_SANDBOX"  # set to "weak" to accept the weak sandbox where no namespace wall works
NPROC = 64  # processes (threads count) the program may have at once
_LIBC = ctypes.CDLL(None)  # resolved here: the pre-exec hook must not import (import locks + threads)
_NAMESPACES = ["--net", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc"]


class SandboxUnavailable(RuntimeError):
    """No wall can hold model-written code on this machine and the weak sandbox was not opted into."""


def _world_executable(path: str) -> bool:
    """Can an unprivileged uid run this interpreter (every parent directory o+x, the file o+rx)?"""
    p = pathlib.Path(os.path.realpath(path))
    try:
        return all(d.stat().st_mode & stat.S_IXOTH for d in p.parents) and (p.stat().st_mode & 0o005) == 0o005
    except OSError:
        return False


def _probe(prefix: list[str]) -> str:
    """'' if `unshare <prefix> true` works here, else why not."""
    if shutil.which("unshare") is None:
        return "the `unshare` program (util-linux) is not installed"
    try:
        res = subprocess.run(["unshare", *prefix, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return f"`unshare {' '.join(prefix)} true` failed: {e}"
    why = res.stderr.decode(errors="replace").strip()[:200]
    return "" if res.returncode == 0 else f"`unshare {' '.join(prefix)} true` failed: {why or res.returncode}"


_MODE: dict | None = None


def sandbox_mode() -> dict:
    """{'wall': 'root' | 'userns' | 'weak' | None, 'unshare': argv prefix, 'drop_uid': bool, 'python': path,
    'missing': why no namespace wall works ('' if one does)}. Probed once per process."""
    global _MODE
    if _MODE is None:
        root = os.geteuid() == 0
        shared = next((p for p in (sys.executable, "/usr/bin/python3") if os.path.exists(p) and _world_executable(p)),
                      None)
        why = []
        if root and shared and not (err := _probe(_NAMESPACES)):
            _MODE = {"wall": "root", "unshare": ["unshare", *_NAMESPACES], "drop_uid": True, "python": shared}
        else:
            if root:
                why.append(err if shared else "no interpreter is world-executable for the private uid")
            userns = ["--user", "--map-root-user", *_NAMESPACES]
            if not (err := _probe(userns)):
                _MODE = {"wall": "userns", "unshare": ["unshare", *userns], "drop_uid": False,
                         "python": sys.executable}
            else:
                why.append(err)
                weak = os.environ.get(WEAK_ENV, "") == "weak"
                _MODE = {"wall": "weak" if weak else None, "unshare": [], "drop_uid": False, "python": sys.executable}
        _MODE["missing"] = "; ".join(why)
    return _MODE


def require_wall() -> dict:
    """The sandbox mode, or SandboxUnavailable saying what is missing and how to allow it."""
    mode = sandbox_mode()
    if mode["wall"] is None:
        raise SandboxUnavailable(
            f"code rewards refused: no sandbox wall is available on this machine (uid {os.geteuid()}): "
            f"{mode['missing']}. Allow unprivileged user namespaces (e.g. `sysctl -w user.max_user_namespaces="
            "15000`; on Ubuntu also `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`) or run the "
            f"verifier as root; or accept a weaker sandbox (rlimits and a Python audit hook only, which a "
            f"program can get past) by setting the environment variable {WEAK_ENV}=weak.")
    return mode


def _uid_tasks(uid: int) -> int:
    """Threads owned by `uid` (RLIMIT_NPROC counts them per real uid when there is no user namespace)."""
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return n


def limits(timeout_s: float, memory_mb: int, nproc: int | None) -> list:
    """rlimits for a sandboxed (or checker) process; RLIMIT_NPROC unless `nproc` is None."""
    out = [(resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_CPU, int(timeout_s) + 2),
           (resource.RLIMIT_FSIZE, 16 << 20), (resource.RLIMIT_NOFILE, 256), (resource.RLIMIT_CORE, 0)]
    return out + ([(resource.RLIMIT_NPROC, nproc)] if nproc is not None else [])


def nproc_limit(mode: dict) -> int:
    """RLIMIT_NPROC for the program, always set: it counts the private uid (root wall), the user
    namespace's own processes (userns wall), or the caller's uid on top of what it already runs (weak)."""
    return NPROC + (_uid_tasks(os.getuid()) if mode["wall"] == "weak" else 0)


def preexec(limits_: list) -> None:
    """Runs in the forked child before exec: rlimits, and die if the caller dies (no imports here)."""
    for which, value in limits_:
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


def kill_uid(uid: int, grace_s: float = 5.0) -> None:
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


def sweep_stale_dirs() -> None:
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
