"""`rollout.tools` -> Tool instances: the built-in names, or 'module:Class' for a user's `tools.base.Tool`.

    tools = build_tools(cfg.rollout.tools)   # [Calculator(timeout_s=1.0), ...]
"""

from __future__ import annotations

import dataclasses
import importlib

from tools.base import Tool
from tools.calculator import Calculator
from tools.python import PythonTool

TOOLS = {"calculator": Calculator, "python": PythonTool}
_OVERRIDES = ("timeout_s", "open_tag", "close_tag", "obs_open", "obs_close")


def tool_class(name: str) -> type[Tool]:
    if name in TOOLS:
        return TOOLS[name]
    if ":" not in name:
        raise ValueError(f"rollout.tools name={name!r}: expected one of {sorted(TOOLS)} or 'module:Class' of a "
                         "tools.base.Tool subclass")
    module, attr = name.split(":", 1)
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"rollout.tools name={name!r}: cannot import it ({e})") from None
    if not (isinstance(cls, type) and issubclass(cls, Tool)):
        raise ValueError(f"rollout.tools name={name!r}: {cls!r} is not a subclass of tools.base.Tool")
    return cls


def build_tools(configs) -> list[Tool]:
    """One Tool per `rollout.tools` entry (actors.config.ToolConfig); set fields override the tool's defaults."""
    out = []
    for cfg in configs:
        cls = tool_class(cfg.name)
        kw = {k: getattr(cfg, k) for k in _OVERRIDES if getattr(cfg, k) is not None}
        out.append(dataclasses.replace(cls(), **kw))
    closes = [t.close_tag for t in out]
    if len(set(closes)) != len(closes):
        raise ValueError(f"rollout.tools: close tags {closes} must differ (the engine tells calls apart by them)")
    return out
