"""The embedded task as a dataset of the run: `data.train/eval: [{name: embedded, split: train|test}]`."""

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
