"""Mathematical equivalence of two answers: structure first (structure.py), then leaves.

Leaves are decided by the cheapest test that can decide them: equal strings, then exact rationals
(normalize.parse_number), then sympy on expressions parsed by latex2sympy2_extended. Sympy results are
exact where possible; a numeric check uses a *relative* tolerance, so `1/2004!` never equals `1/2006!`.
Parsed answers are cached (gold answers repeat across the samples of a group).
"""

import cmath
import functools
import random
import re
from fractions import Fraction

from rewards.math.extract import gold_answer
from rewards.math.normalize import MAX_ANSWER_CHARS, decimal_places, normalize, parse_number
from rewards.math.structure import is_symbol, parse_structure

_REL_TOL = 1e-9
_BASE_RE = re.compile(r"^[0-9A-F]+_\{?\d+\}?$")
_FLIP = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le", "=": "=", "\\ne": "\\ne"}
# Refuse sympy on inputs that can explode (huge exponents, factorials of big numbers, deep nesting).
_DANGER_RE = re.compile(r"\^\s*\{?\s*-?\d{4,}|\^\s*\{[^{}]*\^|\d{4,}\s*!|\\underbrace|\{{12,}")


@functools.lru_cache(maxsize=65536)
def _parse(answer: str):
    return parse_structure(normalize(answer))


@functools.lru_cache(maxsize=65536)
def _sympy(s: str):
    """sympy value of a leaf, or None if it does not parse or is too risky to evaluate."""
    if len(s) > MAX_ANSWER_CHARS or _DANGER_RE.search(s):
        return None
    from latex2sympy2_extended import latex2sympy  # heavy: imported on first use only
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig
    try:
        value = latex2sympy(s, conversion_config=ConversionConfig(lowercase_symbols=False))
    except Exception:
        return None
    return value if hasattr(value, "free_symbols") else None


def _number(s: str) -> Fraction | None:
    return parse_number(s)


def _sympy_equal(a, b) -> bool:
    import sympy

    if isinstance(a, sympy.Set) or isinstance(b, sympy.Set):
        return isinstance(a, sympy.Set) and isinstance(b, sympy.Set) and a == b
    if getattr(a, "is_Relational", False) or getattr(b, "is_Relational", False):
        return False
    try:
        if a == b:
            return True
        if a.free_symbols != b.free_symbols:
            return False
        if not a.free_symbols:
            if a.is_Rational and b.is_Rational:  # exact values (999^999 evaluates to an Integer): a != b
                return False
            return _close_exact_range(sympy.N(a, 30), sympy.N(b, 30))
        # Random points first: cheap, and they reject almost every wrong answer before any simplify.
        syms = sorted(a.free_symbols, key=str)
        rng = random.Random(0)
        for _ in range(3):
            point = {x: sympy.Float(rng.uniform(0.3, 2.7), 30) for x in syms}
            if not _close_exact_range(a.evalf(30, subs=point), b.evalf(30, subs=point)):
                return False
        # Equal to 1e-9 at three random points: a different expression would need to agree there by chance.
        return True
    except Exception:
        return False


def _close_exact_range(x, y) -> bool:
    """`_close` for evaluated sympy numbers of any size: past ~1e308 Python floats overflow to inf, and two
    different huge values would then compare equal, so those are compared in sympy's unbounded floats."""
    import sympy

    try:
        cx, cy = complex(x), complex(y)
    except (TypeError, OverflowError):
        cx = cy = complex("inf")
    if cmath.isfinite(cx) and cmath.isfinite(cy):
        return _close(cx, cy)
    if x.has(sympy.nan) or y.has(sympy.nan):  # undefined, as `_close` treats NaN
        return False
    if x.has(sympy.oo, -sympy.oo, sympy.zoo) or y.has(sympy.oo, -sympy.oo, sympy.zoo):
        return x == y  # true infinities: equal only if identical (a == b was already tried on the exact forms)
    close = sympy.Abs(x - y) <= _REL_TOL * sympy.Max(sympy.Abs(x), sympy.Abs(y))
    return close is sympy.true


def _close(x: complex, y: complex) -> bool:
    if x != x or y != y:  # NaN
        return False
    if not (cmath.isfinite(x) and cmath.isfinite(y)):  # inf - 3 is within any relative tolerance of inf
        return x == y
    return abs(x - y) <= _REL_TOL * max(abs(x), abs(y)) or x == y


def _leaf_equal(p: str, g: str) -> bool:
    """Scalar leaves: strings, exact rationals, percent, rounded gold decimals, then sympy."""
    if p == g or p.replace(" ", "") == g.replace(" ", ""):
        return True
    np_, ng = _number(p), _number(g)
    if np_ is not None and ng is not None:
        return np_ == ng
    p_pct, g_pct = p.endswith("%"), g.endswith("%")
    if p_pct or g_pct:  # 50% equals 50 and 0.5
        p0, g0 = p.rstrip("%").strip(), g.rstrip("%").strip()
        if _leaf_equal(p0, g0):
            return True
        scaled_p = f"\\frac{{{p0}}}{{100}}" if p_pct else p0
        scaled_g = f"\\frac{{{g0}}}{{100}}" if g_pct else g0
        return _leaf_equal(scaled_p, scaled_g) if p_pct != g_pct else False
    if "\\text" in p + g or not p or not g:
        return False
    if _BASE_RE.match(p) or _BASE_RE.match(g):  # `2516_8`: a numeral in another base, compared as written
        return p.replace("{", "").replace("}", "") == g.replace("{", "").replace("}", "")
    sp, sg = _sympy(p), _sympy(g)
    if sp is None or sg is None:
        return False
    places = decimal_places(g)
    if places is not None and np_ is None and not sp.free_symbols:
        # Gold is a rounded decimal (`3.14`): an exact prediction that rounds to it is right.
        try:
            return round(float(sp), places) == float(g)
        except (TypeError, ValueError, OverflowError):
            return False
    return _sympy_equal(sp, sg)


def _rel_equal(p, g) -> bool:
    _, pl, pop, pr = p
    _, gl, gop, gr = g
    if pop != gop:
        if _FLIP.get(pop) != gop:
            return False
        pl, pr = pr, pl
    if _leaf_equal(pl, gl) and _leaf_equal(pr, gr):
        return True
    if pop == "=" and _leaf_equal(pl, gr) and _leaf_equal(pr, gl):
        return True
    if gop != "=" or is_symbol(gl):
        return False
    # Equations: equal up to a non-zero constant factor of (lhs - rhs).
    sp = [_sympy(x) for x in (pl, pr, gl, gr)]
    if any(x is None for x in sp):
        return False
    try:
        import sympy

        ratio = sympy.simplify((sp[0] - sp[1]) / (sp[2] - sp[3]))
        return bool(ratio.is_number and ratio != 0 and ratio.is_finite)
    except Exception:
        return False


def _bag_equal(p: tuple, g: tuple) -> bool:
    """Unordered match, each gold item used once."""
    if len(p) != len(g):
        return False
    unused = list(g)
    for item in p:
        for k, cand in enumerate(unused):
            if nodes_equal(item, cand):
                del unused[k]
                break
        else:
            return False
    return True


def nodes_equal(p, g) -> bool:
    """Equivalence of two parsed answers (structure.parse_structure shapes)."""
    kp, kg = p[0], g[0]
    if kg == "rel" and g[2] == "=" and is_symbol(g[1]) and kp != "rel":
        return nodes_equal(p, _parse(g[3]))  # gold `x=3`, prediction `3`
    if kp == "rel" and p[2] == "=" and is_symbol(p[1]) and (kg != "rel" or not is_symbol(g[1])):
        return nodes_equal(_parse(p[3]), g)  # prediction `x=3`, gold `3`
    if kp != kg:
        if kp == "bag" and kg == "seq" and p[2] == "bare" and g[1] == "(":  # `1, 2` for `(1,2)`: ordered
            return len(p[1]) == len(g[3]) and all(nodes_equal(a, b) for a, b in zip(p[1], g[3]))
        if kp == "seq" and kg == "bag" and g[2] == "bare" and p[1] == "(":  # `(1,2)` for solutions `1, 2`
            return _bag_equal(p[3], g[1])
        if {kp, kg} == {"choice", "text"} or {kp, kg} == {"choice", "expr"}:
            return p[1].upper().strip("()") == g[1].upper().strip("()")
        return False
    if kp == "expr":
        return _leaf_equal(p[1], g[1])
    if kp in ("text", "choice"):
        return p[1] == g[1]
    if kp == "seq":
        return p[1] == g[1] and p[2] == g[2] and len(p[3]) == len(g[3]) and all(
            nodes_equal(a, b) for a, b in zip(p[3], g[3]))
    if kp in ("bag", "union"):
        return _bag_equal(p[1], g[1])
    if kp == "matrix":
        return len(p[1]) == len(g[1]) and all(
            len(rp) == len(rg) and all(_leaf_equal(a, b) for a, b in zip(rp, rg)) for rp, rg in zip(p[1], g[1]))
    if kp == "rel":
        return _rel_equal(p, g)
    return False


def is_equivalent(prediction: str, gold: str) -> bool:
    """True iff `prediction` is mathematically the same answer as `gold` (raw answer strings; a numeric
    gold such as AMC's 27.0 is accepted too)."""
    if isinstance(gold, (int, float)) and not isinstance(gold, bool):
        gold = repr(gold)
    if not isinstance(prediction, str) or not isinstance(gold, str):
        raise TypeError(f"is_equivalent expects two str, got {type(prediction).__name__} and {type(gold).__name__}")
    if len(prediction) > MAX_ANSWER_CHARS * 4 or not prediction.strip() or not gold.strip():
        return False
    try:
        return nodes_equal(_parse(gold_answer(prediction)), _parse(gold_answer(gold)))
    except RecursionError:
        return False
