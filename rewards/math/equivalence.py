"""Mathematical equivalence of two answers: structure first (structure.py), then leaves.

Leaves are decided by the cheapest test that can decide them: equal strings, then exact rationals
(normalize.parse_number), then sympy on expressions parsed by latex2sympy2_extended. Sympy results are
exact where possible; a numeric check uses a *relative* tolerance, so `1/2004!` never equals `1/2006!`.
A decimal gold is exact unless the problem's rules say answers are rounded (rules.py): `\\frac{\\pi}{6}` is
not `0.5`. Parsed answers are cached (gold answers repeat across the samples of a group).
"""

import cmath
import functools
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction

from rewards.math.extract import gold_answer
from rewards.math.normalize import MAX_ANSWER_CHARS, normalize, parse_number
from rewards.math.rules import STRICT, Rules
from rewards.math.structure import CHOICE_WITH_TEXT_RE, is_symbol, parse_structure

_REL_TOL = 1e-9
_BASE_RE = re.compile(r"^[0-9A-F]+_\{?\d+\}?$")
_FLIP = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le", "=": "=", "\\ne": "\\ne"}
# Refuse sympy on inputs that can explode (huge exponents, factorials of big numbers, deep nesting).
_DANGER_RE = re.compile(r"\^\s*\{?\s*-?\d{4,}|\^\s*\{[^{}]*\^|\d{4,}\s*!|\\underbrace|\{{12,}")
# `1,22` against a scalar gold is a decimal comma (`1,000`, three digits, stays a thousands separator).
_DECIMAL_COMMA_RE = re.compile(r"^(-?\d+),(\d{1,2}|\d{4,})$")
# Symbolic answers are compared at points of both signs: `x` and `|x|` agree at every positive point.
_POINTS = (0.7385, -1.3172, 2.2941, -0.4518)


@functools.lru_cache(maxsize=65536)
def _normalized(answer: str) -> str:
    return normalize(gold_answer(answer))


@functools.lru_cache(maxsize=65536)
def _parsed(s: str):
    return parse_structure(s)


def _parse(answer: str):
    return _parsed(normalize(answer))


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
        syms = sorted(a.free_symbols | b.free_symbols, key=str)  # `\\sin^2 x + \\cos^2 x` has an `x` that `1` lacks
        if not syms:
            if a.is_Rational and b.is_Rational:  # exact values (999^999 evaluates to an Integer): a != b
                return False
            return _close_exact_range(sympy.N(a, 30), sympy.N(b, 30))
        # Points of both signs, each variable its own value: cheap, and they reject almost every wrong answer;
        # `\\sqrt{x^2}` differs from `x` only at negative points.
        for r in range(len(_POINTS)):
            point = {x: sympy.Float(_POINTS[(r + k) % len(_POINTS)] * (1 + 0.37 * k), 30) for k, x in enumerate(syms)}
            if not _close_exact_range(a.evalf(30, subs=point), b.evalf(30, subs=point)):
                return False
        # Equal to 1e-9 at four points: a different expression would need to agree there by chance.
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


def _rounded(value, places: int) -> Decimal | None:
    """`value` (a Fraction or a sympy number) rounded half-up to `places` decimals; None if not a finite real."""
    try:
        with localcontext() as ctx:
            ctx.prec = 60
            if isinstance(value, Fraction):
                d = Decimal(value.numerator) / Decimal(value.denominator)
            else:
                import sympy

                v = sympy.N(value, 40)
                if not v.is_real or not v.is_finite:
                    return None
                d = Decimal(str(v))
            return d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError, ValueError, OverflowError):
        return None


def _leaf_equal(p: str, g: str, rules: Rules = STRICT) -> bool:
    """Scalar leaves: strings, exact rationals, percent, then sympy; rounded only if the rules say so."""
    if p == g or p.replace(" ", "") == g.replace(" ", ""):
        return True
    places = rules.round_to
    np_, ng = _number(p), _number(g)
    if np_ is not None and ng is not None:
        return np_ == ng or (places is not None and _rounded(np_, places) == _rounded(ng, places))
    p_pct, g_pct = p.endswith("%"), g.endswith("%")
    if p_pct or g_pct:  # 50% equals 50 and 0.5
        p0, g0 = p.rstrip("%").strip(), g.rstrip("%").strip()
        if _leaf_equal(p0, g0, rules):
            return True
        scaled_p = f"\\frac{{{p0}}}{{100}}" if p_pct else p0
        scaled_g = f"\\frac{{{g0}}}{{100}}" if g_pct else g0
        return _leaf_equal(scaled_p, scaled_g, rules) if p_pct != g_pct else False
    if "\\text" in p + g or not p or not g:
        return False
    if _BASE_RE.match(p) or _BASE_RE.match(g):  # `2516_8`: a numeral in another base, compared as written
        return p.replace("{", "").replace("}", "") == g.replace("{", "").replace("}", "")
    sp, sg = _sympy(p), _sympy(g)
    if sp is None or sg is None:
        return False
    if places is not None and not sp.free_symbols and not sg.free_symbols:
        rp, rg = _rounded(sp, places), _rounded(sg, places)
        if rp is not None and rg is not None:
            return rp == rg
    return _sympy_equal(sp, sg)


def _rel_equal(p, g, rules: Rules) -> bool:
    _, pl, pop, pr = p
    _, gl, gop, gr = g
    if pop != gop:
        if _FLIP.get(pop) != gop:
            return False
        pl, pr = pr, pl
    if _leaf_equal(pl, gl, rules) and _leaf_equal(pr, gr, rules):
        return True
    if pop == "=" and _leaf_equal(pl, gr, rules) and _leaf_equal(pr, gl, rules):
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


def _bag_equal(p: tuple, g: tuple, rules: Rules, ordered: bool = False) -> bool:
    """Items matched in order, or unordered with each gold item used once."""
    if len(p) != len(g):
        return False
    if ordered:
        return all(nodes_equal(a, b, rules) for a, b in zip(p, g))
    unused = list(g)
    for item in p:
        for k, cand in enumerate(unused):
            if nodes_equal(item, cand, rules):
                del unused[k]
                break
        else:
            return False
    return True


def _assignments(items: tuple) -> bool:
    """`x=1, y=2`: named values, which match in any order."""
    return all(n[0] == "rel" and n[2] == "=" and is_symbol(n[1]) for n in items)


def _vector(node) -> tuple | None:
    """A one-row or one-column matrix as a flat tuple of leaves (a vector may be written `(1, 2)`)."""
    rows = node[1]
    if len(rows) == 1:
        return rows[0]
    return tuple(r[0] for r in rows) if all(len(r) == 1 for r in rows) else None


def _as_interval(node):
    """`x > 3` -> `(3, \\infty)`, `1 \\le x < 2` -> `[1, 2)`: a one-variable inequality as the interval it names."""
    if node[0] == "rel" and node[2] in ("<", ">", "\\le", "\\ge"):
        lhs, op, rhs = node[1], node[2], node[3]
        if is_symbol(rhs) and not is_symbol(lhs):
            lhs, op, rhs = rhs, _FLIP[op], lhs
        if not is_symbol(lhs):
            return None
        if op in (">", "\\ge"):
            return ("seq", "(" if op == ">" else "[", ")", (("expr", rhs), ("expr", "\\infty")))
        return ("seq", "(", ")" if op == "<" else "]", (("expr", "-\\infty"), ("expr", rhs)))
    if node[0] == "bag" and node[2] == "set" and len(node[1]) == 2 and all(n[0] == "rel" for n in node[1]):
        (_, lo, op1, x), (_, x2, op2, hi) = node[1]  # the chain `lo < x < hi`, split in two
        if x != x2 or not is_symbol(x) or op1 not in ("<", "\\le") or op2 not in ("<", "\\le"):
            return None
        return ("seq", "(" if op1 == "<" else "[", ")" if op2 == "<" else "]", (("expr", lo), ("expr", hi)))
    return None


def _choice_letter(node, raw: str) -> str | None:
    if node[0] == "choice":
        return node[1]
    m = CHOICE_WITH_TEXT_RE.match(raw)
    return m.group(1) if m else None


def nodes_equal(p, g, rules: Rules = STRICT) -> bool:
    """Equivalence of two parsed answers (structure.parse_structure shapes)."""
    kp, kg = p[0], g[0]
    if kg == "rel" and g[2] == "=" and is_symbol(g[1]) and kp != "rel":
        return nodes_equal(p, _parse(g[3]), rules)  # gold `x=3`, prediction `3`
    if kp == "rel" and p[2] == "=" and is_symbol(p[1]) and (kg != "rel" or not is_symbol(g[1])):
        return nodes_equal(_parse(p[3]), g, rules)  # prediction `x=3`, gold `3`
    if kp != kg:
        if kg == "seq" and (interval := _as_interval(p)):
            return nodes_equal(interval, g, rules)
        if kp == "seq" and (interval := _as_interval(g)):
            return nodes_equal(p, interval, rules)
        if kp == "bag" and kg == "seq" and p[2] == "bare" and g[1] == "(":  # `1, 2` for `(1,2)`: ordered
            return _bag_equal(p[1], g[3], rules, ordered=True)
        if kp == "seq" and kg == "bag" and g[2] == "bare" and p[1] == "(":  # `(1,2)` for the list `1, 2`
            return _bag_equal(p[3], g[1], rules, ordered=rules.ordered)
        if {kp, kg} == {"matrix", "seq"}:  # a vector written as a tuple
            m, t = (p, g) if kp == "matrix" else (g, p)
            vec, items = _vector(m), t[3]
            return t[1:3] == ("(", ")") and vec is not None and len(vec) == len(items) and all(
                n[0] == "expr" and (_leaf_equal(a, n[1], rules) if m is p else _leaf_equal(n[1], a, rules))
                for a, n in zip(vec, items))
        if {kp, kg} == {"bag", "expr"}:  # `\\{2\\}` for `2`: a one-element set
            bag, one = (p, g) if kp == "bag" else (g, p)
            return bag[2] == "set" and len(bag[1]) == 1 and (
                nodes_equal(bag[1][0], one, rules) if bag is p else nodes_equal(one, bag[1][0], rules))
        if {kp, kg} == {"choice", "text"} or {kp, kg} == {"choice", "expr"}:
            return p[1].upper().strip("()") == g[1].upper().strip("()")
        return False
    if kp == "expr":
        return _leaf_equal(p[1], g[1], rules)
    if kp in ("text", "choice"):
        return p[1] == g[1]
    if kp == "ratio":  # `12:00` is not `1:00`, and `3:4` is not `6:8` written as a ratio of parts
        return p[2] == g[2] and len(p[1]) == len(g[1]) and all(
            _number(a) is not None and _number(a) == _number(b) for a, b in zip(p[1], g[1]))
    if kp == "seq":
        return p[1] == g[1] and p[2] == g[2] and _bag_equal(p[3], g[3], rules, ordered=True)
    if kp == "bag":
        ordered = rules.ordered and p[2] == g[2] == "bare" and not (_assignments(p[1]) and _assignments(g[1]))
        return _bag_equal(p[1], g[1], rules, ordered)
    if kp == "union":
        return _bag_equal(p[1], g[1], rules)
    if kp == "matrix":
        return len(p[1]) == len(g[1]) and all(len(rp) == len(rg) and all(
            _leaf_equal(a, b, rules) for a, b in zip(rp, rg)) for rp, rg in zip(p[1], g[1]))
    if kp == "rel":
        return _rel_equal(p, g, rules)
    return False


def _decimal_comma(prediction: str, gold_node) -> str:
    """`1,22` -> `1.22` when the gold is a single number (a list cannot be its answer)."""
    m = _DECIMAL_COMMA_RE.match(prediction.replace(" ", ""))
    if m and gold_node[0] == "expr" and _number(gold_node[1]) is not None:
        return f"{m.group(1)}.{m.group(2)}"
    return prediction


def is_equivalent(prediction: str, gold: str, rules: Rules = STRICT) -> bool:
    """True iff `prediction` is mathematically the same answer as `gold` (raw answer strings; a numeric
    gold such as AMC's 27.0 is accepted too). `rules` (rules.py) relax rounding or list order for a problem."""
    if isinstance(gold, (int, float)) and not isinstance(gold, bool):
        gold = repr(gold)
    if not isinstance(prediction, str) or not isinstance(gold, str):
        raise TypeError(f"is_equivalent expects two str, got {type(prediction).__name__} and {type(gold).__name__}")
    if len(prediction) > MAX_ANSWER_CHARS * 4 or not prediction.strip() or not gold.strip():
        return False
    try:
        g_raw = _normalized(gold)
        g = _parsed(g_raw)
        p_raw = _decimal_comma(_normalized(prediction), g)
        p = _parsed(p_raw)
        if "choice" in (p[0], g[0]) and (lp := _choice_letter(p, p_raw)) and (lg := _choice_letter(g, g_raw)):
            return lp == lg  # `C. x = 42` for gold `C`
        return nodes_equal(p, g, rules)
    except RecursionError:
        return False
