"""Cost of the code reward, alone and in the RL loop: per-call overhead, and programs/s through the verifier pool.

Run:  .venv/bin/python bench/bench_code_sandbox.py [N]   (default N=50; --smoke: N=5). Prints
- per call: N calls of a trivial program with two asserts (rewards.code.run_tests): median and p90 wall time,
  the mean CPU time (this process and every sandbox, checker and unshare process it started), and the
  per-call overhead: wall time minus running the same program and asserts with a plain exec in this process;
- in the loop: one step's batch of the embedded code task (configs/local_code.yaml: 16 prompts x 8 samples, drawn
  from the corpus mix so programs repeat as a prior's do) scored through the verifier pool
  (cluster.scoring.score_texts) with 1 and 2 workers, in programs/s; and the distinct programs in that batch,
  the only ones sent to the sandbox (repeats are scored once).
Prints which sandbox wall was used and the CPU it ran on.
"""

import platform
import random
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


def per_call(n: int) -> None:
    assert run_tests(PROGRAM, TESTS, 10).passed  # warm: mode probe, imports
    walls, cpu0 = [], _cpu()
    for _ in range(n):
        start = time.perf_counter()
        assert run_tests(PROGRAM, TESTS, 10).passed
        walls.append(time.perf_counter() - start)
    cpu = (_cpu() - cpu0) / n
    start = time.perf_counter()
    for _ in range(n):
        exec(PROGRAM + TESTS, {})  # the work itself, with no isolation
    bare = (time.perf_counter() - start) / n
    walls.sort()
    print(f"sandbox wall: {sandbox_mode()['wall']}; N={n}; CPU: {platform.processor() or platform.machine()}")
    print(f"wall per call: median {statistics.median(walls) * 1e3:.0f} ms, p90 {walls[int(0.9 * n) - 1] * 1e3:.0f} ms")
    print(f"CPU per call: {cpu * 1e3:.0f} ms")
    print(f"per-call overhead: {(statistics.median(walls) - bare) * 1e3:.0f} ms (plain exec {bare * 1e6:.0f} us)")


def loop_batch(prompts: int, samples: int) -> tuple[list, list[str]]:
    """One RL step's (problem, completion) pairs of the embedded code task, completions drawn from the corpus mix."""
    from cluster.data.spec import DatasetSpec
    from cluster.data.loaders import load_problems
    from cluster.embedded.code_task import CodeMix, CodeProblem, solution

    problems = load_problems(DatasetSpec(name="embedded_code", split="train", limit=prompts)).problems
    rng, probs, texts = random.Random(0), [], []
    for p in problems:
        f0, f1 = (int(s.split("=")[1]) for s in p.meta["question"].split())
        for _ in range(samples):
            probs.append(p)
            texts.append(solution(CodeProblem(f1 - f0, f0), rng, CodeMix())[0])
    return probs, texts


def in_loop(prompts: int, samples: int) -> None:
    from cluster.scoring import score_texts

    probs, texts = loop_batch(prompts, samples)
    distinct = len({(p.gold, t) for p, t in zip(probs, texts)})
    print(f"in the loop: {len(texts)} programs per step ({prompts} prompts x {samples}), {distinct} distinct")
    for workers in (1, 2):
        score_texts(probs[:2], texts[:2], 10, workers)  # start the pool's workers outside the timing
        start = time.perf_counter()
        rewards = score_texts(probs, texts, 10, workers)
        wall = time.perf_counter() - start
        print(f"pool workers={workers}: {wall:.2f} s per step, {len(texts) / wall:.1f} programs/s "
              f"({distinct / wall:.1f} distinct/s), reward mean {statistics.mean(map(float, rewards)):.2f}")


if __name__ == "__main__":
    smoke = "--smoke" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--smoke"]
    per_call(int(args[0]) if args else 5 if smoke else 50)
    in_loop(4, 8) if smoke else in_loop(16, 8)
