"""Per-call cost of the code reward (rewards.code.run_tests): wall time and CPU time, children included.

Run:  .venv/bin/python bench/bench_code_sandbox.py [N]   (default N=50; --smoke: N=5). Times N calls of a trivial program
with two asserts and prints the median and p90 wall time and the mean CPU time per call (this process and
every sandbox, checker and unshare process it started), and which sandbox wall was used.
"""

import resource
import statistics
import sys
import time

from rewards.code import run_tests, sandbox_mode

PROGRAM = "def add(a, b):\n    return a + b\n"
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"


def _cpu() -> float:
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def main(n: int) -> None:
    assert run_tests(PROGRAM, TESTS, 10).passed  # warm: mode probe, imports
    walls, cpu0 = [], _cpu()
    for _ in range(n):
        start = time.perf_counter()
        assert run_tests(PROGRAM, TESTS, 10).passed
        walls.append(time.perf_counter() - start)
    cpu = (_cpu() - cpu0) / n
    walls.sort()
    print(f"sandbox wall: {sandbox_mode()['wall']}; N={n}")
    print(f"wall per call: median {statistics.median(walls) * 1e3:.0f} ms, p90 {walls[int(0.9 * n) - 1] * 1e3:.0f} ms")
    print(f"CPU per call: {cpu * 1e3:.0f} ms")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--smoke"]
    main(int(args[0]) if args else 5 if "--smoke" in sys.argv else 50)
