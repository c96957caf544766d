"""Problem loaders: every dataset becomes a list of `Problem` (prompt, gold, kind).

Gold formats handled: GSM8K answers end with `#### <number>` (commas dropped); MATH gold is the last
`\\boxed{}` of the solution; AIME answers are zero-padded strings ("025" -> "25"); AMC answers are floats
("27.0" -> "27"); the raw value stays in `meta["raw_answer"]`. Code problems carry a test program as
gold (cluster/data/evalplus.py). Built-in datasets read their files from a data root (`dataset.data_dir`, else
$RLVR_DATA_DIR); any other file or a Hugging Face hub id goes through 'jsonl' or 'hf' (cluster/data/root.py), and
a relative `path` of your own resolves against the working directory first.

    from cluster.data.loaders import load_problems
    from cluster.data.spec import DatasetSpec
    load_problems(DatasetSpec(name="gsm8k", split="test", data_dir="tests/fixtures/data")).problems[0].gold  # '18'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from cluster.data.evalplus import differential_program
from cluster.data.problem import BadRecord, DatasetError, LoadedDataset, Problem
from cluster.data.records import read_records
from cluster.data.registry import BUILTIN_FILES, check_spec, check_split
from cluster.data.root import missing_help, resolve_path
from cluster.data.spec import DatasetSpec
from rewards.code import humaneval_tests, mbpp_tests
from rewards.math.extract import last_boxed



def require(rec: dict, key: str) -> Any:
    if key not in rec:
        raise BadRecord(f"missing field {key!r} (record has {sorted(k for k in rec if k != '_index')})")
    if rec[key] is None:
        raise BadRecord(f"field {key!r} is null")
    return rec[key]


def nonempty(value: Any, what: str = "gold answer") -> str:
    """The value as a stripped string; an empty one is a bad record."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise BadRecord(f"empty {what}")
    return text


def prompt_text(value: Any) -> str:
    """The prompt verbatim (a code prompt's trailing newline and indentation matter); must not be blank."""
    nonempty(value, "prompt")
    return str(value)


# ---- gold extraction -------------------------------------------------------------------------


def gsm8k_gold(solution: str) -> str:
    if "####" not in solution:
        raise BadRecord("answer has no '#### <number>' line")
    return nonempty(solution.rsplit("####", 1)[1].replace(",", ""))


def boxed_gold(solution: str) -> str:
    boxed = last_boxed(solution)
    if boxed is None:
        raise BadRecord("solution has no \\boxed{...} answer")
    return nonempty(boxed)


def number_gold(value: Any) -> str:
    """Numbers as canonical strings: 27.0 -> '27', '025' -> '25', 0.5 -> '0.5'; other text unchanged."""
    text = nonempty(value)
    if re.fullmatch(r"[-+]?\d+", text):
        return str(int(text))  # exact, however long
    try:
        num = float(text)
    except ValueError:
        return text
    if not math.isfinite(num):
        return text
    return str(int(num)) if num.is_integer() else repr(num)


ANSWER_FORMATS: dict[str, Callable[[str], str]] = {"plain": nonempty, "gsm8k": gsm8k_gold, "boxed": boxed_gold}

# ---- built-in datasets -----------------------------------------------------------------------

Convert = Callable[[dict, str], Problem]  # (record, source 'name/split') -> Problem


def _gsm8k(r: dict, src: str) -> Problem:
    sol = require(r, "answer")
    return Problem(f"{src}/{r['_index']}", prompt_text(require(r, "question")), gsm8k_gold(sol), "math", src,
                   {"solution": sol})


def _math500(r: dict, src: str) -> Problem:
    meta = {k: r.get(k) for k in ("subject", "level", "solution")}
    return Problem(str(require(r, "unique_id")), prompt_text(require(r, "problem")),
                   nonempty(require(r, "answer")), "math", src, meta)


def _math(r: dict, src: str) -> Problem:
    sol = require(r, "solution")
    meta = {"level": r.get("level"), "type": r.get("type"), "solution": sol}
    return Problem(f"math/{r.get('idx', r['_index'])}", prompt_text(require(r, "problem")),
                   boxed_gold(sol), "math", src, meta)


def _numeric(prompt_key: str) -> Convert:
    """AIME/AMC style: integer-like answers; keeps the raw value in meta."""

    def convert(r: dict, src: str) -> Problem:
        raw = require(r, "answer")
        meta = {"raw_answer": raw, **{k: r[k] for k in ("url", "year", "difficulty", "type") if k in r}}
        return Problem(f"{src}/{r.get('id', r['_index'])}", prompt_text(require(r, prompt_key)),
                       number_gold(raw), "math", src, meta)

    return convert


def _humaneval(r: dict, src: str) -> Problem:
    entry = require(r, "entry_point")
    nonempty(require(r, "test"), "test")
    gold = humaneval_tests(r)
    meta = {"entry_point": entry, "canonical_solution": r.get("canonical_solution")}
    return Problem(require(r, "task_id"), prompt_text(require(r, "prompt")), gold, "code", src, meta)


def _humaneval_plus(r: dict, src: str) -> Problem:
    entry, prompt = require(r, "entry_point"), prompt_text(require(r, "prompt"))
    inputs = list(require(r, "base_input")) + list(require(r, "plus_input"))
    gold = differential_program(prompt + require(r, "canonical_solution"), entry, inputs, r.get("atol", 0))
    meta = {"entry_point": entry, "canonical_solution": r["canonical_solution"], "n_inputs": len(inputs)}
    return Problem(r["task_id"], prompt, gold, "code", src, meta)


def _mbpp(r: dict, src: str) -> Problem:
    tests = require(r, "test_list")
    if not tests:
        raise BadRecord("empty test_list")
    text = prompt_text(r.get("text", r.get("prompt")))  # mbpp.jsonl: text; sanitized: prompt
    prompt = text + "\nYour code should pass these tests:\n\n" + "\n".join(tests)
    meta = {"task_id": int(r["task_id"]), "code": r.get("code"), "test_list": tests}
    return Problem(f"mbpp/{r['task_id']}", prompt, mbpp_tests(r), "code", src, meta)


def _mbpp_plus(r: dict, src: str) -> Problem:
    entry, ref = require(r, "entry_point"), require(r, "canonical_solution")
    inputs = list(require(r, "base_input")) + list(require(r, "plus_input"))
    gold = differential_program(ref, entry, inputs, r.get("atol", 0))
    meta = {"entry_point": entry, "canonical_solution": ref, "assertion": r.get("assertion"), "n_inputs": len(inputs)}
    return Problem(require(r, "task_id"), prompt_text(require(r, "prompt")), gold, "code", src, meta)


def _countdown(r: dict, src: str) -> Problem:
    nums, target = require(r, "nums"), require(r, "target")
    if not (isinstance(nums, list) and nums and all(isinstance(n, int) for n in nums)) or not isinstance(target, int):
        raise BadRecord(f"nums must be a non-empty list of ints and target an int, got nums={nums!r} target={target!r}")
    return Problem(f"{src}/{r['_index']}", prompt_text(require(r, "question")), nonempty(require(r, "answer")),
                   "countdown", src, {"nums": nums, "target": target})


def _mbpp_ids(lo: int, hi: int) -> Callable[[dict], bool]:
    def keep(r: dict) -> bool:
        try:
            return lo <= int(require(r, "task_id")) <= hi
        except ValueError:
            raise BadRecord(f"task_id={r['task_id']!r} is not an integer") from None

    return keep


@dataclass(frozen=True)
class Builtin:
    """A dataset shipped under the data root: its split -> file table, one converter, optional record filters."""

    name: str
    convert: Convert
    keep: dict[str, Callable[[dict], bool]] = field(default_factory=dict)

    def __call__(self, spec: DatasetSpec) -> LoadedDataset:
        check_split(spec)
        files = BUILTIN_FILES[self.name]
        if spec.path is not None:  # a user's own file in a built-in's format
            path = resolve(spec.path, spec)
        else:
            path = resolve_path(files[spec.split], spec.data_dir)
            if path is None or not path.exists():
                raise DatasetError(missing_help(f"dataset {spec.name!r} split {spec.split!r}",
                                                files[spec.split], spec.data_dir))
        keep = self.keep.get(spec.split, lambda r: True)
        src = f"{spec.name}/{spec.split}"
        return collect(spec, str(path), read_records(path), lambda r: self.convert(r, src) if keep(r) else None)


_CONVERTERS: dict[str, Convert] = {
    "gsm8k": _gsm8k, "math500": _math500, "math": _math, "aime24": _numeric("problem"),
    "aime25": _numeric("question"), "amc23": _numeric("problem"), "deepscaler": _numeric("problem"),
    "humaneval": _humaneval, "humaneval_plus": _humaneval_plus, "mbpp": _mbpp, "mbpp_sanitized": _mbpp,
    "mbpp_plus": _mbpp_plus, "countdown": _countdown,
}
# MBPP task-id splits (Austin et al.): 1-10 prompt, 11-510 test, 511-600 validation, 601-974 train.
_KEEP = {"mbpp": {"test": _mbpp_ids(11, 510), "train": _mbpp_ids(601, 974), "validation": _mbpp_ids(511, 600),
                  "prompt": _mbpp_ids(1, 10)}}
BUILTINS: dict[str, Builtin] = {name: Builtin(name, _CONVERTERS[name], _KEEP.get(name, {})) for name in BUILTIN_FILES}

# ---- generic sources: any local file, any HF dataset -----------------------------------------


def _mapped(spec: DatasetSpec, stem: str) -> Callable[[dict], Problem]:
    fields, fmt = spec.fields or {}, ANSWER_FORMATS[spec.answer_format]
    reward = custom_reward(spec)

    def convert(r: dict) -> Problem:
        rid = str(require(r, fields["id"])) if "id" in fields else f"{stem}/{r['_index']}"
        meta = {k: v for k, v in r.items() if k not in fields.values() and k != "_index"}
        prompt = prompt_text(require(r, fields["prompt"]))
        return Problem(rid, prompt, fmt(str(require(r, fields["answer"]))), str(spec.kind), stem, meta, reward)

    return convert


def custom_reward(spec: DatasetSpec) -> str | None:
    """kind='custom': the hook with its file made absolute, loaded once here so a broken hook fails before
    anything starts."""
    if spec.reward is None:
        return None
    from rewards.custom import RewardHookError, absolute_ref, load_hook

    try:
        ref = absolute_ref(spec.reward)
        load_hook(ref)
    except RewardHookError as e:
        raise DatasetError(f"dataset {spec.name!r} ({spec.path}): {e}") from None
    return ref


def load_jsonl(spec: DatasetSpec) -> LoadedDataset:
    path = resolve(str(spec.path), spec)
    return collect(spec, str(path), read_records(path), _mapped(spec, path.stem))


def load_hf(spec: DatasetSpec) -> LoadedDataset:
    import datasets as hf_datasets  # heavy; only this path needs it

    files = spec.data_files
    if files is not None:
        files = [str(resolve(f, spec)) for f in ([files] if isinstance(files, str) else files)]
    try:
        ds = hf_datasets.load_dataset(spec.path, name=spec.hf_subset, data_files=files, split=spec.split)
    except Exception as e:  # the library raises many types; all mean "cannot read"
        raise DatasetError(
            f"datasets.load_dataset({spec.path!r}, name={spec.hf_subset!r}, split={spec.split!r}, "
            f"data_files={files!r}) failed: {type(e).__name__}: {e}. Check dataset.path/hf_subset/split; "
            "without network use a cached dataset or name='jsonl' with a local file"
        ) from e
    rows = ((i, dict(r)) for i, r in enumerate(ds, 1))
    return collect(spec, f"hf:{spec.path}[{spec.split}]", rows, _mapped(spec, f"{spec.path}/{spec.split}"))


def load_embedded(spec: DatasetSpec) -> LoadedDataset:
    """The built-in procedural task (cluster/embedded): fixed seed, so every run sees the same held-out set."""
    from cluster.data.embedded_source import embedded_problems

    return LoadedDataset(spec.name, embedded_problems(spec, seed=0), [])


LOADERS: dict[str, Callable[[DatasetSpec], LoadedDataset]] = {**BUILTINS, "jsonl": load_jsonl, "hf": load_hf,
                                                            "embedded": load_embedded}


# ---- entry points ----------------------------------------------------------------------------


def resolve(path: str, spec: DatasetSpec) -> Path:
    """A user's file (dataset.path, data_files): absolute as is; relative against the working directory, else
    under the data root (dataset.data_dir or $RLVR_DATA_DIR); an explicit dataset.data_dir is used alone."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    root = resolve_path(path, spec.data_dir)
    if spec.data_dir and root is not None:
        return root
    here = Path.cwd() / p
    if here.exists() or (root is not None and root.exists()):
        return here if here.exists() else root
    if any(c in path for c in "*?["):  # a glob for load_dataset's data_files
        return here
    under_root = f" nor under the data root ({root})" if root is not None else " (no data root is set)"
    raise DatasetError(f"dataset {spec.name!r}: path {path!r} not found in the working directory ({here})"
                       f"{under_root}; fix dataset.path, or set dataset.data_dir / $RLVR_DATA_DIR")


def collect(spec: DatasetSpec, where: str, rows: Iterable[tuple[int, dict | BadRecord]],
            convert: Callable[[dict], Problem | None]) -> LoadedDataset:
    """Convert records in order (None: not in this split); a bad one raises DatasetError naming file and line,
    or is skipped and counted. `_index` numbers the records of the split from 0 (used for ids)."""
    problems: list[Problem] = []
    skipped: list[str] = []
    for line, rec in rows:
        try:
            if isinstance(rec, BadRecord):
                raise rec
            problem = convert({**rec, "_index": len(problems) + len(skipped)})
            if problem is not None:
                problems.append(replace(problem, origin=f"{where}:{line}"))
        except BadRecord as e:
            msg = f"{where}:{line}: {e}"
            if spec.on_bad_record == "error":
                raise DatasetError(f"{msg}; fix the record or set on_bad_record='skip' in this dataset's entry "
                                   "(data.train.N / data.eval.N, or datasets.N in an eval recipe)") from None
            skipped.append(msg)
        if spec.limit is not None and len(problems) >= spec.limit:
            break
    if not problems:
        raise DatasetError(f"dataset {spec.name!r} ({where}) yielded no problems (skipped {len(skipped)})")
    return LoadedDataset(spec.name, problems, skipped)


def load_problems(spec: DatasetSpec) -> LoadedDataset:
    """All problems of one dataset; raises DatasetError if it cannot be read (or a bad record, unless skipped)."""
    check_spec(spec)
    return _with_answer_rules(LOADERS[spec.name](spec), spec)


def _with_answer_rules(loaded: LoadedDataset, spec: DatasetSpec) -> LoadedDataset:
    """Math problems whose comparison is not strict carry their rules in meta["answer_rules"]."""
    from rewards.math.rules import STRICT, rules_for

    out = []
    for p in loaded.problems:
        rules = rules_for(p.prompt, p.gold, spec.round_to, spec.list_order) if p.kind == "math" else STRICT
        if rules != STRICT:
            p = replace(p, meta={**p.meta, "answer_rules": {"round_to": rules.round_to, "ordered": rules.ordered}})
        out.append(p)
    return LoadedDataset(loaded.name, out, loaded.skipped)


def load_specs(specs) -> list:
    """All problems of `specs`, in order, loaded before any actor starts so unreadable data fails fast and costs
    nothing; records skipped under on_bad_record='skip' are reported."""
    problems = []
    for spec in specs:
        loaded = load_problems(spec)
        if loaded.skipped:
            print(f"dataset {spec.name}/{spec.split}: skipped {len(loaded.skipped)} bad records "
                  f"(first: {loaded.skipped[0]})", flush=True)
        problems.extend(loaded.problems)
    return problems
