"""`calculator`: arithmetic on numbers without Python's `eval`, bounded in input, depth and magnitude.

    Calculator().run("12*(3+4)/2")   # ('42', 'ok');  "2**10**10" -> ('error: ...', 'error')

The call is parsed with `ast.parse(mode="eval")` and walked here; only number literals, + - * / // % ** and
unary +/- are accepted, so names, calls, attributes and subscripts are errors, not code. Sizes are bounded so
that no call can take long: at most `max_arg_chars` characters and MAX_NODES nodes, exponents up to
MAX_EXPONENT, and every intermediate value below MAX_ABS.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass

from tools.base import Tool, ToolError

MAX_NODES = 200
MAX_EXPONENT = 64
MAX_ABS = 10 ** 40
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _check(value):
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("result is not a finite number")
    if abs(value) > MAX_ABS:
        raise ToolError(f"intermediate value exceeds {MAX_ABS:.0e}")
    return value


def _eval(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"exponent {right} exceeds {MAX_EXPONENT}")
        try:
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        except (OverflowError, TypeError) as e:  # e.g. a complex power of a negative base
            raise ToolError(str(e)) from None
    raise ToolError(f"not arithmetic: {type(node).__name__} (allowed: numbers, + - * / // % ** and parentheses)")


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression; ToolError for anything else."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ToolError(f"cannot parse {expression.strip()[:60]!r}: {type(e).__name__}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError(f"expression has more than {MAX_NODES} parts")
    value = _eval(tree.body)
    if isinstance(value, complex):
        raise ToolError("result is not a real number")
    return value


def format_number(value: int | float) -> str:
    """Integers exactly; floats with 12 significant digits, as an integer when they are whole."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.12g}"
    return str(value)


@dataclass(frozen=True)
class Calculator(Tool):
    """Safe arithmetic; fast, so a short timeout."""

    name: str = "calculator"
    open_tag: str = "<calculator>"
    close_tag: str = "</calculator>"
    timeout_s: float = 1.0
    max_arg_chars: int = 200

    def execute(self, arg: str) -> str:
        return format_number(evaluate(arg))
