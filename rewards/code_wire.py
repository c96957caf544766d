"""The wire between the sandboxed program and the trusted checker: framed JSON of plain values only.

Both ends run as `python -c` source with this file's text in front (rewards.code builds it), so it imports
only the standard library and defines no entry point.

A frame is a 4-byte big-endian length and UTF-8 JSON. A value is a tagged list:
  ["N"] None   ["b", bool]   ["i", hex]   ["f", float.hex]   ["c", re, im]   ["s", str]   ["y", hex]
  ["l", [v...]] list   ["t", [v...]] tuple   ["d", [[k, v]...]] dict   ["S", [v...]] set   ["F", [v...]] frozenset
  ["T", name] one of the builtin types in _TYPES (tests pass `int` or `str` as arguments)
  ["h", id, type name, repr]: a handle to a non-plain object that stays in the sandbox.
`encode` accepts only exact builtin types (`type(x) is int`, never isinstance), so an int subclass or an
object with a forged `__eq__` becomes a handle, never a value. `decode` is the trusted side: whatever bytes
arrive, it builds only exact builtin types or raises WireError.
"""

import json as _json
import os as _os
import struct as _struct

MAX_FRAME = 8 << 20  # bytes; a larger frame is refused (a program cannot flood the checker)
MAX_DEPTH = 64  # nesting of containers
_TYPES = {t.__name__: t for t in (bool, bytes, complex, dict, float, frozenset, int, list, set, str, tuple)}
_DICT_LIKE = ()  # filled in by the sandbox: exact stdlib dict subclasses sent as dict (Counter, OrderedDict)


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


def encode(x, handle, depth: int = 0):
    """Tagged form of `x`; `handle(x)` returns the ["h", ...] form for anything that is not plain."""
    t = type(x)
    if depth > MAX_DEPTH:
        raise WireError(f"value nested deeper than {MAX_DEPTH}")
    if x is None:
        return ["N"]
    if t is bool:
        return ["b", x]
    if t is int:
        return ["i", hex(x)]
    if t is float:
        return ["f", float.hex(x)]
    if t is complex:
        return ["c", float.hex(x.real), float.hex(x.imag)]
    if t is str:
        return ["s", x]
    if t is bytes:
        return ["y", bytes.hex(x)]
    if t is list or t is tuple or t is set or t is frozenset:
        tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[t]
        return [tag, [encode(v, handle, depth + 1) for v in (list.copy(x) if t is list else x)]]
    if t is type and _TYPES.get(x.__name__) is x:
        return ["T", x.__name__]
    if t is dict or t in _DICT_LIKE:
        return ["d", [[encode(k, handle, depth + 1), encode(v, handle, depth + 1)] for k, v in dict.items(x)]]
    return handle(x)


_SCALARS = {"N": 1, "b": 2, "i": 2, "f": 2, "c": 3, "s": 2, "y": 2, "T": 2}


def decode(v, on_handle, depth: int = 0):
    """Exact builtin values from a tagged form; `on_handle(id, type_name, repr)` builds a handle."""
    if type(v) is not list or not v or type(v[0]) is not str or depth > MAX_DEPTH:
        raise WireError(f"not a tagged value: {str(v)[:80]}")
    tag = v[0]
    if tag in _SCALARS and len(v) != _SCALARS[tag]:
        raise WireError(f"tag {tag!r} with {len(v) - 1} fields")
    try:
        if tag == "N":
            return None
        if tag == "b" and type(v[1]) is bool:
            return v[1]
        if tag == "i" and type(v[1]) is str and len(v[1]) <= 100_000:
            return int(v[1], 16)
        if tag == "f" and type(v[1]) is str:
            return float.fromhex(v[1])
        if tag == "c" and type(v[1]) is str and type(v[2]) is str:
            return complex(float.fromhex(v[1]), float.fromhex(v[2]))
        if tag == "s" and type(v[1]) is str:
            return v[1]
        if tag == "T" and type(v[1]) is str and v[1] in _TYPES:
            return _TYPES[v[1]]
        if tag == "y" and type(v[1]) is str:
            return bytes.fromhex(v[1])
        if tag in ("l", "t", "S", "F") and len(v) == 2 and type(v[1]) is list:
            items = [decode(e, on_handle, depth + 1) for e in v[1]]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
        if tag == "d" and len(v) == 2 and type(v[1]) is list:
            pairs = [(decode(p[0], on_handle, depth + 1), decode(p[1], on_handle, depth + 1))
                     for p in v[1] if type(p) is list and len(p) == 2]
            if len(pairs) != len(v[1]):
                raise WireError("malformed dict entry")
            return dict(pairs)
        if tag == "h" and len(v) == 4 and type(v[1]) is int and type(v[2]) is str and type(v[3]) is str:
            return on_handle(v[1], v[2][:200], v[3][:200])
    except (ValueError, TypeError, OverflowError) as e:  # bad hex, unhashable set element or dict key
        raise WireError(f"bad {tag!r} value: {type(e).__name__}: {e}") from None
    raise WireError(f"unknown or malformed tag {tag!r}")
