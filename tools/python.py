"""`python`: run a model-written program in the code-reward sandbox and answer with what it printed.

    PythonTool().run("print(sum(range(10)))")   # ('45', 'ok')

The program runs through `rewards.code.run_tests` with no tests, so every guarantee of the code reward applies
(rewards/sandbox.py: no network, private PID namespace and /proc, read-only mounts, rlimits, a wall-clock kill,
a scrubbed environment). A program that raises, is killed or times out becomes an error observation with its
output; where this machine has no sandbox wall (and RLVR_CODE_SANDBOX=weak is not set) every call is an error
observation saying so, never an unsandboxed run.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.base import Tool, ToolError, ToolTimeout

OUTPUT_CHARS = 1000  # of the program's output kept in the observation (the engine caps its tokens too)


@dataclass(frozen=True)
class PythonTool(Tool):
    """Runs the call's text as a Python program; the observation is its stdout and stderr."""

    name: str = "python"
    open_tag: str = "<python>"
    close_tag: str = "</python>"
    timeout_s: float = 10.0  # the engine's wait; the sandbox kills the program after `run_timeout_s`
    run_timeout_s: float = 5.0
    memory_mb: int = 512

    def execute(self, arg: str) -> str:
        from rewards.code import SandboxUnavailable, run_tests

        try:
            res = run_tests(arg, "", timeout_s=self.run_timeout_s, memory_mb=self.memory_mb)
        except SandboxUnavailable as e:
            raise ToolError(f"python is unavailable: {str(e)[:200]}") from None
        output = res.output.strip()[-OUTPUT_CHARS:]
        if res.reason == "passed":
            return output
        if res.reason == "timeout":
            raise ToolTimeout(f"the program ran past {self.run_timeout_s:g}s and was killed")
        raise ToolError(f"the program {'was killed' if res.reason == 'killed' else 'failed'}\n{output}".strip())
