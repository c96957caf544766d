"""Load every dataset of a run before any actor starts, so unreadable data fails fast and costs nothing."""
from __future__ import annotations

from cluster.datasets import load_problems


def load_specs(specs, seed: int = 0) -> list:
    """All problems of `specs`, in order; records skipped under on_bad_record='skip' are reported."""
    problems = []
    for spec in specs:
        if spec.name == "embedded":
            from cluster.embedded.dataset import embedded_problems

            problems.extend(embedded_problems(spec, seed))
            continue
        loaded = load_problems(spec)
        if loaded.skipped:
            print(f"dataset {spec.name}/{spec.split}: skipped {len(loaded.skipped)} bad records "
                  f"(first: {loaded.skipped[0]})", flush=True)
        problems.extend(loaded.problems)
    return problems
