"""What a problem allows beyond exact equality: rounding, and whether a bare list is ordered.

The verifier is strict by default: a decimal gold means that exact number, and `a, b, c` is compared in
order. A problem may relax either, and only the problem can: "to the nearest tenth" makes `2.47` right for
gold `2.5`; "enter all solutions, separated by commas" makes `-2, 1` right for gold `1, -2`. Datasets set
these per problem (cluster/data/spec.py `round_to`, `list_order`); `rules_from_prompt` reads them from a
problem's text.
"""

import re
from dataclasses import dataclass

from rewards.math.normalize import decimal_places

_PLACES = {"tenth": 1, "hundredth": 2, "thousandth": 3, "ten thousandth": 4,
           "cent": 2, "ten": -1, "hundred": -2, "thousand": -3}
_COUNT = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_NEAREST_RE = re.compile(r"nearest\s+(ten[- ]thousandth|tenth|hundredth|thousandth|cent|ten|hundred|thousand)s?\b"
                         r"|nearest\s+(?:whole|integer|dollar|percent|degree|minute|second|foot|inch|meter|unit)", re.I)
_DECIMALS_RE = re.compile(r"\b(\d|one|two|three|four|five|six)\s+decimal\s+(?:places?|digits?)", re.I)
# A problem that asks for every solution lists them in no particular order; "ordered" or an explicit order wins.
_UNORDERED_RE = re.compile(r"separated by commas|\ball\b[^.?]*\b(?:solutions|values|roots|zeros|integers|numbers|"
                           r"answers|possibilities)\b|\b(?:roots|solutions|zeros)\b", re.I)
_ORDERED_RE = re.compile(r"\bordered\b|in (?:that|this|increasing|decreasing|the same) order|"
                         r"from (?:least|smallest|greatest|largest) to", re.I)


@dataclass(frozen=True)
class Rules:
    """How one problem's answer is compared with its gold."""

    round_to: int | None = None
    """Both sides are rounded to this many decimals (negative: tens, hundreds) before comparing; None: exact."""
    ordered: bool = True
    """A bare list `a, b, c` must match in order; False when the problem asks for a set of solutions."""


STRICT = Rules()


def rounding_from_prompt(prompt: str) -> int | None:
    """Decimal places the problem asks answers to be rounded to ("nearest tenth" -> 1), or None."""
    if m := _NEAREST_RE.search(prompt):
        return _PLACES[re.sub(r"[- ]+", " ", m.group(1).lower())] if m.group(1) else 0
    if m := _DECIMALS_RE.search(prompt):
        word = m.group(1).lower()
        return int(word) if word.isdigit() else _COUNT[word]
    return None


def ordered_from_prompt(prompt: str) -> bool:
    """False when the problem asks for all solutions (their order is free), True otherwise."""
    return bool(_ORDERED_RE.search(prompt)) or not _UNORDERED_RE.search(prompt)


def rules_from_prompt(prompt: str) -> Rules:
    return Rules(round_to=rounding_from_prompt(prompt), ordered=ordered_from_prompt(prompt))


def rules_for(prompt: str, gold: str, round_to: int | str | None = None, list_order: str = "prompt") -> Rules:
    """A problem's rules from its dataset's settings (cluster/data/spec.py): `round_to` is decimals, "prompt"
    (what the problem text asks), "gold" (a decimal gold is rounded to its printed places) or None (exact);
    `list_order` is "prompt", "ordered" or "unordered"."""
    places = {"prompt": lambda: rounding_from_prompt(prompt), "gold": lambda: decimal_places(gold)}.get(
        round_to, lambda: round_to)()  # type: ignore[arg-type]
    ordered = {"ordered": True, "unordered": False}.get(list_order)
    if ordered is None:  # order is a question only for a gold that is a list
        ordered = ordered_from_prompt(prompt) if re.search(r",|;|\band\b", gold) else True
    return Rules(round_to=places, ordered=ordered)
