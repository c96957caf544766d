"""Throughput and agreement of rlvr's math verifier vs math-verify on the same (prediction, gold) pairs.

Pairs come from real datasets under $RLVR_DATA_DIR (else ../shared/data when present): MATH-500 solutions' last \\boxed{} vs the gold answer,
the gold re-typed as a model would (\\dfrac, \\left(, $...$), GSM8K and AIME/AMC gold formats, and perturbed
negatives (first integer + 1). Run:  .venv/bin/python bench/bench_verifier.py  (needs `pip install
math-verify==0.9.0`, the `bench` extra). Prints pairs/s for both, the ratio, and every disagreement.
"""

import collections
import json
import re
import time

from rl_common import data_dir

DATA = data_dir()


def _jsonl(path):
    return [json.loads(line) for line in open(path)]


def _perturb(answer: str) -> str | None:
    m = re.search(r"\d+", answer)
    return None if m is None else answer[: m.start()] + str(int(m.group()) + 1) + answer[m.end():]


def _retype(a: str) -> str:
    a = a.replace("\\dfrac", "\\frac") if "\\dfrac" in a else a.replace("\\frac", "\\dfrac")
    return "\\left(" + a[1:-1] + "\\right)" if a.startswith("(") and a.endswith(")") else a


def build_pairs() -> list[tuple[str, str, str, bool]]:
    """(group, prediction, gold, expected) tuples; expected is the label by construction."""
    from rewards.math.extract import last_boxed

    pairs = []
    for r in _jsonl(DATA / "math500" / "test.jsonl"):
        pairs.append(("math500/boxed", last_boxed(r["solution"]), r["answer"], True))
        pairs.append(("math500/retyped", _retype(r["answer"]), r["answer"], True))
        if (p := _perturb(r["answer"])) is not None:
            pairs.append(("math500/perturbed", p, r["answer"], False))
    for r in _jsonl(DATA / "gsm8k" / "test.jsonl")[:500]:
        gold = r["answer"].rsplit("####", 1)[1].strip()
        pairs.append(("gsm8k", gold, gold.replace(",", ""), True))
        pairs.append(("gsm8k/perturbed", str(int(gold.replace(",", "")) + 1), gold.replace(",", ""), False))
    for name in ("aime24", "amc23"):
        for r in _jsonl(DATA / name / "test.jsonl"):
            gold = str(r["answer"])
            pairs.append((name, str(int(float(gold))), gold, True))
            pairs.append((name + "/perturbed", str(int(float(gold)) + 1), gold, False))
    return pairs


def warmup_pairs(n: int = 300) -> list[tuple[str, str, str, bool]]:
    """Other data (deepscaler MATH train answers): both verifiers parse LaTeX with ANTLR, whose DFA cache
    fills as it goes; a training run is in that steady state after its first few batches."""
    rows = [r for r in _jsonl(DATA / "deepscaler" / "math_train.jsonl") if r["answer"]][:n]  # 4 have no gold
    return [("warmup", _perturb(r["answer"]) or r["answer"], r["answer"], False) for r in rows]


def run_rlvr(pairs):
    from rewards.math import equivalence

    equivalence._normalized.cache_clear()
    equivalence._parsed.cache_clear()
    equivalence._sympy.cache_clear()
    start = time.perf_counter()
    out = [equivalence.is_equivalent(p, g) for _, p, g, _ in pairs]
    return out, time.perf_counter() - start


def run_math_verify(pairs):
    from math_verify import parse, verify

    start = time.perf_counter()
    out = []
    for _, p, g, _ in pairs:
        try:
            out.append(bool(verify(parse(f"\\boxed{{{g}}}"), parse(f"\\boxed{{{p}}}"))))
        except Exception:
            out.append(False)
    return out, time.perf_counter() - start


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="every 20th pair only: checks the script runs")
    smoke = ap.parse_args().smoke
    pairs = build_pairs()[::20] if smoke else build_pairs()
    _, t_cold_ours = run_rlvr(pairs)  # first pass: imports done, parser caches cold
    _, t_cold_theirs = run_math_verify(pairs)
    run_rlvr(warmup_pairs(20 if smoke else 300))
    run_math_verify(warmup_pairs(20 if smoke else 300))
    ours, t_ours = run_rlvr(pairs)  # our answer caches are cleared inside; the parser's DFA stays warm
    theirs, t_theirs = run_math_verify(pairs)
    n = len(pairs)
    print(f"pairs: {n}")
    print(f"cold (first pass after import): rlvr {n / t_cold_ours:.1f} pairs/s, math-verify "
          f"{n / t_cold_theirs:.1f} pairs/s, speedup {t_cold_theirs / t_cold_ours:.1f}x")
    print("steady state (after a warm-up on other data):")
    print(f"rlvr        {n / t_ours:10.1f} pairs/s  ({t_ours:.2f} s)")
    print(f"math-verify {n / t_theirs:10.1f} pairs/s  ({t_theirs:.2f} s)")
    print(f"speedup     {t_theirs / t_ours:10.1f}x  (target >= 5x)")
    table = collections.defaultdict(lambda: [0, 0, 0, 0])  # rlvr right, math-verify right, agree, total
    for (group, _, _, expected), a, b in zip(pairs, ours, theirs):
        row = table[group]
        row[0] += a == expected
        row[1] += b == expected
        row[2] += a == b
        row[3] += 1
    print(f"\n{'group':20s} {'n':>5s} {'rlvr ok':>8s} {'mv ok':>8s} {'agree':>8s}")
    for group, (ra, mb, ag, tot) in sorted(table.items()):
        print(f"{group:20s} {tot:5d} {ra:8d} {mb:8d} {ag:8d}")
    agree = sum(a == b for a, b in zip(ours, theirs))
    print(f"agreement: {agree}/{n} = {agree / n:.1%}")
    print("\ndisagreements (group | prediction | gold | expected | rlvr | math-verify):")
    for (group, p, g, expected), a, b in zip(pairs, ours, theirs):
        if a != b:
            print(f"  {group} | {p} | {g} | {expected} | {a} | {b}")


if __name__ == "__main__":
    main()
