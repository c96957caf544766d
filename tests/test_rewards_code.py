"""rewards.code: reference solutions pass, mutants fail, hostile programs are contained."""

import concurrent.futures
import gzip
import json
import os
import pathlib
import random
import shutil
import time

import pytest

from cluster.data.root import data_root
from rewards.code import extract_program, humaneval_tests, mbpp_tests, run_tests, sandbox_mode, uid_processes

DATA = data_root()  # tests/fixtures/data (tests/conftest.py): real records of each dataset


def _humaneval():
    return [json.loads(line) for line in gzip.open(DATA / "humaneval" / "HumanEval.jsonl.gz")]


def _mbpp_sample(n=30):
    rows = [json.loads(line) for line in open(DATA / "mbpp" / "mbpp.jsonl")]
    return random.Random(0).sample(rows, n)


def _run_all(jobs, timeout_s=10.0):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda job: run_tests(job[0], job[1], timeout_s), jobs))


def test_humaneval_reference_solutions_pass_and_stubbed_ones_fail():
    rows = _humaneval()
    good = _run_all([(r["prompt"] + r["canonical_solution"], humaneval_tests(r)) for r in rows])
    assert [r["task_id"] for r, res in zip(rows, good) if not res.passed] == []
    # Mutant: the body returns a wrong constant type; every HumanEval check must catch it.
    bad = _run_all([(r["prompt"] + "    return 'wrong'\n", humaneval_tests(r)) for r in rows])
    assert [r["task_id"] for r, res in zip(rows, bad) if res.passed] == []
    assert {res.reason for res in bad} <= {"failed", "error"}


def test_mbpp_reference_solutions_pass_and_mutants_fail():
    rows = _mbpp_sample()
    good = _run_all([(r["code"], mbpp_tests(r)) for r in rows])
    assert [r["task_id"] for r, res in zip(rows, good) if not res.passed] == []
    # Mutant: a wrapper that returns a sentinel object, equal to nothing the asserts expect.
    mutated = [(r["code"] + "\nimport functools as _f\n_s = object()\n" + "\n".join(
        f"{name} = (lambda *a, **k: _s)" for name in _entry_names(r)), mbpp_tests(r)) for r in rows]
    bad = _run_all(mutated)
    assert [r["task_id"] for r, res in zip(rows, bad) if res.passed] == []


def _entry_names(record):
    """Functions the solution defines and the asserts call."""
    import re

    called = {m for test in record["test_list"] for m in re.findall(r"([A-Za-z_]\w*)\(", test)}
    return sorted(called & set(re.findall(r"^def\s+([A-Za-z_]\w*)", record["code"], re.M)))


def test_fenced_program_is_extracted_and_run():
    completion = "Here:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    assert extract_program(completion).startswith("def add")
    res = run_tests(extract_program(completion), "assert add(2, 3) == 5", 5)
    assert res.passed and res.reason == "passed"


def test_failure_reasons_and_capped_output():
    assert run_tests("x = 1", "assert x == 2", 5).reason == "failed"
    assert run_tests("def f(:", "", 5).reason == "failed"  # the program's fault
    assert run_tests("x = 1", "assert x ==", 5).reason == "error"  # the verifier cannot judge: counted apart
    assert run_tests("while True: pass", "", 1.5).reason == "timeout"
    res = run_tests("print('y' * 100000)", "", 5)
    assert res.passed and len(res.output) <= 4096


def test_bad_arguments_are_refused_with_a_clear_message():
    with pytest.raises(TypeError, match="program: str"):
        run_tests(None, "", 1)
    with pytest.raises(ValueError, match="timeout_s"):
        run_tests("", "", 0)


# ---------------------------------------------------------------- hostile programs (issues #3, #11)

HOSTILE = {
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    "memory_bomb": "x = bytearray(50 * 2**30)",
    "memory_creep": "l = []\nwhile True:\n    l.append(' ' * 10**7)",
    "infinite_loop": "while True:\n    pass",
    "sleep_forever": "import time\ntime.sleep(10**6)",
    "deep_recursion": "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)",
    "huge_stdout": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
    "write_outside": "open('{canary}/file.txt', 'w').write('pwned')",
    "write_world_writable": "open('{canary}/open/new.txt', 'w').write('pwned')",
    "delete_files": "import os, shutil\nos.remove('{canary}/file.txt')\nshutil.rmtree('{canary}')",
    "chmod_files": "import os\nos.chmod('{canary}/file.txt', 0o777)",
    "socket": "import socket\ns = socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', 22))\nprint('LEAK')",
    "env_secrets": "import os\nprint('LEAK' if 'RLVR_TEST_SECRET' in str(os.environ) else 'clean')",
    "home_files": "import os\nfor p in ['/root/.bashrc', '/root/.ssh/id_rsa', '/proc/1/environ']:\n    try:\n        open(p).read()\n        print('LEAK', p)\n    except OSError:\n        pass",
    "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill({caller}, signal.SIGKILL)",
    "kill_everything": "import os\nfor pid in range(2, 4000):\n    try:\n        os.kill(pid, 9)\n    except Exception:\n        pass",
    "daemon_outlives": "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(30)\n        open('{canary}/open/late.txt', 'w').write('late')\n    os._exit(0)",
    "raise_rlimits": "import resource\nfor r in (resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_CPU):\n    try:\n        resource.setrlimit(r, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n        print('LEAK', r)\n    except (ValueError, OSError):\n        pass",
    "ctypes_libc": "import ctypes\nctypes.CDLL('libc.so.6').system(b'touch {canary}/open/ctypes.txt')",
    "ctypes_pythonapi": "import ctypes, os\nlibc = ctypes.pythonapi\nfd = os.open('{canary}/open/raw.txt', os.O_CREAT | os.O_WRONLY)\nprint('LEAK')",
    "subprocess_rm": "import subprocess\nsubprocess.run(['rm', '-rf', '{canary}'])",
    "os_system": "import os\nos.system('rm -rf {canary}')",
    "exit_early_zero": "import sys\nsys.exit(0)",
    "os_exit_zero": "import os\nos._exit(0)",
    "fill_disk": "with open('big.bin', 'wb') as f:\n    while True:\n        f.write(b'0' * 2**20)",
    "threads_bomb": "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(100,)).start()",
    "private_tmp": "open('/tmp/rlvr-escape.txt', 'w').write('x')\nopen('/dev/shm/rlvr-escape.txt', 'w').write('x')",
    "setuid_root": "import os\nos.setuid(0)\nprint('LEAK')",
}


@pytest.fixture()
def canary():
    """A directory outside any temp dir: a root-owned file and a world-writable subdirectory."""
    base = pathlib.Path(f"/var/lib/rlvr-canary-{os.getpid()}-{random.randrange(10**9)}")
    (base / "open").mkdir(parents=True)
    os.chmod(base / "open", 0o777)
    (base / "file.txt").write_text("original")
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _sandbox_processes(wait_s=5.0):
    """Sandbox-uid processes still alive after `wait_s` (a SIGKILLed process can take a moment to exit
    on a loaded machine)."""
    deadline = time.monotonic() + wait_s
    while (alive := set(uid_processes(range(200_000, 900_000)))) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_is_contained(name, canary, monkeypatch):
    monkeypatch.setenv("RLVR_TEST_SECRET", "hunter2")
    program = HOSTILE[name].replace("{canary}", str(canary)).replace("{caller}", str(os.getpid()))
    start = time.monotonic()
    res = run_tests(program, "assert False, 'the tests must never be reached or pass'", timeout_s=3)
    assert time.monotonic() - start < 15
    assert not res.passed
    assert "LEAK" not in res.output and "hunter2" not in res.output
    assert (canary / "file.txt").read_text() == "original"
    assert oct((canary / "file.txt").stat().st_mode & 0o777) == oct(0o644)
    assert list((canary / "open").iterdir()) == []
    assert not pathlib.Path("/tmp/rlvr-escape.txt").exists() and not pathlib.Path("/dev/shm/rlvr-escape.txt").exists()
    assert _sandbox_processes() == set()
    # The caller still works.
    assert run_tests("x = 2", "assert x == 2", 5).passed


def test_daemon_cannot_write_after_the_run(canary):
    run_tests(HOSTILE["daemon_outlives"].replace("{canary}", str(canary)).replace("time.sleep(30)", "time.sleep(1)"),
              "", 3)
    time.sleep(2)
    assert list((canary / "open").iterdir()) == [] and _sandbox_processes() == set()


def test_sandbox_uses_namespaces_and_an_unprivileged_uid_when_root():
    mode = sandbox_mode()
    if os.geteuid() != 0:
        pytest.skip("namespaces and uid drop need root here")
    assert mode["wall"] == "root" and mode["drop_uid"]
    res = run_tests("import os\nprint('uid', os.getuid(), 'pid', os.getpid())", "", 5)
    uid, pid = int(res.output.split()[1]), int(res.output.split()[3])
    assert uid >= 200_000 and pid <= 3  # a fresh PID namespace
