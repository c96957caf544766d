"""Math answer verification: extract the final answer, decide equivalence with the gold answer.

Public API (used by the controller and the eval harness):
    extract_answer(completion) -> str | None
    is_equivalent(prediction, gold, rules=STRICT) -> bool
    score(completion, gold) -> float  (1.0 or 0.0)
A gold is an answer string, or {"answer": str, "round_to": int | None, "ordered": bool} when the problem
relaxes the strict comparison (rules.py). sympy and latex2sympy2_extended are imported on first use, not here.
"""

from rewards.math.equivalence import is_equivalent
from rewards.math.extract import extract_answer
from rewards.math.rules import STRICT, Rules, rules_from_prompt


def score(completion: str, gold, rules: Rules = STRICT) -> float:
    """1.0 if the final answer of `completion` is equivalent to `gold`, else 0.0 (no answer scores 0.0)."""
    if isinstance(gold, dict):
        gold, rules = gold["answer"], Rules(round_to=gold.get("round_to"), ordered=gold.get("ordered", True))
    prediction = extract_answer(completion)
    return float(prediction is not None and is_equivalent(prediction, gold, rules))


__all__ = ["Rules", "STRICT", "extract_answer", "is_equivalent", "rules_from_prompt", "score"]
