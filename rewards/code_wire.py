"""The wire between the sandboxed program and the trusted checker: framed JSON of plain values only.

Both ends run as `python -c` source with this file's text in front (rewards.code builds it), so it imports
only the standard library and defines no entry point.

A frame is a 4-byte big-endian length and UTF-8 JSON. A value is None, a bool, an int below 2**63, a float
(NaN and infinities included), a str, or a list whose first item is a tag:
  ["l", v...] list   ["t", v...] tuple   ["S", v...] set   ["F", v...] frozenset   ["d", k, v, k, v...] dict
  ["i", hex] a larger int   ["c", re, im] complex   ["y", hex] bytes   ["T", name] one of the builtin types in
  _TYPES (tests pass `int` or `str` as arguments)   ["h", id, type name, repr] a handle to a non-plain object
  that stays in the sandbox (a str id names one of the program's globals).
`encode` accepts only exact builtin types (`type(x) is int`, never isinstance), so an int subclass or an
object with a forged `__eq__` becomes a handle, never a value. `decode` is the trusted side: whatever bytes
arrive, it builds only exact builtin types or raises WireError.
"""

import itertools as _itertools
import json as _json
import os as _os
import struct as _struct

MAX_FRAME = 128 << 20  # bytes; a larger frame is refused (a program cannot flood the checker)
MAX_DEPTH = 64  # nesting of containers
_TYPES = {t.__name__: t for t in (bool, bytes, complex, dict, float, frozenset, int, list, set, str, tuple)}
_DICT_LIKE = ()
_BIG = 1 << 63  # larger ints travel as hex: JSON readers cap decimal digits
_TAGS = {list: "l", tuple: "t", set: "S", frozenset: "F"}
_CONTAINERS = {"l": list, "t": tuple, "S": set, "F": frozenset}
_chain = _itertools.chain  # filled in by the sandbox: exact stdlib dict subclasses sent as dict (Counter, OrderedDict)


class WireError(Exception):
    """The other end sent something that is not a well-formed frame of plain values, or hung up."""


def send(fd: int, obj) -> None:
    data = _json.dumps(obj, separators=(",", ":")).encode()
    if len(data) > MAX_FRAME:
        raise WireError(f"frame of {len(data)} bytes exceeds the {MAX_FRAME}-byte limit")
    view = memoryview(_struct.pack(">I", len(data)) + data)
    while view:
        view = view[_os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes:
    parts, left = [], n
    while left:
        chunk = _os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise WireError("the other end closed the connection")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def recv(fd: int):
    (n,) = _struct.unpack(">I", _read_exact(fd, 4))
    if n > MAX_FRAME:
        raise WireError(f"frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
    try:
        return _json.loads(_read_exact(fd, n))
    except (ValueError, RecursionError) as e:
        raise WireError(f"malformed frame: {type(e).__name__}") from None


_SCALARS = {type(None), bool, int, float, str}


def _flat(items) -> bool:
    """Every item a JSON scalar that needs no tag (ints within the JSON-safe range)."""
    items = items if type(items) is list else list(items)
    kinds = set(map(type, items))
    if not kinds <= _SCALARS:
        return False
    if int not in kinds:
        return True
    ints = [v for v in items if type(v) is int] if len(kinds) > 1 else items
    return -_BIG < min(ints) and max(ints) < _BIG


def _rows(items: list):
    """The tag shared by every item if all are flat containers of one exact type (a list of tuples), else
    None: such a list is encoded and decoded at C speed instead of one call per item."""
    kinds = set(map(type, items))
    if len(kinds) != 1 or (kind := kinds.pop()) not in _TAGS or not _flat(_chain.from_iterable(items)):
        return None
    return _TAGS[kind]


def encode(x, handle, depth: int = 0):
    """JSON form of `x`; `handle(x)` returns the ["h", ...] form for anything that is not plain."""
    t = type(x)
    if depth > MAX_DEPTH:
        raise WireError(f"value nested deeper than {MAX_DEPTH}")
    if x is None or t is bool or t is float or t is str:
        return x
    if t is int:
        return x if -_BIG < x < _BIG else ["i", hex(x)]
    if t is list or t is tuple or t is set or t is frozenset:
        items = list.copy(x) if t is list else list(x)
        if _flat(items):  # the common case, at C speed: a long list of numbers or strings
            return [_TAGS[t]] + items
        if items and (row := _rows(items)):  # a list of tuples of numbers or strings
            return [_TAGS[t]] + [[row, *v] for v in items]
        return [_TAGS[t]] + [encode(v, handle, depth + 1) for v in items]
    if t is dict or t in _DICT_LIKE:
        out = ["d"]
        for k, v in dict.items(x):
            out += [encode(k, handle, depth + 1), encode(v, handle, depth + 1)]
        return out
    if t is complex:
        return ["c", x.real, x.imag]
    if t is bytes:
        return ["y", bytes.hex(x)]
    if t is type and _TYPES.get(x.__name__) is x:
        return ["T", x.__name__]
    return handle(x)


def decode(v, on_handle, depth: int = 0):
    """Exact builtin values from a JSON form; `on_handle(id, type_name, repr)` builds a handle."""
    t = type(v)
    if v is None or t is bool or t is int or t is float or t is str:
        return v
    if t is not list or not v or type(v[0]) is not str or depth > MAX_DEPTH:
        raise WireError(f"not a value: {str(v)[:80]}")
    tag, rest = v[0], v[1:]
    try:
        if tag in _CONTAINERS:
            if set(map(type, rest)) <= _SCALARS:  # JSON scalars are already exact builtin values
                return _CONTAINERS[tag](rest)
            if rest and set(map(type, rest)) == {list} and len(tags := {r[0] for r in rest if r}) == 1 and \
                    (row := _CONTAINERS.get(tags.pop())) and set(map(type, _chain.from_iterable(rest))) <= _SCALARS \
                    and all(rest):
                return _CONTAINERS[tag]([row(r[1:]) for r in rest])
            return _CONTAINERS[tag](decode(e, on_handle, depth + 1) for e in rest)
        if tag == "d" and len(rest) % 2 == 0:
            items = [decode(e, on_handle, depth + 1) for e in rest]
            return dict(zip(items[::2], items[1::2]))
        if tag == "i" and len(rest) == 1 and type(rest[0]) is str:
            return int(rest[0], 16)
        if tag == "c" and len(rest) == 2 and all(type(p) is float for p in rest):
            return complex(rest[0], rest[1])
        if tag == "y" and len(rest) == 1 and type(rest[0]) is str:
            return bytes.fromhex(rest[0])
        if tag == "T" and len(rest) == 1 and rest[0] in _TYPES:
            return _TYPES[rest[0]]
        if tag == "h" and len(rest) == 3 and type(rest[0]) in (int, str) and type(rest[1]) is str and \
                type(rest[2]) is str:
            return on_handle(rest[0], rest[1][:200], rest[2][:200])
    except (ValueError, TypeError, OverflowError) as e:  # bad hex, unhashable set element or dict key
        raise WireError(f"bad {tag!r} value: {type(e).__name__}: {e}") from None
    raise WireError(f"unknown or malformed tag {tag!r}")
