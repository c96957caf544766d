"""YAML recipes + dotted command-line overrides -> one nested dict, and readable validation errors.

`rlvr train configs/local.yaml algo.advantage=rloo sampling.n=8` sets two leaves; values are parsed as YAML
scalars (`8` is an int, `true` a bool, `[a, b]` a list, `null` None). The schema itself lives in
cluster/config.py; this module only turns text into a dict and pydantic errors into messages a person can act on.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from cluster.config_error import ConfigError


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass a YAML recipe such as configs/local.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of `data` with each `a.b.c=value` override applied (creating missing sections)."""
    out = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r}: expected KEY.PATH=VALUE, e.g. sampling.n=8")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts):
            where = ".".join(parts[:i + 1])
            last = i == len(parts) - 1
            if isinstance(node, list):  # `data.train.0.limit=5` addresses list items by index
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"override {item!r}: {where} needs an index below {len(node)} "
                                      f"({'.'.join(parts[:i])} is a list of {len(node)} items)")
                part = int(part)
            elif not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[:i])} is a value, not a section")
            if last:
                node[part] = value
            else:
                if isinstance(node, dict) and node.get(part) is None:
                    node[part] = {}
                node = node[part]
    return out


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def format_validation_error(err, model_cls) -> str:
    """One line per problem: `key.path=value: what is wrong (allowed ...; did you mean ...?)`."""
    lines = []
    for e in err.errors():
        loc = list(e["loc"])
        path = ".".join(str(p) for p in loc)
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            parent_cls = _model_at(model_cls, loc[:-1])
            valid = sorted(parent_cls.model_fields) if parent_cls is not None else []
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f"did you mean {'.'.join(map(str, loc[:-1] + [close[0]]))!r}? " if close else ""
            lines.append(f"{path}: unknown key; {hint}valid keys here: {valid}")
            continue
        shown = repr(value) if not isinstance(value, dict) else "{...}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        lines.append(f"{path or '<root>'}={shown}: {msg}")
    return "invalid config:\n  " + "\n  ".join(lines)


def _model_at(model_cls, loc):
    """Walk the schema along `loc` to find the pydantic model that owns the last key (None if not found)."""
    from pydantic import BaseModel
    import typing

    cls = model_cls
    for part in loc:
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(str(part)) if cls is not None else None
        if field is None:
            return None
        cls = None
        candidates = [field.annotation] + list(typing.get_args(field.annotation))
        for c in candidates:
            for cc in [c] + list(typing.get_args(c)):
                if isinstance(cc, type) and issubclass(cc, BaseModel):
                    cls = cc
                    break
            if cls is not None:
                break
    return cls
