"""EvalPlus test programs. The `gold` of a code Problem is Python source that, run after the candidate's
code in the same namespace (`rewards.code.run_tests(program, tests)`), finishes exactly when it passes;
HumanEval and MBPP tests come from `rewards.code.humaneval_tests` / `mbpp_tests`.

EvalPlus (Liu et al. 2023, https://arxiv.org/abs/2305.01210) ships inputs, not outputs: the program
here runs the reference solution in its own namespace and compares the candidate with it per input.
"""

from __future__ import annotations

import json

# Runs after the candidate's code: the candidate function is passed in by name (a bare name, so the code
# reward's checker knows the tests judge it even when it is named like a builtin, e.g. MBPP's `sum`).
# Inputs on which the reference itself raises are skipped: they cannot judge a candidate
# (EvalPlus stores tuples as JSON lists, which a few MBPP+ references reject).
_DIFFERENTIAL = '''
import copy as _copy
import math as _math


def _kind(x):
    """Type name; a non-plain object returned through the sandbox wall (rewards.code) carries its own."""
    if type(x).__name__ == "Remote":
        return x._type
    return type(x).__module__ + "." + type(x).__qualname__


def _same(got, want, atol):
    if isinstance(want, float) or (isinstance(got, float) and isinstance(want, int)):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return False
        if _math.isnan(want):
            return _math.isnan(got)
        return _math.isclose(got, want, rel_tol=1e-6, abs_tol=atol)
    if isinstance(want, (list, tuple)):
        return (type(got) is type(want) and len(got) == len(want)
                and all(_same(g, w, atol) for g, w in zip(got, want)))
    if isinstance(want, dict):
        return (isinstance(got, dict) and got.keys() == want.keys()
                and all(_same(got[k], want[k], atol) for k in want))
    if type(want).__eq__ is object.__eq__:  # identity equality only (e.g. re.Match): compare the repr
        return _kind(got) == _kind(want) and repr(got) == repr(want)
    return got == want


def _run_differential(cand):
    ref_ns = {"__name__": "__reference__"}
    exec(compile(_REF_SRC, "<reference>", "exec"), ref_ns)
    ref = ref_ns[_ENTRY]
    judged = 0
    for i, args in enumerate(_INPUTS):
        try:
            want = ref(*_copy.deepcopy(args))
        except Exception:
            continue
        got = cand(*_copy.deepcopy(args))
        assert _same(got, want, _ATOL), f"input #{i}: got {got!r:.200}, expected {want!r:.200}"
        judged += 1
    assert judged, "the reference solution failed on every input: this problem cannot judge a candidate"
'''


def differential_program(ref_src: str, entry_point: str, inputs: list, atol: float) -> str:
    """EvalPlus-style: compare the candidate with the reference solution on every input."""
    header = (
        "import json as _json\n"
        f"_REF_SRC = {ref_src!r}\n"
        f"_ENTRY = {entry_point!r}\n"
        f"_ATOL = {float(atol)!r}\n"
        f"_INPUTS = _json.loads({json.dumps(inputs)!r})\n"
    )
    if not entry_point.isidentifier():
        raise ValueError(f"differential_program: entry_point={entry_point!r} is not a Python identifier")
    return header + _DIFFERENTIAL + f"\n\n_run_differential({entry_point})\n"
