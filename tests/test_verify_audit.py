"""`rlvr verify-audit`: the three graders' tables on a small case file, and clear errors for bad files."""

import json
import re
import time

from cluster.cli import main
from cluster.eval.verify_audit import _call

CASES = [
    {"prediction": r"\frac{1}{2}", "gold": "0.5", "verdict": True, "source": "t", "tag": "number"},
    {"prediction": "1,22", "gold": "1.22", "verdict": True, "source": "t", "tag": "decimal-comma"},
    {"prediction": r"\frac{\pi}{6}", "gold": "0.5", "verdict": False, "source": "t", "tag": "near-miss"},
    {"prediction": "(2, 1)", "gold": "(1, 2)", "verdict": False, "source": "t", "tag": "near-miss"},
    {"prediction": "The answer is 12. No wait, the answer is 15.", "gold": "15", "verdict": True, "source": "t",
     "tag": "last-answer", "kind": "completion"},
    {"prediction": "2.47", "gold": "2.5", "verdict": True, "source": "t", "tag": "rules", "rules": {"round_to": 1}},
]


def test_audit_prints_a_confusion_matrix_per_grader(tmp_path, capsys):
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    assert main(["verify-audit", str(path), "--show", "3"]) == 0
    out = capsys.readouterr().out
    assert "6 cases" in out and "(1 completions)" in out
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        r"^(rlvr|math-verify|qwen-style)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)%.*?(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+$",
        out, re.M)}
    assert set(rows) == {"rlvr", "math-verify", "qwen-style"}
    tp, fp, tn, fn, agree, near_miss_fp, timeouts, errors = rows["rlvr"]
    assert (tp, fp, tn, fn, agree, near_miss_fp, timeouts, errors) == ("4", "0", "2", "0", "100.0", "0", "0", "0")
    for name in ("math-verify", "qwen-style"):  # every case lands in exactly one cell
        assert sum(int(x) for x in rows[name][:4]) == len(CASES)
    assert "rlvr: 0 disagreements" in out and re.search(r"qwen-style: \d+ disagreements", out)


def test_audit_counts_timeouts_and_errors_apart():
    assert _call("slow", lambda case: time.sleep(5), {}, 0.2) == (False, "timeout")
    assert _call("broken", lambda case: 1 / 0, {}, 1.0) == (False, "error")
    assert _call("fine", lambda case: True, {}, 1.0) == (True, "ok")


def test_bad_case_files_are_refused_with_file_and_line(tmp_path, capsys):
    assert main(["verify-audit", str(tmp_path / "missing.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(CASES[0]) + "\n" + json.dumps({"prediction": "1", "gold": "1"}) + "\n")
    assert main(["verify-audit", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "verdict" in err


def test_default_case_file_is_the_shipped_fixture():
    """`rlvr verify-audit` without a path audits the 686 labelled cases in tests/fixtures (a module moved into a
    room once pointed one directory too shallow)."""
    from pathlib import Path

    from cluster.eval.verify_audit import DEFAULT_CASES, load_cases

    assert DEFAULT_CASES == Path(__file__).resolve().parent / "fixtures" / "verifier_cases.jsonl"
    assert len(load_cases(DEFAULT_CASES)) == 686
