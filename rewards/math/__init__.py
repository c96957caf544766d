"""Math answer verification: extract the final answer, decide equivalence with the gold answer.

Public API (used by the controller and the eval harness):
    extract_answer(completion) -> str | None
    is_equivalent(prediction, gold) -> bool
    score(completion, gold) -> float  (1.0 or 0.0)
sympy and latex2sympy2_extended are imported on first use, not here.
"""

from rewards.math.equivalence import is_equivalent
from rewards.math.extract import extract_answer


def score(completion: str, gold: str) -> float:
    """1.0 if the final answer of `completion` is equivalent to `gold`, else 0.0 (no answer scores 0.0)."""
    prediction = extract_answer(completion)
    return float(prediction is not None and is_equivalent(prediction, gold))


__all__ = ["extract_answer", "is_equivalent", "score"]
