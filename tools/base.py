"""The tool interface: how a call is written, found, run and answered.

A call is the text between `open_tag` and `close_tag` that the model writes, e.g.
`<calculator>12*(3+4)</calculator>`. Generation stops at `close_tag`; the engine hands the turn's text to
`Tool.parse`, runs `Tool.execute` on what it returns (in a thread, with `timeout_s`), and appends
`observation(result)` as tokens that the model did not write (loss mask 0).

Your own tool: subclass `Tool`, set `name`, tags and `timeout_s`, implement `execute(arg) -> str` (raise
`ToolError` for an answer the model should see as an error), and register it in `tools.registry.TOOLS`.
A Tool must pickle (it travels to the engine actors): keep state out of it, or make it re-creatable.
"""

from __future__ import annotations

from dataclasses import dataclass


class ToolError(Exception):
    """The call was understood but failed (bad syntax, division by zero, a raising program): the model sees the
    message as an error observation; the rollout goes on."""


class ToolTimeout(ToolError):
    """The tool itself gave up on a call that ran too long (e.g. the sandbox killed the program)."""


@dataclass(frozen=True)
class Tool:
    """A named tool with its call syntax. Subclasses implement `execute`."""

    name: str = "tool"
    open_tag: str = "<tool>"
    close_tag: str = "</tool>"
    obs_open: str = "<output>"  # the observation is obs_open + result + obs_close
    obs_close: str = "</output>"
    timeout_s: float = 5.0  # a call still running after this long ends the wait: the observation says so
    max_arg_chars: int = 2000  # longer calls are refused without running

    def parse(self, turn_text: str) -> str | None:
        """The argument of the call that ends `turn_text` (text between the last open tag and the close tag),
        or None when the turn does not end with a call of this tool."""
        end = turn_text.rfind(self.close_tag)
        if end < 0:
            return None
        start = turn_text.rfind(self.open_tag, 0, end)
        if start < 0:
            return None
        return turn_text[start + len(self.open_tag):end]

    def execute(self, arg: str) -> str:
        raise NotImplementedError(f"tool {self.name!r}: subclasses of tools.base.Tool implement execute(arg)")

    def run(self, arg: str) -> tuple[str, str]:
        """(result text, status 'ok' | 'error' | 'timeout'); never raises. The engine also stops waiting after
        `timeout_s` (it owns the clock); ToolTimeout is for tools that enforce their own limit."""
        if len(arg) > self.max_arg_chars:
            return f"error: call of {len(arg)} characters, at most {self.max_arg_chars}", "error"
        try:
            return str(self.execute(arg)), "ok"
        except ToolTimeout as e:
            return f"timeout: {e}", "timeout"
        except ToolError as e:
            return f"error: {e}", "error"
        except Exception as e:  # a tool's own bug must not kill the rollout: the model sees an error
            return f"error: {type(e).__name__}: {e}", "error"

    def observation(self, result: str) -> str:
        return f"{self.obs_open}{result}{self.obs_close}"
