"""A Qwen2.5-Math-style grader, written for `rlvr verify-audit` as a second opinion beside math-verify.

It follows how the Qwen2.5-Math evaluation grader is described to work, not its code: strip and normalise
both strings (spaces, `\\left`, `\\dfrac`, units, degrees, `\\$`, percent, `x =`), compare numbers with a
relative tolerance of 1e-4 (also against gold x 100 and / 100, for percentages), match choice letters,
compare tuples, intervals and matrices item by item, then fall back to sympy: equal, or the simplified
difference is zero, or equal numerically. It is deliberately lenient about rounding, as that grader is.
"""

from __future__ import annotations

import math
import re

_ANSWER_RE = re.compile(r"(?:final answer|the answer) is[:\s]*(.+)", re.I)
_UNIT_TEXT_RE = re.compile(r"(?<=[\d}])\s*\\(?:text|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}$")  # after a number only
_BRACKETS = ("(", "["), (")", "]")


def _last_boxed(text: str) -> str | None:
    i = text.rfind("\\boxed{")
    if i < 0:
        return None
    depth, start = 0, i + len("\\boxed{")
    for j in range(start - 1, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[start:j]
    return None


def extract(completion: str) -> str:
    """The last boxed answer, else what follows "the answer is", else the last number, else ''."""
    if (boxed := _last_boxed(completion)) is not None:
        return boxed
    matches = _ANSWER_RE.findall(completion)
    if matches:
        return matches[-1].strip().rstrip(".").strip("$ ")
    numbers = re.findall(r"-?\d+(?:\.\d+)?", completion.replace(",", ""))
    return numbers[-1] if numbers else ""


def strip_answer(s: str) -> str:
    """Canonical string: the normalisations the grader applies before comparing."""
    s = str(s).strip().replace("\n", "").rstrip(".")
    s = s.replace("\\!", "").replace("\\\\", "\\").replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "").replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "").strip()
    s = _UNIT_TEXT_RE.sub("", s).strip()
    s = re.sub(r"\\text\{(.*?)\}", r"\1", s)
    if re.match(r"^[a-zA-Z]\s*=", s) and len(s.split("=")[0].strip()) <= 2:
        s = s.split("=", 1)[1]
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt(\d)", r"\\sqrt{\1}", s)
    s = s.replace(" ", "")
    if re.fullmatch(r"-?\d+/\d+", s):
        num, den = s.split("/")
        s = f"\\frac{{{num}}}{{{den}}}"
    if s.startswith("."):
        s = "0" + s
    return s


def _number(s: str) -> float | None:
    s = s.replace(",", "")
    if re.fullmatch(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", s):
        return float(s)
    if m := re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", s):
        return None if m.group(3) == "0" else (-1 if m.group(1) else 1) * int(m.group(2)) / int(m.group(3))
    return None


def _split_items(inner: str) -> list[str]:
    items, depth, cur = [], 0, ""
    for c in inner:
        depth += (c in "([{") - (c in ")]}")
        if c == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += c
    return items + [cur]


def _sympy_equal(a: str, b: str) -> bool:
    import sympy
    from latex2sympy2_extended import latex2sympy

    def to_sympy(s):
        try:
            return latex2sympy(s)
        except Exception:
            return sympy.parse_expr(s.replace("^", "**"))

    try:
        x, y = to_sympy(a), to_sympy(b)
    except Exception:  # neither parser reads it: not equal, as the grader treats unparseable answers
        return False
    try:
        if x == y or sympy.simplify(x - y) == 0:
            return True
    except Exception:
        pass
    try:
        return math.isclose(complex(sympy.N(x)).real, complex(sympy.N(y)).real, rel_tol=1e-4) and \
            math.isclose(complex(sympy.N(x)).imag, complex(sympy.N(y)).imag, abs_tol=1e-9)
    except Exception:
        return False


def math_equal(prediction: str, reference: str) -> bool:
    """The grader's verdict on two answer strings."""
    p, r = strip_answer(prediction), strip_answer(reference)
    if p.lower() == r.lower():
        return True
    pn, rn = _number(p), _number(r)
    if pn is not None and rn is not None:
        return any(math.isclose(pn, ref, rel_tol=1e-4) for ref in (rn, rn / 100, rn * 100))
    if r.strip("()") in list("ABCDE") and p.strip("()")[:1] == r.strip("()"):
        return True
    matrix_re = r"\\begin\{[pb]matrix\}(.*)\\end\{[pb]matrix\}"
    if (mp := re.fullmatch(matrix_re, p)) and (mr := re.fullmatch(matrix_re, r)):
        rows_p, rows_r = mp.group(1).split("\\"), mr.group(1).split("\\")
        return len(rows_p) == len(rows_r) and all(
            len(a.split("&")) == len(b.split("&")) and all(math_equal(x, y) for x, y in zip(a.split("&"), b.split("&")))
            for a, b in zip(rows_p, rows_r))
    if p[:1] in _BRACKETS[0] and p[-1:] in _BRACKETS[1] and r[:1] in _BRACKETS[0] and r[-1:] in _BRACKETS[1]:
        ip, ir = _split_items(p[1:-1]), _split_items(r[1:-1])
        if len(ip) == len(ir) and len(ip) > 1:
            return (p[0], p[-1]) == (r[0], r[-1]) and all(math_equal(a, b) for a, b in zip(ip, ir))
    if p.count("=") == 1 and r.count("=") == 1:
        (pl, pr), (rl, rr) = p.split("="), r.split("=")
        return _sympy_equal(f"{pl}-({pr})", f"{rl}-({rr})") or _sympy_equal(f"{pl}-({pr})", f"{rr}-({rl})")
    return _sympy_equal(p, r)


def grade(prediction: str, gold: str, completion: bool = False) -> bool:
    """`prediction` is an answer, or a whole completion whose answer is extracted first."""
    return math_equal(extract(prediction) if completion else prediction, gold)
