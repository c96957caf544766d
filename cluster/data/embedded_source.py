"""The embedded tasks as datasets of the run: `data.train/eval: [{name: embedded, split: train|test}]` (addition)
and `[{name: embedded_code, split: train|test}]` (program synthesis, cluster/embedded/code_task.py)."""

from __future__ import annotations

from cluster.data.problem import Problem
from cluster.embedded.tasks import DEFAULT_DIGITS, SPLITS, problems

DEFAULT_SIZE = {"train": 20000, "test": 500}  # problems when the spec sets no limit


def embedded_problems(spec, seed: int = 0) -> list[Problem]:
    """Addition problems of `spec.split` (train and test are disjoint by construction); gold is the sum."""
    if spec.split not in SPLITS:
        raise ValueError(f"data: embedded split={spec.split!r}: expected one of {list(SPLITS)}")
    n = spec.limit if spec.limit is not None else DEFAULT_SIZE[spec.split]
    return [Problem(id=f"embedded/{spec.split}/{i}", prompt=p.prompt, gold=str(p.answer), kind="math",
                    source=f"embedded/{spec.split}", meta={"question": p.question, "difficulty": f"{p.carries} carries"})
            for i, p in enumerate(problems(spec.split, n, seed, DEFAULT_DIGITS))]


def embedded_code_problems(spec, seed: int = 0) -> list[Problem]:
    """Program-synthesis problems of `spec.split` (all of the split when no limit); gold is the test program."""
    from cluster.embedded import code_task

    if spec.split not in code_task.SPLITS:
        raise ValueError(f"data: embedded_code split={spec.split!r}: expected one of {list(code_task.SPLITS)}")
    n = spec.limit if spec.limit is not None else len(code_task.all_problems(spec.split))
    return [Problem(id=f"embedded_code/{spec.split}/{i}", prompt=p.prompt, gold=p.tests, kind="code",
                    source=f"embedded_code/{spec.split}",
                    meta={"question": p.question, "difficulty": "borrow" if p.borrow else "no borrow"})
            for i, p in enumerate(code_task.problems(spec.split, n, seed))]
