"""String normalisation of math answers (prediction and gold alike) and the plain-number fast path.

Everything here is pure string work: it runs in microseconds and never calls sympy, so most answers
(integers, decimals, fractions, percentages) are decided without parsing LaTeX at all.
"""

import re
from fractions import Fraction

# Wrappers whose argument is kept as is.
_UNWRAP = ("\\text", "\\textbf", "\\textit", "\\mathrm", "\\mathbf", "\\mbox", "\\operatorname", "\\boldsymbol",
           "\\mathit", "\\textnormal", "\\rm", "\\mathcal", "\\textsf", "\\texttt")
_DROP = ("\\displaystyle", "\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big", "\\Big",
         "\\!", "\\,", "\\;", "\\:", "\\quad", "\\qquad", "$", "\\(", "\\)", "\\[", "\\]")
# Units removed only when they follow a number (bare words may be answers or variables).
_UNITS = (
    "square units|square feet|square inches|square meters|square centimeters|sq units|units|unit|cm|mm|km|m|"
    "meters|meter|metres|inches|inch|feet|foot|ft|miles|mile|mph|yards|yard|hours|hour|hrs|minutes|minute|min|"
    "seconds|second|sec|s|days|day|weeks|years|year|dollars|dollar|cents|cent|degrees|degree|deg|pounds|pound|"
    "lbs|ounces|oz|grams|gram|g|kg|liters|liter|l|ml|gallons|people|students|ways|times|points|sq|cubic|units\\^2")
_UNIT_RE = re.compile(r"(?<=[\d}.])\s*(?:\\text\{|\\mbox\{|\\mathrm\{)?\s*(?:" + _UNITS + r")(?:\^\{?[23]\}?)?\s*\}?"
                      r"(?:\^\{?[23]\}?)?\s*$", re.IGNORECASE)
# A trailing `\text{words}` after a number names what is counted (`5 \text{apples}`, `12 \text{ dozen eggs}`).
_TRAILING_WORDS_RE = re.compile(r"(?<=[\d}.%])\s*\\(?:text|mbox|mathrm|textnormal)\{\s*[A-Za-z][A-Za-z .'\-]*\}"
                                r"\s*\.?\s*$")
_PLAIN_WORDS_RE = re.compile(r"^(-?\d[\d,]*(?:\.\d+)?)\s+([a-z]{2,}(?:\s+[a-z]{2,}){0,2})\.?$")  # `5 apples`
# Words that keep the number part of an expression: `10 pi`, `3 and 4`, `2 sqrt 3` are not counts of things.
_NOT_NOUNS = {"and", "or", "to", "by", "plus", "minus", "over", "times", "of", "divided", "out", "pi", "sqrt", "ln",
              "log", "sin", "cos", "tan", "cot", "sec", "csc", "exp", "inf", "infinity", "choose", "mod", "percent"}
_WORDS = {"\\pi": "\\pi ", "\\infty": "\\infty ", "\\cdot": "\\cdot ", "\\times": "\\times "}
_NUM = r"-?(?:\d+(?:\.\d*)?|\.\d+)"
_NUM_RE = re.compile(rf"^({_NUM})(?:[eE]([-+]?\d+)|\s*(?:\\times|\\cdot|\*|x)\s*10\^\{{?([-+]?\d+)\}}?)?$")
_FRAC_RE = re.compile(r"^(-?)\\frac\{?(\d+)\}?\{?(\d+)\}?$")
_FRAC_TIGHT_RE = re.compile(r"^(-?)\\frac(\d)(\d)$")
_SLASH_RE = re.compile(r"^(-?\d+)/(\d+)$")
_MIXED_RE = re.compile(r"^(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$")
_MIXED_SLASH_RE = re.compile(r"^(-?)(\d+)\s+(\d+)/(\d+)$")  # `3128 1/2`, read before spaces are dropped
_REPEAT_RE = re.compile(r"^(-?)(\d*)\.(\d*)\\overline\{(\d+)\}$")
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
MAX_ANSWER_CHARS = 400


def _unwrap_commands(s: str) -> str:
    """`\\text{abc}` -> `abc` for the wrappers in _UNWRAP (nested braces respected)."""
    for cmd in _UNWRAP:
        start = 0
        while (i := s.find(cmd + "{", start)) != -1:
            depth, j = 0, i + len(cmd)
            while j < len(s):
                depth += {"{": 1, "}": -1}.get(s[j], 0)
                if depth == 0:
                    break
                j += 1
            if j >= len(s):  # unbalanced: leave the rest alone
                break
            s = s[:i] + s[i + len(cmd) + 1:j] + s[j + 1:]
            start = i
    return s


def _sqrt_parens(s: str) -> str:
    """Plain-text `sqrt(2)` -> `\\sqrt{2}` (balanced parentheses)."""
    while (i := s.find("sqrt(")) != -1 and (i == 0 or s[i - 1] != "\\"):
        depth, j = 0, i + 4
        while j < len(s):
            depth += {"(": 1, ")": -1}.get(s[j], 0)
            if depth == 0:
                break
            j += 1
        if j >= len(s):
            break
        s = s[:i] + "\\sqrt{" + s[i + 5:j] + "}" + s[j + 1:]
    return s


def normalize(s: str) -> str:
    """Canonical LaTeX-ish string: no `$`, spacing commands, `\\left`, `\\text` wrappers, units, degree
    signs or trailing punctuation; `\\dfrac` -> `\\frac`; thousands separators removed."""
    s = s.strip()
    if len(s) > MAX_ANSWER_CHARS * 4:
        return s[: MAX_ANSWER_CHARS * 4]
    s = re.sub(r"(?<!\\)\\+$", "", s).strip()  # a stray trailing backslash (`5\`) left by extraction
    s = re.sub(r"(\d),\\!\s*(?=\d)", r"\1", s)  # `56,\!01,\!78`: MATH's digit grouping, not a list
    s = _TRAILING_WORDS_RE.sub("", s)
    if (m := _PLAIN_WORDS_RE.match(s)) and not _NOT_NOUNS & set(m.group(2).split()):
        s = m.group(1)
    if s in ("oo", "-oo"):  # sympy's spelling
        s = s.replace("oo", "\\infty")
    s = re.sub(r"\\overline\s*(\d)", r"\\overline{\1}", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\dbinom", "\\binom")
    s = s.replace("\\tbinom", "\\binom").replace("{,}", "").replace("\\%", "%").replace("\\$", "")
    s = s.replace("−", "-").replace("–", "-").replace("×", "\\times ").replace("÷", "\\div ").replace("π", "\\pi ")
    s = s.replace("√", "\\sqrt").replace("∞", "\\infty ").replace("≤", "\\le ").replace("≥", "\\ge ")
    s = s.replace("∪", "\\cup ").replace("±", "\\pm ").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    s = s.replace("\\lt", "<").replace("\\gt", ">").replace("\\neq", "\\ne").replace("\\mid", "|")
    s = re.sub(r"\\varnothing|\\\{\s*\\\}", r"\\emptyset", s).replace("\\mathbb{R}", "(-\\infty,\\infty)")
    s = s.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}").replace("\\langle", "(").replace("\\rangle", ")")
    s = re.sub(r"\^\s*\{?\\circ\}?|°|\\degree|\^\{\\text\{o\}\}", "", s)
    s = _unwrap_commands(s)
    for token in _DROP:
        s = s.replace(token, " " if token.startswith("\\") and token[1:].isalpha() else "")
    s = re.sub(r"(?<!\\)\\ ", " ", s)  # `\ ` spacing, but not the `\\` row break before a space
    s = re.sub(r"\\sqrt\s*(\d)", r"\\sqrt{\1}", s)
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = s.replace("\\{", "\x00").replace("\\}", "\x01")
    s = _UNIT_RE.sub("", s.strip())
    s = s.replace("\x00", "\\{").replace("\x01", "\\}")
    s = re.sub(r"(?<![\\a-zA-Z])pi(?![a-zA-Z])", r"\\pi ", s)
    s = _sqrt_parens(s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").rstrip()
    if s.endswith("%"):
        s = s[:-1].rstrip() + "%"
    if _THOUSANDS_RE.match(s.replace(" ", "")):
        s = s.replace(",", "").replace(" ", "")
    return s


def parse_number(s: str) -> Fraction | None:
    """Exact value of a plain number: 12, -0.5, 1.5e3, 1.5\\times10^{3}, \\frac{3}{4}, 3/4, 3\\frac{1}{2}, 3 1/2,
    0.\\overline{3}, 025, 27.0. Percent is not handled here. None if `s` is anything else."""
    if m := _MIXED_SLASH_RE.match(s.strip()):
        if int(m.group(4)) == 0:
            return None
        value = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
        return -value if m.group(1) else value
    s = s.replace(" ", "").replace("{}", "")
    if s.startswith("+"):
        s = s[1:]
    if m := _NUM_RE.match(s):
        value = Fraction(m.group(1))
        exp = m.group(2) or m.group(3)
        if exp is not None:
            if abs(int(exp)) > 400:
                return None
            value *= Fraction(10) ** int(exp)
        return value
    if (m := _FRAC_RE.match(s)) or (m := _FRAC_TIGHT_RE.match(s)):
        return None if int(m.group(3)) == 0 else (-1 if m.group(1) else 1) * Fraction(int(m.group(2)), int(m.group(3)))
    if m := _SLASH_RE.match(s):
        return None if int(m.group(2)) == 0 else Fraction(int(m.group(1)), int(m.group(2)))
    if m := _MIXED_RE.match(s):
        if int(m.group(4)) == 0:
            return None
        value = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
        return -value if m.group(1) else value
    if m := _REPEAT_RE.match(s):
        sign, whole, fixed, rep = m.groups()
        value = Fraction(int(whole or 0)) + Fraction(int(fixed or 0), 10 ** len(fixed))
        value += Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
        return -value if sign else value
    return None


def decimal_places(s: str) -> int | None:
    """Number of decimals of a plain decimal literal (`3.14` -> 2), else None."""
    m = re.fullmatch(r"-?\d*\.(\d+)", s.strip())
    return len(m.group(1)) if m else None
