"""Final-answer extraction from a chain of thought.

`<answer>` tags win (the last pair). Otherwise the answer stated LAST wins, whichever way it is marked:
`\\boxed{}`/`\\fbox{}`, "The final answer is ...", GSM8K `#### 42`, "the answer is ...", "Answer: ..." (a
model that corrects itself, "the answer is 12 ... no, the answer is 15", means 15). A marker followed by
prose ("the answer is consistent with ...", or a word after a box: "our answer is correct") is not an answer
and is skipped. Only when asked for, the last number. A hedged answer ("3 or 4", "either 3 or 4") is refused:
rewarding it would teach the policy to hedge.
"""

import re

_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
# One alternation, so "Final Answer: The final answer is 5" yields two markers and "final answer is" one.
# "Answer:" counts as a label only at the start of a line ("check our answer: ..." is running text).
_MARKER_RE = re.compile(r"final answer\s*\**\s*(?:is|:)|####|\banswer\s+is|^[ \t>*#_]*answer\s*\**\s*:", re.I | re.M)
_PROSE_RE = re.compile(r"[A-Za-z' ,;]+")
_LAST_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_HEDGE_RE = re.compile(r"(?:^|\s|\$)(?:or|either)(?:\s|\$|$)|\\text\{\s*or\s*\}", re.I)
_TAIL_RE = re.compile(r"(?:\.\s+[A-Z(]|\.\s*$|\n|\. I hope|"
                      r",\s*(?:so|which|and|because|since|where|i\.e\.|e\.g\.|that is|meaning)\s)")
MAX_COMPLETION_CHARS = 200_000


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` (nested braces) or `\\boxed 5`; None if absent or unclosed."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = start + (6 if text.startswith("\\boxed", start) else 5)
    if text[i:i + 1] == " ":  # `\boxed 5`
        m = re.match(r"\s*([^\s$]+)", text[i:])
        return m.group(1) if m else None
    if text[i:i + 1] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j].strip()
    return None


def _clip_sentence(s: str) -> str:
    """`42. I hope it is correct.` -> `42`; `$x=3$, so ...` -> `$x=3$`; keeps decimals like `3.5`."""
    s = s.lstrip(" \t:*\n").strip()
    for opener, closer in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if s.startswith(opener):  # a math span is the answer (it may span lines); stop where it closes
            end = s.find(closer, len(opener))
            if end > 0:
                return s[: end + len(closer)]
            break
    m = _TAIL_RE.search(s)
    return (s[: m.start()] if m else s).strip()


def _clean(ans: str | None) -> str | None:
    if ans is None:
        return None
    ans = ans.strip().strip("*").strip().strip("$").strip()
    ans = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", ans).strip().rstrip(".").strip()
    bare = re.sub(r"\\text\{(?!\s*or\s*\})[^{}]*\}", "", ans)  # words inside \text{} are not hedges
    if not ans or _HEDGE_RE.search(bare):
        return None
    return ans


def extract_answer(completion: str, last_number_fallback: bool = False) -> str | None:
    """The final answer of `completion`, or None. `last_number_fallback` (off for training rewards, where
    it would reward any number that happens to come last) returns the last number if nothing else matched."""
    if not isinstance(completion, str):
        raise TypeError(f"extract_answer expects str, got {type(completion).__name__}")
    text = completion[-MAX_COMPLETION_CHARS:]
    tags = _ANSWER_TAG_RE.findall(text)
    if tags:
        inner = tags[-1]
        return _clean(last_boxed(inner) if "\\boxed" in inner or "\\fbox" in inner else inner)
    boxed_at = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    for m in reversed(list(_MARKER_RE.finditer(text))):
        if m.start() < boxed_at:
            break  # the box was written after this marker (often inside its sentence): the box is the answer
        ans = _clip_sentence(text[m.end():])
        if not ans or (_PROSE_RE.fullmatch(ans) and (len(ans.split()) >= 3 or boxed_at >= 0)):
            continue  # "the answer is consistent with", "our answer is correct": no answer; an earlier one may
        return _clean(ans)
    if boxed_at >= 0 and (boxed := last_boxed(text)) is not None:
        return _clean(boxed)
    if last_number_fallback and (nums := _LAST_NUMBER_RE.findall(text)):
        return nums[-1].replace(",", "")
    return None


def gold_answer(gold: str) -> str:
    """Gold answers arrive bare (`x^2+1`, `025`), boxed, or as a GSM8K solution ending in `#### 18`."""
    if "####" in gold:
        return gold.rsplit("####", 1)[1].strip()
    if "\\boxed" in gold or "\\fbox" in gold:
        return last_boxed(gold) or gold
    return gold.strip().strip("$").strip()
