"""Dataset loaders on the in-repo fixtures (real records excerpted from each dataset; counts from the fixtures'
MANIFEST.json), gold formats, bad-record handling, the data root and its errors, parquet, the HF path and the
registry's errors."""

import gzip
import json
import re
import shutil

import pytest
from pydantic import ValidationError

from cluster.data.loaders import load_problems, number_gold
from cluster.data.problem import DatasetError
from cluster.data.registry import BUILTIN_FILES
from cluster.data.root import data_root
from cluster.data.spec import DatasetSpec

DATA = data_root()  # tests/fixtures/data (tests/conftest.py)
MANIFEST = json.loads((DATA / "MANIFEST.json").read_text())

# (name, split, file): splits that are a whole file, so their size is the file's record count.
WHOLE_FILES = [
    ("gsm8k", "test", "gsm8k/test.jsonl"), ("gsm8k", "train", "gsm8k/train.jsonl"),
    ("math500", "test", "math500/test.jsonl"), ("math", "test", "math/test.jsonl"),
    ("aime24", "test", "aime24/test.jsonl"), ("aime25", "test", "aime25/test.jsonl"),
    ("amc23", "test", "amc23/test.jsonl"), ("deepscaler", "aime_train", "deepscaler/aime_train.jsonl"),
    ("deepscaler", "amc_test", "deepscaler/amc_test.jsonl"), ("humaneval", "test", "humaneval/HumanEval.jsonl.gz"),
    ("humaneval_plus", "test", "humaneval_plus/HumanEvalPlus-v0.1.10.jsonl.gz"), ("mbpp", "all", "mbpp/mbpp.jsonl"),
    ("mbpp_sanitized", "all", "mbpp/sanitized-mbpp.json"), ("mbpp_plus", "test", "mbpp_plus/MbppPlus-v0.2.0.jsonl.gz"),
    ("countdown", "train", "countdown/countdown_3to4_train.jsonl.gz"),
    ("countdown", "test", "countdown/countdown_3to4_test.jsonl.gz"),
    ("countdown", "test_4to6", "countdown/countdown_4to6_test.jsonl.gz"),
]


def load(name, split="test", **kw):
    return load_problems(DatasetSpec(name=name, split=split, **kw))


@pytest.mark.parametrize("name,split,path", WHOLE_FILES)
def test_builtin_split_has_every_record_of_its_file(name, split, path):
    ds = load(name, split)
    assert len(ds.problems) == MANIFEST[path] and ds.skipped == []
    assert len({p.id for p in ds.problems}) == len(ds.problems), "ids must be unique"
    assert all(p.prompt.strip() and p.gold.strip() and p.source == f"{name}/{split}" for p in ds.problems)


def test_every_registered_builtin_is_covered_by_the_count_test():
    builtin = {(n, s) for n, files in BUILTIN_FILES.items() for s in files}
    covered = {(n, s) for n, s, _ in WHOLE_FILES} | {("deepscaler", "math_train")}
    assert builtin - covered == {("mbpp", s) for s in ("test", "train", "validation", "prompt")}


def test_deepscaler_math_train_has_four_records_without_gold():
    # The fixture keeps the 4 records of the full file without gold (its lines 887, 1010: null; 5329, 5331: '')
    # after 20 good ones.
    with pytest.raises(DatasetError, match=r"math_train\.jsonl:21: field 'answer' is null.*on_bad_record='skip'"):
        load("deepscaler", "math_train")
    ds = load("deepscaler", "math_train", on_bad_record="skip")
    assert len(ds.problems) == MANIFEST["deepscaler/math_train.jsonl"] - 4
    assert [s.rsplit(":", 2)[-2] for s in ds.skipped] == ["21", "22", "23", "24"]
    assert [s.rsplit(": ", 1)[-1] for s in ds.skipped] == ["field 'answer' is null"] * 2 + ["empty gold answer"] * 2


# The fixture holds task ids 1-2, 9-40, 509-512, 599-606, 973-974: both sides of each split boundary.
@pytest.mark.parametrize("split,ids", [("prompt", [1, 2, 9, 10]), ("test", [*range(11, 41), 509, 510]),
                                       ("validation", [511, 512, 599, 600]), ("train", [*range(601, 607), 973, 974])])
def test_mbpp_splits_follow_task_id_ranges(split, ids):
    assert [p.meta["task_id"] for p in load("mbpp", split).problems] == ids


def test_gsm8k_gold_is_the_number_after_hashes_without_commas():
    ds = load("gsm8k", "test")
    assert ds.problems[0].gold == "18"
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", p.gold) for p in ds.problems)
    with_comma = [p for p in ds.problems if "," in p.meta["solution"].rsplit("####", 1)[1]]
    assert with_comma and all(p.gold.replace(",", "") == p.gold for p in with_comma)


def test_math_gold_is_last_boxed_and_agrees_with_math500_answers():
    math = {p.prompt: p for p in load("math").problems}
    m500 = load("math500").problems
    assert all(p.prompt in math for p in m500)  # SOURCES.md: MATH-500 is a subset of MATH test
    same = sum(math[p.prompt].gold == p.gold for p in m500)
    assert same >= 0.96 * len(m500), f"only {same}/{len(m500)} MATH golds equal the MATH-500 answer field"


def test_aime_and_amc_golds_are_canonical_integers():
    aime24 = load("aime24").problems
    assert all(re.fullmatch(r"0|[1-9]\d{0,2}", p.gold) for p in aime24)
    padded = [p.gold for p in aime24 if p.meta["raw_answer"].startswith("0")]
    assert padded == ["25", "73", "23", "45", "33", "80", "55"]
    aime25 = [p.gold for p in load("aime25").problems]
    assert aime25 == ("70 588 16 117 279 504 821 77 62 81 259 510 204 60 735 468 49 82 106 336 293 237 610 149 907 "
                      "113 19 248 104 240").split()
    amc = load("amc23").problems
    assert amc[0].gold == "27" and amc[0].meta["raw_answer"] == 27.0
    assert all(float(p.gold) == p.meta["raw_answer"] and "." not in p.gold for p in amc)


@pytest.mark.parametrize("raw,gold", [(27.0, "27"), ("025", "25"), (0.5, "0.5"), ("-3", "-3"), ("1e3", "1000"),
                                      ("12345678901234567890", "12345678901234567890"),
                                      ("\\frac{1}{2}", "\\frac{1}{2}")])
def test_number_gold_canonicalises_numbers_exactly(raw, gold):
    assert number_gold(raw) == gold


def test_countdown_reference_answer_uses_the_numbers_and_hits_the_target():
    for p in load("countdown", "test_4to6").problems[:200]:
        used = sorted(int(t) for t in re.findall(r"\d+", p.gold))
        assert used == sorted(p.meta["nums"]) and p.kind == "countdown"
        assert abs(eval(p.gold, {"__builtins__": {}}) - p.meta["target"]) < 1e-9  # our own data, not model output


def test_reward_gold_scores_the_reference_answers_with_the_real_verifiers():
    from rewards.countdown import score as countdown_score
    from rewards.math import score as math_score

    for p in load("countdown", "test").problems[:20]:
        assert p.reward_gold == {"nums": p.meta["nums"], "target": p.meta["target"]}
        assert countdown_score(f"<answer>{p.gold}</answer>", **p.reward_gold) == 1.0
    for name in ("gsm8k", "aime24", "amc23", "math500"):
        for p in load(name, limit=10).problems:
            assert p.reward_gold == p.gold and math_score(f"so \\boxed{{{p.gold}}}", p.reward_gold) == 1.0, p.id


def test_code_problems_carry_runnable_tests():
    he = load("humaneval").problems[0]
    assert he.kind == "code" and he.gold.rstrip().endswith("check(has_close_elements)")
    assert he.prompt.endswith('"""\n'), "code prompts are kept verbatim"
    mb = load("mbpp", "test").problems[0]
    assert mb.gold.lstrip().startswith("assert remove_Occ(") and "Your code should pass these tests" in mb.prompt


@pytest.mark.parametrize("name,index", [("humaneval", 2), ("mbpp", 0), ("humaneval_plus", 2), ("mbpp_plus", 0)])
def test_code_gold_passes_the_reference_and_fails_a_wrong_solution(name, index):
    from rewards.code import run_tests  # the real sandbox the reward uses

    p = load(name, "test").problems[index]
    ref = p.meta.get("code") or p.meta["canonical_solution"]
    program = p.prompt + ref if name.startswith("humaneval") else ref
    ok = run_tests(program, p.gold, timeout_s=30)
    assert ok.passed, ok.output
    entry = p.meta.get("entry_point") or re.search(r"def (\w+)", ref).group(1)
    wrong = program + f"\n\n_orig = {entry}\ndef {entry}(*a):\n    r = _orig(*a)\n    return [r, r]\n"
    bad = run_tests(wrong, p.gold, timeout_s=30)
    assert not bad.passed and bad.reason == "failed", bad


# ---- bad records, unreadable files, data root ------------------------------------------------


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = json.dumps({"q": "1+1?", "a": "2"})


@pytest.mark.parametrize("line,reason", [
    ('{"q": "x", "a": ', "malformed JSON"),
    (json.dumps({"q": "x"}), "missing field 'a'"),
    (json.dumps({"q": "x", "a": "  "}), "empty gold answer"),
    (json.dumps({"q": "", "a": "3"}), "empty prompt"),
    ("[1, 2]", "line is list, not object"),
])
def test_bad_record_error_names_file_and_line(tmp_path, line, reason):
    path = write_lines(tmp_path / "d.jsonl", [GOOD, "", line, GOOD])
    spec = dict(name="jsonl", path=str(path), kind="math", fields={"prompt": "q", "answer": "a"})
    with pytest.raises(DatasetError, match=re.escape(f"{path}:3: {reason}")):
        load_problems(DatasetSpec(**spec))
    ds = load_problems(DatasetSpec(**spec, on_bad_record="skip"))
    assert [p.gold for p in ds.problems] == ["2", "2"] and len(ds.skipped) == 1 and reason in ds.skipped[0]


def test_mbpp_split_filter_reports_a_bad_task_id(tmp_path):
    rec = json.loads((DATA / "mbpp" / "mbpp.jsonl").open().readline())
    path = write_lines(tmp_path / "m.jsonl", [json.dumps({**rec, "task_id": 11}), json.dumps({**rec, "task_id": "x"})])
    with pytest.raises(DatasetError, match=r"m.jsonl:2: task_id='x' is not an integer"):
        load("mbpp", "test", path=str(path))
    assert [p.id for p in load("mbpp", "test", path=str(path), on_bad_record="skip").problems] == ["mbpp/11"]


def test_generic_jsonl_maps_fields_formats_and_keeps_the_rest_as_meta(tmp_path):
    rows = [{"id": "a", "question": "Q1", "solution": "so #### 1,000", "extra": 7},
            {"id": "b", "question": "Q2", "solution": "so #### 5"}]
    path = write_lines(tmp_path / "g.jsonl", [json.dumps(r) for r in rows])
    ds = load_problems(DatasetSpec(name="jsonl", path=str(path), kind="math", answer_format="gsm8k",
                                   fields={"prompt": "question", "answer": "solution", "id": "id"}))
    assert [(p.id, p.gold) for p in ds.problems] == [("a", "1000"), ("b", "5")]
    assert ds.problems[0].meta == {"extra": 7} and ds.problems[0].source == "g"


def test_boxed_answer_format_and_limit(tmp_path):
    rows = [{"p": f"P{i}", "s": f"so \\boxed{{\\frac{{{i}}}{{2}}}} done"} for i in range(5)]
    path = write_lines(tmp_path / "b.jsonl", [json.dumps(r) for r in rows])
    ds = load_problems(DatasetSpec(name="jsonl", path=str(path), kind="math", answer_format="boxed", limit=3,
                                   fields={"prompt": "p", "answer": "s"}))
    assert [p.gold for p in ds.problems] == ["\\frac{0}{2}", "\\frac{1}{2}", "\\frac{2}{2}"]


def test_unreadable_files_fail_with_the_path(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DatasetError, match=re.escape(str(missing))):
        load_problems(DatasetSpec(name="jsonl", path=str(missing), kind="math", fields={"prompt": "q", "answer": "a"}))
    corrupt = tmp_path / "c.jsonl.gz"
    corrupt.write_bytes(gzip.compress((GOOD + "\n").encode() * 50)[:40])
    with pytest.raises(DatasetError, match="cannot read dataset file .*c.jsonl.gz"):
        load_problems(DatasetSpec(name="jsonl", path=str(corrupt), kind="math", fields={"prompt": "q", "answer": "a"}))
    with pytest.raises(DatasetError, match="yielded no problems"):
        load_problems(DatasetSpec(name="jsonl", path=str(write_lines(tmp_path / "e.jsonl", [""])), kind="math",
                                  fields={"prompt": "q", "answer": "a"}))


def test_data_root_comes_from_spec_then_env(tmp_path, monkeypatch):
    (tmp_path / "aime25").mkdir()
    write_lines(tmp_path / "aime25" / "test.jsonl", [json.dumps({"question": "Q", "answer": "007"})])
    monkeypatch.setenv("RLVR_DATA_DIR", str(tmp_path))
    assert [p.gold for p in load("aime25").problems] == ["7"]
    monkeypatch.setenv("RLVR_DATA_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetError, match="elsewhere/aime25/test.jsonl"):
        load("aime25")
    assert len(load("aime25", data_dir=str(DATA)).problems) == 30


def test_absent_dataset_error_names_the_three_ways_to_provide_it(tmp_path, monkeypatch):
    ways = r"\$RLVR_DATA_DIR or dataset.data_dir.*name: jsonl, path: FILE.jsonl or FILE.parquet.*name: hf, path: HUB_ID"
    monkeypatch.delenv("RLVR_DATA_DIR")
    with pytest.raises(DatasetError, match=r"'gsm8k' split 'test': no data root is set .*gsm8k/test.jsonl.*" + ways):
        load("gsm8k")
    monkeypatch.setenv("RLVR_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match=re.escape(f"{tmp_path}/math500/test.jsonl does not exist") + ".*" + ways):
        load("math500")


def test_local_parquet_file_loads_like_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"q": "1+1?", "a": "2", "n": 1}, {"q": "2+3?", "a": "5", "n": 2}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    ds = load_problems(DatasetSpec(name="jsonl", path=str(tmp_path / "d.parquet"), kind="math",
                                   fields={"prompt": "q", "answer": "a"}))
    assert [(p.prompt, p.gold, p.meta) for p in ds.problems] == [("1+1?", "2", {"n": 1}), ("2+3?", "5", {"n": 2})]
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match="cannot read dataset file .*bad.parquet"):
        load_problems(DatasetSpec(name="jsonl", path=str(tmp_path / "bad.parquet"), kind="math",
                                  fields={"prompt": "q", "answer": "a"}))


def test_hf_path_goes_through_datasets_load_dataset(tmp_path):
    src = DATA / "gsm8k" / "test.jsonl"
    local = tmp_path / "gsm.jsonl"
    shutil.copy(src, local)
    ds = load_problems(DatasetSpec(name="hf", path="json", data_files=str(local), split="train", kind="math",
                                   answer_format="gsm8k", fields={"prompt": "question", "answer": "answer"}, limit=50))
    ref = load("gsm8k").problems[:50]
    assert [(p.prompt, p.gold) for p in ds.problems] == [(p.prompt, p.gold) for p in ref]
    with pytest.raises(DatasetError, match=r"datasets.load_dataset\('json'.*failed"):
        load_problems(DatasetSpec(name="hf", path="json", data_files=str(tmp_path / "absent.jsonl"), kind="math",
                                  fields={"prompt": "q", "answer": "a"}))


def test_hf_bad_row_is_reported_by_row_number(tmp_path):
    path = write_lines(tmp_path / "h.jsonl", [GOOD, json.dumps({"q": "x", "a": ""})])
    with pytest.raises(DatasetError, match=r"hf:json\[train\]:2: empty gold answer"):
        load_problems(DatasetSpec(name="hf", path="json", data_files=str(path), split="train", kind="math",
                                  fields={"prompt": "q", "answer": "a"}))


# ---- config errors -----------------------------------------------------------------------------


def test_unknown_name_suggests_the_closest_and_lists_valid_names():
    with pytest.raises(ValidationError, match=r"'gsm8kk' is unknown \(did you mean 'gsm8k'\?\); valid names: \["):
        DatasetSpec(name="gsm8kk")


@pytest.mark.parametrize("kw,msg", [
    (dict(name="gsm8k", split="dev"), r"split='dev' unknown; valid splits: \['test', 'train'\]"),
    (dict(name="jsonl", path="x.jsonl"), r"needs \['fields', 'kind'\]"),
    (dict(name="gsm8k", kind="math"), r"apply only to name='jsonl' or 'hf'"),
    (dict(name="jsonl", path="x", kind="math", fields={"prompt": "q"}), r"fields lacks \['answer'\]"),
    (dict(name="jsonl", path="x", kind="math", fields={"prompt": "q", "answer": "a", "gold": "g"}), "unknown roles"),
    (dict(name="gsm8k", limit=0), "limit=0"),
    (dict(name="gsm8k", splitt="test"), "Extra inputs are not permitted"),
])
def test_bad_spec_is_rejected_at_config_time(kw, msg):
    with pytest.raises(ValidationError, match=msg):
        DatasetSpec(**kw)
