"""Load every dataset of a run before any actor starts, so unreadable data fails fast and costs nothing."""
from __future__ import annotations

from cluster.datasets import load_problems


def load_specs(specs) -> list:
    """All problems of `specs`, in order; records skipped under on_bad_record='skip' are reported."""
    problems = []
    for spec in specs:
        loaded = load_problems(spec)
        if loaded.skipped:
            print(f"dataset {spec.name}/{spec.split}: skipped {len(loaded.skipped)} bad records "
                  f"(first: {loaded.skipped[0]})", flush=True)
        problems.extend(loaded.problems)
    return problems
