"""Countdown reward (TinyZero task): the final equation uses each given number exactly once, only
+ - * / and parentheses, and equals the target. The expression is parsed by a small recursive-descent
parser over exact fractions; model text is never passed to eval.
"""

import re
from fractions import Fraction

_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_TOKEN_RE = re.compile(r"\s*(\d+|[-+*/()])")
MAX_EXPR_CHARS = 200


class _Parser:
    """expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ; factor := '-'? (int | '(' expr ')').
    Unary minus is still the `-` operator (`-57 + 88` == `88 - 57`); reasoning-gym's answers use it."""

    def __init__(self, text: str):
        self.tokens, pos = [], 0
        text = text.replace("×", "*").replace("÷", "/").replace("−", "-").replace("\\times", "*").replace("\\div", "/")
        while pos < len(text.rstrip()):
            m = _TOKEN_RE.match(text, pos)
            if not m:
                raise ValueError(f"unexpected character {text[pos:pos + 1]!r}")
            self.tokens.append(m.group(1))
            pos = m.end()
        self.i, self.numbers, self.depth = 0, [], 0

    def _peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self):
        tok = self._peek()
        self.i += 1
        return tok

    def parse(self) -> Fraction:
        value = self._expr()
        if self._peek() is not None:
            raise ValueError(f"unexpected token {self._peek()!r}")
        return value

    def _expr(self) -> Fraction:
        value = self._term()
        while self._peek() in ("+", "-"):
            value = value + self._term() if self._take() == "+" else value - self._term()
        return value

    def _term(self) -> Fraction:
        value = self._factor()
        while self._peek() in ("*", "/"):
            op, rhs = self._take(), self._factor()
            if op == "/" and rhs == 0:
                raise ValueError("division by zero")
            value = value * rhs if op == "*" else value / rhs
        return value

    def _factor(self) -> Fraction:
        tok = self._take()
        if tok == "-" and self._peek() != "-":
            return -self._factor()
        if tok == "(":
            self.depth += 1
            if self.depth > 50:
                raise ValueError("nesting too deep")
            value = self._expr()
            if self._take() != ")":
                raise ValueError("missing ')'")
            self.depth -= 1
            return value
        if tok is not None and tok.isdigit():
            self.numbers.append(int(tok))
            return Fraction(int(tok))
        raise ValueError(f"expected a number or '(', got {tok!r}")


def extract_equation(completion: str) -> str | None:
    """The last `<answer>` block (TinyZero format); else the last line. `= target` at the end is dropped."""
    tags = _ANSWER_TAG_RE.findall(completion)
    text = tags[-1] if tags else (completion.strip().splitlines() or [""])[-1]
    text = text.strip().strip("$").strip()
    if "=" in text:
        text = text.split("=")[0]
    return text or None


def check_equation(equation: str, nums: list[int], target: int) -> bool:
    """True iff `equation` uses exactly the multiset `nums`, only + - * / ( ), and evaluates to `target`."""
    if len(equation) > MAX_EXPR_CHARS:
        return False
    try:
        parser = _Parser(equation)
        value = parser.parse()
    except (ValueError, ZeroDivisionError):
        return False
    return sorted(parser.numbers) == sorted(int(n) for n in nums) and value == target


def score(completion: str, nums: list[int], target: int) -> float:
    """1.0 if the completion's final equation is a valid countdown solution, else 0.0."""
    equation = extract_equation(completion)
    return float(equation is not None and check_equation(equation, nums, target))
