"""Split a normalised answer into its structure before any sympy parsing.

We read the outer shape ourselves because a general LaTeX parser guesses wrong on exactly the answers
where graders fail: `(3,1)` is an ordered pair, not the empty open interval; `1, 2` lists solutions;
`x=3` is an assignment; `\\pm 2` is two answers. Leaves stay strings and are compared by `equivalence`.

Node shapes (plain tuples, hashable so parsed gold answers can be cached):
  ("expr", s)                      a scalar expression
  ("text", s)                      words (lower-cased, spaces removed)
  ("choice", "B")                  a multiple-choice letter
  ("seq", open, close, items)      `(a,b)`, `[a,b)`, `(a,b,c)`; open/close are the bracket characters
  ("bag", items, how)              unordered: `\\{a,b\\}`, `a \\pm b` (how="set"/"pm"), bare `a, b` (how="bare")
  ("union", items)                 `A \\cup B`
  ("matrix", rows)                 rows of expression strings
  ("rel", lhs, op, rhs)            `=`, `<`, `\\le`, ... (chains are split into a bag of relations)
  ("ratio", items, suffix)         `12:00`, `3:4`, `2:30 pm`: compared part by part, never as a division
"""

import re

_OPEN, _CLOSE = "([{", ")]}"
_RELS = ("\\le", "\\ge", "\\ne", "<", ">", "=")
_CHOICE_RE = re.compile(r"^\(?\s*([A-J])\s*\)?$")
# A letter followed by its option text: `C. x = 42`, `(B) 12`, `D: 7` (only read as a choice against a choice gold).
CHOICE_WITH_TEXT_RE = re.compile(r"^\(?([A-J])(?:\)|[.:])\s*\S")
_RATIO_RE = re.compile(r"^(\d+(?:\.\d+)?(?:\s*:\s*\d+(?:\.\d+)?)+)\s*((?:[ap]\.?\s*m\.?)?)$", re.I)
_TEXT_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]*$")
_MATRIX_RE = re.compile(r"^\\begin\{([pbvB]?matrix|array)\}(?:\{[lcr|]*\})?(.*)\\end\{\1\}$", re.S)
_SYMBOL_RE = re.compile(r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?(?:\([A-Za-z]\))?$")


def split_top(s: str, sep: str) -> list[str]:
    """Split on `sep` where no bracket is open (brackets of any kind count, so `[1,2)` nests fine)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c == "\\" and s[i + 1:i + 2] in ("{", "}"):
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif depth == 0 and s.startswith(sep, i) and not (sep[0] == "\\" and s[i + len(sep):i + len(sep) + 1].isalpha()):
            parts.append(s[start:i].strip())
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(s[start:].strip())
    return parts


def _enclosed(s: str) -> bool:
    """True if the bracket opening `s` closes only at its last character (`\\{`/`\\}` count as one)."""
    depth, i = 0, 0
    while i < len(s):
        step = 2 if s[i] == "\\" and s[i + 1:i + 2] in ("{", "}") else 1
        c = s[i + step - 1]
        depth += (c in _OPEN) - (c in _CLOSE)
        i += step
        if depth == 0 and i < len(s):
            return False
    return depth == 0


def _relation(s: str):
    for op in _RELS:
        parts = split_top(s, op)
        if len(parts) == 2 and parts[0] and parts[1] and parts[1][0] not in "=<>":
            return ("rel", parts[0], op, parts[1])
    return None


def parse_structure(s: str):
    """Structure of a normalised answer string (see module docstring)."""
    s = s.strip()
    if s[:1] in "([" and s[-1:] in ")]" and _enclosed(s) and _MATRIX_RE.match(s[1:-1].strip()):
        s = s[1:-1].strip()  # `\left(\begin{matrix}..\end{matrix}\right)`: the brackets are the matrix's
    if m := _MATRIX_RE.match(s):
        rows = [r for r in (x.strip() for x in m.group(2).split("\\\\")) if r]
        return ("matrix", tuple(tuple(c.strip() for c in r.split("&")) for r in rows))
    if m := _CHOICE_RE.match(s):
        return ("choice", m.group(1))
    if m := _RATIO_RE.match(s):
        suffix = re.sub(r"[\s.]", "", m.group(2)).lower()
        return ("ratio", tuple(p.strip() for p in m.group(1).split(":")), suffix)
    if m := re.match(r"^[A-Za-z]\s*\\in\s*(\S.*)$", s):  # `x \in [1, 2]`: the set is the answer
        s = m.group(1)
    for sep in (" \\text{ and } ", " and ", " or ", ";"):
        if len(parts := split_top(s, sep)) > 1:
            return ("bag", _flat(parse_structure(p) for p in parts if p), "bare")
    if len(parts := split_top(s, "\\cup")) > 1:
        return ("union", tuple(parse_structure(p) for p in parts))
    if len(parts := split_top(s, ",")) > 1:
        return ("bag", _flat(parse_structure(p) for p in parts if p), "bare")
    if s[:1] == "{" and s[-1:] == "}" and _enclosed(s) and len(split_top(s[1:-1], ",")) > 1:
        s = "\\{" + s[1:-1] + "\\}"  # `{1,2,3}`: a set written without escaped braces
    if s.startswith("\\{") and s.endswith("\\}") and _enclosed(s):
        inner = s[2:-2].strip()
        return ("bag", _flat(parse_structure(p) for p in split_top(inner, ",") if p), "set")
    if s[:1] in "([" and s[-1:] in ")]" and _enclosed(s):
        items = split_top(s[1:-1], ",")
        if len(items) > 1:
            return ("seq", s[0], s[-1], tuple(parse_structure(p) for p in items))
    rels = [op for op in _RELS if op in s]
    if rels:
        chain = re.split(r"(\\le|\\ge|\\ne|<|>|=)", s)
        if len(chain) > 3:  # a < x < b, or x = y = 3: the last value of an assignment chain counts
            if all(op == "=" for op in chain[1::2]):
                return ("rel", chain[0].strip(), "=", chain[-1].strip())
            return ("bag", tuple(("rel", chain[k].strip(), chain[k + 1], chain[k + 2].strip())
                                 for k in range(0, len(chain) - 2, 2)), "set")
        if rel := _relation(s):
            return rel
    if "\\pm" in s and s.count("\\pm") == 1:
        a, b = s.split("\\pm")
        a = a.strip()
        return ("bag", (("expr", f"{a}+{b}" if a else b), ("expr", f"{a}-{b}" if a else f"-{b}")), "pm")
    if _TEXT_RE.match(s) and len(s) > 1 and not _SYMBOL_RE.match(s) and "\\" not in s:
        return ("text", s.lower().replace(" ", ""))
    return ("expr", s)


def _flat(items) -> tuple:
    """Splice `a \\pm b` pairs into the enclosing list: `\\{1\\pm\\sqrt5, -2\\}` has three elements."""
    out = []
    for item in items:
        out.extend(item[1] if item[0] == "bag" and item[2] == "pm" else (item,))
    return tuple(out)


def is_symbol(s: str) -> bool:
    """A lone variable name such as `x`, `a_1`, `\\theta`, `f(x)`: the left side of an assignment."""
    return bool(_SYMBOL_RE.match(s.strip()))
