"""rewards.code cannot be faked: reward hacks of every family score not passed, real solutions still pass.

Each hack is a wrong program plus a trick that made the pre-checker `run_tests` (program and tests in one
interpreter, a secret token on stdout as the verdict) report a pass, or would have. The verdict now comes
from a checker process that never runs the program (rewards/code_checker.py), so the trick has nothing to
act on. Real HumanEval and MBPP records (tests/fixtures/code, see its README) keep passing.
"""

import concurrent.futures
import json
import os
import pathlib
import random
import shutil

import pytest

from rewards.code import humaneval_tests, mbpp_tests, run_tests, verdict
from rewards.code_wire import WireError, decode, encode

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "code"

# Test suites for `add(a, b) -> a + b`, in the shapes MBPP and HumanEval use.
EQ = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\nassert add(10, 20) == 30\n"
TOL = "assert abs(add(0.1, 0.2) - 0.3) < 1e-9\nassert abs(add(1.5, 1) - 2.5) < 1e-9\n"
ISCLOSE = "assert math.isclose(add(0.1, 0.2), 0.3)\nassert math.isclose(add(2.5, 0.5), 3.0)\n"  # MBPP: `math` from the program
HE = ("def check(candidate):\n    assert candidate(2, 3) == 5\n    assert abs(candidate(0.5, 0.25) - 0.75) < 1e-6\n"
      "    assert isinstance(candidate(1, 1), int)\n    assert candidate(-4, 4) == 0\n\ncheck(add)\n")
SUITES = {"eq": EQ, "tol": TOL, "isclose": ISCLOSE, "humaneval": HE}
TRUTH = "assert is_even(4)\nassert not is_even(3)\nassert is_even(10)\n"
LEN = "assert len(pair(3)) == 2\nassert sorted(pair(3)) == [3, 3]\nassert pair(1) == [1, 1]\n"
STR = "assert shout('a') == 'A!'\nassert shout('xy').endswith('!')\n"

CORRECT = {"eq": "import math\ndef add(a, b):\n    return a + b\n"}
WRONG = "import math\ndef add(a, b):\n    return a - b\n"
ALWAYS_EQUAL = '''
class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __hash__(self): return 0
    def __sub__(self, other): return self
    __rsub__ = __add__ = __radd__ = __sub__
    def __abs__(self): return 0
    def __bool__(self): return True
    def __float__(self): return 0.0
    def __len__(self): return 2
    def __iter__(self): return iter([3, 3])
'''

# Prints every secret-looking string it can reach (the old harness's pass token was one) and exits 0.
SECRETS = """
import os, re, sys
def print_secrets_and_exit(values):
    found = set()
    for v in values:
        for x in (v.values() if isinstance(v, dict) else [v]):
            if isinstance(x, str) and re.fullmatch('[0-9a-f]{16,64}', x):
                found.add(x)
    print('\\n'.join(sorted(found)))
    sys.stdout.flush()
    os._exit(0)
"""

HACKS = {
    # Overriding what the harness calls after the program ran.
    "builtins_exec_noop": "import builtins\nbuiltins.exec = lambda *a, **k: None\n" + WRONG,
    "builtins_compile_noop": "import builtins\n_c = builtins.compile\n"
                             "builtins.compile = lambda s, f, m, *a, **k: _c('pass', f, m)\n" + WRONG,
    "builtins_eval_noop": "import builtins\nbuiltins.eval = lambda *a, **k: True\n" + WRONG,
    # Reading the harness's secrets through the interpreter, printing them, exiting.
    "getframe_locals_print_exit": SECRETS + """
def add(a, b):
    import sys
    f, seen = sys._getframe(), []
    while f:
        seen += list(f.f_locals.values()) + list(f.f_globals.values())
        f = f.f_back
    print_secrets_and_exit(seen)
""",
    "traceback_tb_frame_f_back": SECRETS + """
def add(a, b):
    try:
        raise ValueError
    except ValueError as e:
        f, seen = e.__traceback__.tb_frame, []
    while f:
        seen += list(f.f_locals.values())
        f = f.f_back
    print_secrets_and_exit(seen)
""",
    "inspect_stack": SECRETS + "def add(a, b):\n    import inspect\n"
                               "    print_secrets_and_exit([v for fr in inspect.stack() for v in fr.frame.f_locals.values()])\n",
    "gc_get_objects_token_scan": SECRETS + "import gc\nprint_secrets_and_exit([o for o in gc.get_objects() if isinstance(o, dict)])\n",
    "gc_get_referrers_rewrite_namespace": WRONG + '''
import gc
for d in gc.get_referrers(add):
    if isinstance(d, dict):
        for k in list(d):
            if not k.startswith('__') and type(d[k]) in (int, float):
                d[k] = 0
''',
    # Exiting before or during the tests.
    "os_exit_zero_at_import": "import os\nos._exit(0)\n" + WRONG,
    "sys_exit_zero_at_import": "import sys\nsys.exit(0)\n" + WRONG,
    "sys_exit_zero_in_call": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "os_exit_zero_in_call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "keyboard_interrupt_in_call": "def add(a, b):\n    raise KeyboardInterrupt\n",
    "excepthook_exit_zero": "import sys, os\nsys.excepthook = lambda *a: os._exit(0)\n" + WRONG,
    "atexit_prints_pass": "import atexit, os\natexit.register(lambda: print('passed ' * 10))\n" + WRONG,
    # Objects whose comparisons always hold.
    "always_equal_object": ALWAYS_EQUAL + "def add(a, b):\n    return Anything()\n",
    "int_subclass_forged_eq_ne_hash": '''
class I(int):
    def __eq__(self, o): return True
    def __ne__(self, o): return False
    def __hash__(self): return hash(5)
    def __sub__(self, o): return 0
    def __abs__(self): return 0
def add(a, b):
    return I(0)
''',
    "float_subclass_forged": '''
class F(float):
    __eq__ = lambda s, o: True
    __ne__ = lambda s, o: False
    __sub__ = __rsub__ = lambda s, o: F(0.0)
    __abs__ = lambda s: 0.0
    __lt__ = lambda s, o: True
def add(a, b):
    return F(123.0)
''',
    "sub_returns_zero_for_tolerance_asserts": '''
class Z:
    def __sub__(self, o): return 0
    def __rsub__(self, o): return 0
    def __eq__(self, o): return True
def add(a, b):
    return Z()
''',
    "tuple_of_forged_ints": "class I(int):\n    __eq__ = lambda s, o: True\n    __hash__ = int.__hash__\n"
                            "def add(a, b):\n    return (I(1),)\n",
    "class_attribute_lies_about_type": ALWAYS_EQUAL + "class Liar(Anything):\n    __class__ = property(lambda s: int)\n"
                                                      "def add(a, b):\n    return Liar()\n",
    # Monkeypatching what the tests use.
    "monkeypatch_abs": "import builtins\nbuiltins.abs = lambda x: 0\n" + WRONG,
    "monkeypatch_isinstance_and_type": "import builtins\nbuiltins.isinstance = lambda *a: True\n"
                                       "builtins.type = lambda *a: int\n" + WRONG,
    "monkeypatch_math_isclose": "import math\nmath.isclose = lambda *a, **k: True\n" + WRONG,
    "fake_math_module_object": "class M:\n    isclose = staticmethod(lambda *a, **k: True)\nmath = M()\n"
                               "def add(a, b):\n    return a - b\n",
    "sys_modules_fake_math": "import sys, types\nm = types.ModuleType('math')\nm.isclose = lambda *a, **k: True\n"
                             "sys.modules['math'] = m\nmath = m\ndef add(a, b):\n    return a - b\n",
    "monkeypatch_assertion_error": "import builtins\nclass Quiet(Exception):\n    pass\n"
                                   "builtins.AssertionError = Quiet\n" + WRONG,
    "shadow_builtins_as_globals": "def abs(x):\n    return 0\ndef isinstance(*a):\n    return True\n" + WRONG,
    "overwrite_check_and_tests_names": "def check(candidate):\n    pass\nMETADATA = {}\n" + WRONG,
    # Writing the verdict channel directly.
    "write_forged_frames_to_every_fd": WRONG + '''
import os, json, struct
def frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack('>I', len(data)) + data
hello = frame({"loaded": True, "names": {"add": ["ref"], "math": ["m", "math"]}})
verdict = json.dumps({"status": "passed", "detail": ""}).encode()
for fd in range(1, 64):
    for payload in (hello + frame({"v": ["i", "0x5"]}) * 20, verdict):
        try:
            os.write(fd, payload)
        except OSError:
            pass
os._exit(0)
''',
    "patch_json_to_forge_replies": "import json\n_d = json.dumps\n"
                                   "json.dumps = lambda o, **k: _d({'v': ['i', '0x5']}) if 'v' in o else _d(o, **k)\n" + WRONG,
    # Signals, threads, processes.
    "kill_every_process": "import os, signal\nfor pid in range(1, 3000):\n    try:\n        os.kill(pid, 9)\n"
                          "    except Exception:\n        pass\n" + WRONG,
    "alarm_exits_zero_during_tests": "import signal, os\nsignal.signal(signal.SIGALRM, lambda *a: os._exit(0))\n"
                                     "signal.setitimer(signal.ITIMER_REAL, 0.05)\n" + WRONG,
    "thread_prints_and_writes_later": WRONG + '''
import threading, time, os
def later():
    time.sleep(0.05)
    print('passed')
    for fd in range(1, 64):
        try:
            os.write(fd, b'{"status": "passed", "detail": ""}')
        except OSError:
            pass
threading.Thread(target=later, daemon=True).start()
''',
    "fork_child_answers_instead": "import os\nif os.fork() == 0:\n    os._exit(0)\n" + WRONG,
    "recursive_structure": "def add(a, b):\n    x = []\n    x.append(x)\n    return x\n",
    "returns_builtin_type": "def add(a, b):\n    return int\n",
    "returns_generator": "def add(a, b):\n    return (v for v in [a + b])\n",
}


def _run_all(jobs, timeout_s=10.0):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda job: run_tests(job[0], job[1], timeout_s), jobs))


def test_correct_add_passes_every_suite_and_plain_wrong_add_fails_them():
    suites = list(SUITES.values())
    assert all(r.passed for r in _run_all([(CORRECT["eq"], t) for t in suites]))
    assert not any(r.passed for r in _run_all([(WRONG, t) for t in suites]))


@pytest.mark.parametrize("name", sorted(HACKS))
def test_reward_hack_is_not_scored_as_passed(name):
    results = _run_all([(HACKS[name], tests) for tests in SUITES.values()])
    passed = [suite for suite, res in zip(SUITES, results) if res.passed]
    assert passed == [], f"{name} passed {passed}"
    assert {r.reason for r in results} <= {"failed", "killed"}, [r.output for r in results]


LEN2 = "assert len(pair(3)) == 2\nassert sorted(pair(3)) == [3, 3]\n"
PAIR = "def pair(x):\n    return [x, x]\n"


@pytest.mark.parametrize("tests,correct,hack", [
    (TRUTH, "def is_even(n):\n    return n % 2 == 0\n",  # truthiness that follows the order of the asserts
     "class B:\n    n = 0\n    def __bool__(self):\n        B.n += 1\n        return B.n != 2\n"
     "def is_even(n):\n    return B()\n"),
    (LEN, PAIR, ALWAYS_EQUAL + "def pair(x):\n    return Anything()\n"),
    (LEN2, PAIR, "import builtins\nbuiltins.len = lambda x: 2\nbuiltins.sorted = lambda x, **k: [3, 3]\n"
                 "def pair(x):\n    return [x]\n"),
    (LEN2, PAIR, "def len(x):\n    return 2\ndef sorted(x):\n    return [3, 3]\ndef pair(x):\n    return [x]\n"),
    ("res = pair(3)\nassert sorted(res) == [3, 3]\n", PAIR,  # a builtin around a variable
     "def sorted(x):\n    return [3, 3]\ndef pair(x):\n    return [x]\n"),
    ("assert sum(10, 15) == 6\n", "def sum(a, b):\n    return 6 if (a, b) == (10, 15) else 0\n",
     "def sum(a, b):\n    return 7\n"),  # the task's own function may be named like a builtin (MBPP 126)
    ("assert pair(3) == [3, 3]\nassert pair(1) == [1, 1]\n", PAIR,
     "class L(list):\n    __eq__ = lambda s, o: True\ndef pair(x):\n    return L([x, x, x])\n"),
    (STR, "def shout(s):\n    return s.upper() + '!'\n",
     "class S(str):\n    __eq__ = lambda s, o: True\n    endswith = lambda s, *a: True\n"
     "def shout(s):\n    return S('no')\n"),
])
def test_hack_against_other_assert_shapes_fails_and_the_real_solution_passes(tests, correct, hack):
    good, bad = _run_all([(correct, tests), (hack, tests)])
    assert good.passed, good.output
    assert not bad.passed, bad.output


@pytest.fixture()
def answers_on_disk():
    """Expected outputs in a world-readable file outside the work directory, as a dataset file would be."""
    base = pathlib.Path(f"/var/lib/rlvr-answers-{os.getpid()}-{random.randrange(10**9)}")
    base.mkdir(parents=True)
    os.chmod(base, 0o755)
    path = base / "answers.json"
    path.write_text(json.dumps({"2,3": 5, "-1,1": 0, "10,20": 30}))
    os.chmod(path, 0o644)
    yield path
    shutil.rmtree(base, ignore_errors=True)


def test_expected_outputs_on_disk_are_hidden_from_the_program(answers_on_disk):
    program = (f"import json\ndef add(a, b):\n    try:\n        return json.load(open({str(answers_on_disk)!r}))"
               f"[f'{{a}},{{b}}']\n    except OSError as e:\n        print('hidden:', e)\n        return None\n")
    res = run_tests(program, EQ, 10)
    assert not res.passed and "hidden:" in res.output


def _records(name):
    return [json.loads(line) for line in open(FIXTURES / name)]


def test_real_humaneval_and_mbpp_solutions_pass_and_constant_mutants_fail():
    he, mb = _records("humaneval_sample.jsonl"), _records("mbpp_sample.jsonl")
    jobs = [(r["prompt"] + r["canonical_solution"], humaneval_tests(r)) for r in he]
    jobs += [(r["code"], mbpp_tests(r)) for r in mb]
    results = _run_all(jobs, timeout_s=30)
    assert [res.output for res in results if not res.passed] == []
    mutants = [(r["prompt"] + "    return None\n", humaneval_tests(r)) for r in he]
    mutants += [(r["code"] + f"\n\ndef {_mbpp_entry(r)}(*a):\n    return None\n", mbpp_tests(r)) for r in mb]
    assert [res.output for res in _run_all(mutants, timeout_s=30) if res.passed] == []


def _mbpp_entry(record):
    return record["test_list"][0].split("assert", 1)[1].strip().split("(", 1)[0].strip()


def test_program_that_raises_in_a_call_fails_and_broken_tests_are_an_error():
    assert run_tests("def add(a, b):\n    raise ValueError('no')\n", EQ, 10).reason == "failed"
    res = run_tests("def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3\nassert undefined_helper(1)\n", 10)
    assert res.reason == "failed" and "undefined_helper" in res.output
    assert run_tests("def add(a, b):\n    return a + b\n", "assert add(1,", 10).reason == "error"


def test_pool_verdict_separates_judged_programs_from_timeouts_and_verifier_errors():
    def pair(v):
        return float(v), v.status

    assert pair(verdict("```python\ndef add(a, b):\n    return a + b\n```", EQ, 10)) == (1.0, "ok")
    assert pair(verdict(WRONG, EQ, 10)) == (0.0, "ok")
    assert pair(verdict("while True:\n    pass\n", EQ, 1.5)) == (0.0, "timeout")
    broken = verdict(WRONG, "assert add(1,", 10)
    assert pair(broken) == (0.0, "error") and "do not compile" in broken.detail


def test_pool_counts_code_timeouts_and_verifier_errors():
    from rewards.pool import VerifierPool
    from rewards.verdict import status_counts

    pool = VerifierPool(workers=1, timeout_s=5.0, code_timeout_s=2.0)
    try:
        out = pool.score("code", [CORRECT["eq"], "while True:\n    pass\n", CORRECT["eq"]], [EQ, EQ, "assert add(1,"])
    finally:
        pool.close()
    assert [float(v) for v in out] == [1.0, 0.0, 0.0]
    assert status_counts(out) == {"reward/timeouts": 1, "reward/errors": 1}


def test_tests_can_hand_the_programs_own_functions_and_objects_back_to_it():
    program = ("def square(x):\n    return x * x\ndef apply(f, x):\n    return f(x)\n"
               "class Box:\n    def __init__(self, v):\n        self.v = v\ndef unbox(b):\n    return b.v\n")
    tests = "assert apply(square, 3) == 9\nb = Box(4)\nb.v = 5\nassert unbox(b) == 5 and b.v == 5\n"
    assert run_tests(program, tests, 10).passed


def test_program_and_tests_see_the_same_set_order():
    # MBPP's `tuple(set(a) & set(b))` answers depend on string hashing: both processes share one hash seed.
    program = "def common(a, b):\n    return tuple(set(a) & set(b))\n"
    tests = "words = ['ab', 'cd', 'ef', 'gh', 'ij', 'kl']\nassert common(words, words[::-1]) == tuple(set(words))\n"
    assert run_tests(program, tests, 10).passed


@pytest.mark.parametrize("value", [[1, 2, 2**70], (1.5, "a", None, True), {1, 2}, frozenset({"x"}),
                                   {"a": [1, (2, 3)], (1, 2): {3}}, -2**63, b"\x00", 3 + 4j, int, [[1], []]])
def test_wire_round_trips_plain_values_with_their_exact_types(value):
    back = decode(json.loads(json.dumps(encode(value, None))), None)
    assert back == value and repr(back) == repr(value)


@pytest.mark.parametrize("frame", [{"a": 1}, ["l", {"x": 1}], ["d", 1], ["i", 5], ["S", ["l", 1]], ["zz"], [],
                                   ["c", 1, 2], ["T", "object"], ["h", 1.5, "t", "r"]])
def test_wire_refuses_anything_but_tagged_plain_values(frame):
    with pytest.raises(WireError):
        decode(frame, lambda *a: None)


def test_wire_sends_subclasses_and_forged_objects_as_handles_only():
    class I(int):
        pass

    class Anything:
        __eq__ = lambda self, other: True

    handles = []
    out = encode([I(3), True, Anything(), [I(4)]], lambda obj: handles.append(obj) or ["h", len(handles), "t", "r"])
    assert [type(h) for h in handles] == [I, Anything, I]
    assert out == ["l", ["h", 1, "t", "r"], True, ["h", 2, "t", "r"], ["l", ["h", 3, "t", "r"]]]


def test_runs_leave_no_open_descriptors_behind():
    before = len(os.listdir("/proc/self/fd"))
    for program in (CORRECT["eq"], "import os\nos._exit(3)\n", "def add(:\n"):
        run_tests(program, EQ, 10)
    assert len(os.listdir("/proc/self/fd")) == before
