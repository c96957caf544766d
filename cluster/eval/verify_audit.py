"""`rlvr verify-audit [CASES.jsonl]`: three math graders against labelled cases, side by side.

Runs rlvr's verifier (rewards.math), math-verify 0.9 (the `bench` extra; gold wrapped in `\\boxed{}` as verl
does, default extraction for predictions) and a Qwen2.5-Math-style grader (cluster/eval/reference_grader.py) on
each case, and prints per grader the confusion matrix against the labels (TP/FP/TN/FN), agreement overall,
on answer pairs and on completions, false accepts of near misses, timeouts, errors and median time per case,
then the cases each grader gets wrong (capped by --show). The default case file is the one shipped with the
tests (tests/fixtures/verifier_cases.jsonl; its README gives the fields).

    rlvr verify-audit                        # the shipped cases
    rlvr verify-audit my_cases.jsonl --show 50 --timeout 2
"""

from __future__ import annotations

import json
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cluster.data.problem import BadRecord, DatasetError
from cluster.data.records import read_records

DEFAULT_CASES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "verifier_cases.jsonl"
GRADERS = ("rlvr", "math-verify", "qwen-style")


class AuditError(ValueError):
    """The case file cannot be read; the message names the file, the line and what to fix."""


class _Timeout(BaseException):  # BaseException: graders' own `except Exception` must not swallow it
    pass


@dataclass
class Tally:
    counts: dict = field(default_factory=lambda: dict(TP=0, FP=0, TN=0, FN=0, timeouts=0, errors=0))
    near_miss_accepts: int = 0
    by_kind: dict = field(default_factory=lambda: {"answer": [0, 0], "completion": [0, 0]})  # [right, total]
    times: list = field(default_factory=list)
    wrong: list = field(default_factory=list)

    def add(self, case: dict, got: bool, status: str, seconds: float) -> None:
        want = bool(case["verdict"])
        self.counts[("T" if got == want else "F") + ("P" if got else "N")] += 1
        if status != "ok":
            self.counts["timeouts" if status == "timeout" else "errors"] += 1
        self.near_miss_accepts += got and case.get("tag") == "near-miss"
        kind = self.by_kind[case.get("kind", "answer")]
        kind[0] += got == want
        kind[1] += 1
        self.times.append(seconds)
        if got != want:
            self.wrong.append((case, got, status))

    def agreement(self) -> float:
        c = self.counts
        total = c["TP"] + c["FP"] + c["TN"] + c["FN"]
        return (c["TP"] + c["TN"]) / total if total else 0.0


def load_cases(path: Path) -> list[dict]:
    if not path.is_file():
        raise AuditError(f"case file {path} not found: pass a JSONL file of {{prediction, gold, verdict, source}}")
    cases = []
    try:
        records = list(read_records(path))  # the dataset reader: line numbers, blank lines skipped
    except DatasetError as e:
        raise AuditError(str(e)) from None
    for n, case in records:
        if isinstance(case, BadRecord):
            raise AuditError(f"{path}:{n}: {case}")
        if not isinstance(case.get("prediction"), str) or not isinstance(case.get("gold"), (str, int, float)) \
                or not isinstance(case.get("verdict"), bool):
            raise AuditError(f"{path}:{n}: expected an object with prediction (str), gold (str or number) and "
                             f"verdict (true/false), got {json.dumps(case)[:120]!r}")
        if case.get("kind", "answer") not in ("answer", "completion"):
            raise AuditError(f"{path}:{n}: kind={case['kind']!r}: expected 'answer' or 'completion'")
        case["gold"] = str(case["gold"])
        cases.append(case)
    if not cases:
        raise AuditError(f"{path}: no cases")
    return cases


def _graders(limit_s: float) -> dict:
    """name -> fn(case) -> bool. math-verify is imported plainly: it is a declared dependency (`bench` extra)."""
    from math_verify import parse, verify

    from cluster.eval import reference_grader
    from rewards.math import Rules, is_equivalent, score

    whole_s = max(1, round(limit_s))  # math-verify's own timeouts take whole seconds

    def rlvr(case):
        rules = Rules(**case.get("rules", {}))
        if case.get("kind") == "completion":
            return score(case["prediction"], case["gold"], rules) == 1.0
        return is_equivalent(case["prediction"], case["gold"], rules)

    def math_verify(case):
        pred = case["prediction"] if case.get("kind") == "completion" else f"\\boxed{{{case['prediction']}}}"
        gold = parse(f"\\boxed{{{case['gold']}}}", parsing_timeout=whole_s, raise_on_error=True)
        return bool(verify(gold, parse(pred, parsing_timeout=whole_s, raise_on_error=True),
                           timeout_seconds=whole_s, raise_on_error=True))

    def qwen_style(case):
        return reference_grader.grade(case["prediction"], case["gold"], completion=case.get("kind") == "completion")

    return {"rlvr": rlvr, "math-verify": math_verify, "qwen-style": qwen_style}


def _call(name: str, fn, case: dict, limit_s: float) -> tuple[bool, str]:
    """(verdict, status); a timeout or an exception is a reject, counted apart."""
    guard = name != "math-verify" and threading.current_thread() is threading.main_thread()
    if guard:  # math-verify sets its own SIGALRM; the others get ours
        def on_alarm(signum, frame):
            raise _Timeout

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        return bool(fn(case)), "ok"
    except _Timeout:
        return False, "timeout"
    except Exception as e:  # noqa: BLE001 - any grader failure is an error verdict
        return False, "timeout" if type(e).__name__ == "TimeoutException" else "error"
    finally:
        if guard:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def run_audit(cases: list[dict], limit_s: float = 5.0) -> dict[str, Tally]:
    graders = _graders(limit_s)
    tallies = {name: Tally() for name in graders}
    for name, fn in graders.items():
        _call(name, fn, cases[0], limit_s)  # imports and parser warm-up are not timed
        for case in cases:
            start = time.perf_counter()
            got, status = _call(name, fn, case, limit_s)
            tallies[name].add(case, got, status, time.perf_counter() - start)
    return tallies


def format_report(tallies: dict[str, Tally], show: int = 10) -> str:
    head = (f"{'grader':12s} {'TP':>5s} {'FP':>5s} {'TN':>5s} {'FN':>5s} {'agree':>7s} {'pairs':>7s} "
            f"{'complet.':>8s} {'near-miss FP':>12s} {'timeouts':>8s} {'errors':>6s} {'median ms':>9s}")
    lines = ["confusion matrix against the labels (P = accepted):", head]
    for name, t in tallies.items():
        c = t.counts
        pct = [f"{r / n:.1%}" if n else "-" for r, n in t.by_kind.values()]
        lines.append(f"{name:12s} {c['TP']:5d} {c['FP']:5d} {c['TN']:5d} {c['FN']:5d} {t.agreement():7.1%} "
                     f"{pct[0]:>7s} {pct[1]:>8s} {t.near_miss_accepts:12d} {c['timeouts']:8d} {c['errors']:6d} "
                     f"{statistics.median(t.times) * 1e3:9.3f}")
    for name, t in tallies.items():
        lines.append(f"\n{name}: {len(t.wrong)} disagreements with the labels" + (
            f" (first {show})" if len(t.wrong) > show else "") + (":" if t.wrong and show else ""))
        for case, got, status in t.wrong[:show]:
            pred = case["prediction"].replace("\n", "\\n")
            pred = pred if len(pred) <= 70 else "..." + pred[-67:]
            lines.append(f"  [{case.get('tag', '-')}] {pred} | gold {case['gold']} | label {case['verdict']} | "
                         f"got {got}" + ("" if status == "ok" else f" ({status})"))
    return "\n".join(lines)


def main(cases_path: str | None, show: int = 10, timeout_s: float = 5.0) -> int:
    path = Path(cases_path) if cases_path else DEFAULT_CASES
    cases = load_cases(path)
    print(f"verify-audit: {len(cases)} cases from {path} ({sum(c.get('kind') == 'completion' for c in cases)} "
          f"completions), {timeout_s:g} s per call")
    print(format_report(run_audit(cases, timeout_s), show))
    sys.stdout.flush()
    return 0
