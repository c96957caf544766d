"""rewards.code's sandbox, as root and as an unprivileged user: a real wall or a clear refusal, never a
silent downgrade; the weak sandbox only when opted into.

The unprivileged runs start the verifier itself under uid 65534 (setpriv), so they need root to switch user.
The escape used throughout is the one the Python audit hook cannot see: `_posixsubprocess.fork_exec`
running a shell that writes into a world-writable directory and reads a world-readable secret.
"""

import json
import os
import pathlib
import random
import shutil
import subprocess
import sys

import pytest

from rewards.code import run_tests
from rewards.sandbox import _world_executable

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOBODY = 65534
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
GOOD = "def add(a, b):\n    return a + b\n"
ALWAYS_EQUAL = "class A:\n    __eq__ = lambda s, o: True\ndef add(a, b):\n    return A()\n"
ESCAPE = '''
import os
def shell(cmd):
    import _posixsubprocess
    r, w = os.pipe()
    pid = _posixsubprocess.fork_exec([b"/bin/sh", b"-c", cmd.encode()], [b"/bin/sh"], True, (w,), None, None,
                                     -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, None, -1, None,
                                     False)
    os.close(w)
    os.waitpid(pid, 0)
try:
    shell("touch {canary}/open/escaped; cat {canary}/secret.txt > {canary}/open/leak; cat {canary}/secret.txt")
except Exception as e:
    print("blocked:", type(e).__name__, e)
def add(a, b):
    return a - b
'''


@pytest.fixture()
def canary():
    """Outside every temp dir: a world-readable secret and a world-writable directory."""
    base = pathlib.Path(f"/var/lib/rlvr-canary-{os.getpid()}-{random.randrange(10**9)}")
    (base / "open").mkdir(parents=True)
    os.chmod(base, 0o755)
    os.chmod(base / "open", 0o777)
    (base / "secret.txt").write_text("hunter2")
    os.chmod(base / "secret.txt", 0o644)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _assert_contained(canary, result):
    assert not result["escape_passed"]
    assert list((canary / "open").iterdir()) == [], "the program wrote outside its work directory"
    assert "hunter2" not in result["escape_output"], "the program read a file outside its work directory"


_DRIVER = '''
import json, os, sys
sys.path.insert(0, {root!r})
from rewards.code import SandboxUnavailable, run_tests, sandbox_mode
out = {{"uid": os.getuid(), "wall": sandbox_mode()["wall"]}}
try:
    out["good"] = run_tests({good!r}, {tests!r}, 30).passed
    out["hack"] = run_tests({hack!r}, {tests!r}, 30).passed
    esc = run_tests({escape!r}, {tests!r}, 30)
    out.update(escape_passed=esc.passed, escape_output=esc.output)
except SandboxUnavailable as e:
    out["refused"] = str(e)
    try:
        from rewards import score_batch
        score_batch("code", ["def f():\\n    return 1\\n"], ["assert f() == 1"])
    except SandboxUnavailable as e:
        out["batch_refused"] = str(e)
print(json.dumps(out))
'''


def _as_nobody(canary, path: str, extra_env: dict | None = None) -> dict:
    """Run the verifier as uid 65534 with PATH=`path`; its JSON report."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("switching to an unprivileged uid needs root and setpriv")
    python = next((p for p in (sys.executable, "/usr/bin/python3") if _world_executable(p)), None)
    if python is None or not all(os.stat(d).st_mode & 0o005 == 0o005 for d in (ROOT, ROOT / "rewards")):
        pytest.skip("no interpreter or checkout that uid 65534 can use")
    driver = _DRIVER.format(root=str(ROOT), good=GOOD, hack=ALWAYS_EQUAL, tests=TESTS,
                            escape=ESCAPE.replace("{canary}", str(canary)))
    env = {"PATH": path, "HOME": "/tmp", "LANG": "C.UTF-8", **(extra_env or {})}
    cmd = [shutil.which("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python, "-I", "-c", driver]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["uid"] == NOBODY
    return out


def test_as_root_the_unaudited_escape_neither_writes_nor_reads_outside(canary):
    if os.geteuid() != 0:
        pytest.skip("the root wall needs root")
    res = run_tests(ESCAPE.replace("{canary}", str(canary)), TESTS, 30)
    _assert_contained(canary, {"escape_passed": res.passed, "escape_output": res.output})


def test_unprivileged_user_gets_the_user_namespace_wall_or_a_clear_refusal(canary):
    out = _as_nobody(canary, "/usr/bin:/bin")
    if out["wall"] is None:  # a kernel without unprivileged user namespaces: refused, and says how to allow
        assert "RLVR_CODE_SANDBOX=weak" in out["refused"] and "user namespaces" in out["refused"]
        return
    assert out["wall"] == "userns"
    assert out["good"] is True and out["hack"] is False
    _assert_contained(canary, out)


def test_without_a_wall_code_rewards_are_refused_naming_the_opt_in(canary):
    out = _as_nobody(canary, "/nonexistent")  # no `unshare` on PATH: no namespace wall can be built
    assert out["wall"] is None and "refused" in out and "good" not in out
    assert "RLVR_CODE_SANDBOX=weak" in out["refused"] and "unshare" in out["refused"]
    assert out["batch_refused"] == out["refused"]  # training stops with the same message, not 0.0 rewards


def test_weak_sandbox_only_when_opted_in_and_it_stops_the_fork_exec_escape(canary):
    out = _as_nobody(canary, "/nonexistent", {"RLVR_CODE_SANDBOX": "weak"})
    assert out["wall"] == "weak"
    assert out["good"] is True and out["hack"] is False
    _assert_contained(canary, out)
    assert "blocked: PermissionError" in out["escape_output"]
