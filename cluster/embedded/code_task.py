"""Procedural program synthesis: write the integer function that two input/output examples come from.

The embedded code task (`model.embedded.task: code`, configs/local_code.yaml). Every problem is a linear function
f(x) = a*x + b (a in 1..9, b in 10..89, so f(0) and f(1) both have two digits); the prompt shows f(0) and f(1),
the answer is a Python function, and the reward is the code sandbox (rewards/code.py) running it against asserts
on the shown points and on hidden ones.

    Q: f(0)=19 f(1)=27
    A: # 27-19=8                        worked: the slope as a difference, in a comment line
    def f(x): return 8*x+19
    A: def f(x): return 8*x+19          direct guess

Why it suits a tiny model and RL, like the arithmetic task: b is a copy, and a = f(1) - f(0) is one subtraction
whose result is a single digit (every number sits at a fixed position, which a 3-layer model learns quickly), so written out in a comment it is reliable, while a direct guess is right only
`direct_right` of the time. The corpus's wrong answers are the plausible ones: a slope off by one (a slip in the
subtraction, or a guess), the intercept dropped (`8*x`), and `8*x*x+19`, which fits both shown examples and only
the hidden asserts catch. Difficulty: "borrow" when the units digit of f(1) is below that of f(0).

Held-out problems are disjoint from training ones by construction: a problem's split is a hash of its prompt.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from cluster.embedded.tokenizer import check_text

PROMPT_TEMPLATE = "Q: {question}\nA: "
SPLITS = ("train", "test")
TEST_SHARE = 5  # one problem in TEST_SHARE (by hash) is held out: 720 problems, 148 held out
SLOPES, INTERCEPTS = range(1, 10), range(10, 90)
TEST_POINTS = (0, 1, 2, 3, 7)  # the shown examples and three hidden points


@dataclass(frozen=True)
class CodeProblem:
    """f(x) = a*x + b, shown at x = 0 and x = 1."""

    a: int
    b: int

    def f(self, x: int) -> int:
        return self.a * x + self.b

    @property
    def question(self) -> str:
        return f"f(0)={self.f(0)} f(1)={self.f(1)}"

    @property
    def prompt(self) -> str:
        return PROMPT_TEMPLATE.format(question=self.question)

    @property
    def tests(self) -> str:
        """The test program the sandbox runs after the candidate's code (shown points, then hidden ones)."""
        return "".join(f"assert f({x}) == {self.f(x)}\n" for x in TEST_POINTS)

    @property
    def borrow(self) -> bool:
        """Whether f(1) - f(0) borrows (units digit of f(1) below that of f(0)): the slope is not a units-digit copy."""
        return self.f(1) % 10 < self.f(0) % 10


@dataclass(frozen=True)
class CodeMix:
    """How the pre-training corpus answers its problems."""

    cot: float = 0.2  # share of worked answers (the slope's subtraction in a comment); the rest guess directly
    wrong: float = 0.1  # share of worked answers whose subtraction slips by one
    direct_right: float = 0.2  # chance that a direct guess is the right program (else one of the plausible wrong)

    def __post_init__(self):
        for name in ("cot", "wrong", "direct_right"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"code corpus mix {name}={getattr(self, name)}: expected a share in [0, 1]")


def split_of(p: CodeProblem) -> str:
    digest = hashlib.sha256(p.question.encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") % TEST_SHARE == 0 else "train"


def all_problems(split: str) -> list[CodeProblem]:
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {list(SPLITS)}")
    return [p for a in SLOPES for b in INTERCEPTS if split_of(p := CodeProblem(a, b)) == split]


def problems(split: str, n: int, seed: int) -> list[CodeProblem]:
    """`n` distinct problems of `split` in a seeded order, the same for the same (split, n, seed)."""
    pool = all_problems(split)
    if n > len(pool):
        raise ValueError(f"n={n} code problems asked of split {split!r}, which has {len(pool)}; lower the limit")
    return random.Random(f"code/{split}/{seed}").sample(pool, n)


def program(a: int, b: int, squared: bool = False) -> str:
    """`def f(x): return a*x+b` (no `+b` when b is 0: the dropped intercept), or `a*x*x+b` when squared."""
    body = f"{a}*x*x" if squared else f"{a}*x"
    return f"def f(x): return {body}+{b}" if b else f"def f(x): return {body}"


def solution(p: CodeProblem, rng: random.Random, mix: CodeMix) -> tuple[str, bool, bool]:
    """One response to `p` drawn from the corpus mix: (text, is_cot, is_correct)."""
    off = p.a + 1 if p.a == 1 or rng.random() < 0.5 else p.a - 1  # a slope off by one, kept >= 1
    if rng.random() < mix.cot:
        a = off if rng.random() < mix.wrong else p.a
        text = f"# {p.f(1)}-{p.f(0)}={a}\n{program(a, p.b)}"
        return text, True, a == p.a
    if rng.random() < mix.direct_right:
        return program(p.a, p.b), False, True
    kind = rng.randrange(3)  # the plausible wrong guesses, equally often
    text = program(off, p.b) if kind == 0 else program(p.a, 0) if kind == 1 else program(p.a, p.b, squared=True)
    return text, False, False


def corpus(n: int, seed: int, mix: CodeMix) -> list[dict]:
    """`n` pre-training examples over training problems (drawn with replacement): prompt, response, is_cot, correct."""
    rng = random.Random(f"code-corpus/{seed}")
    train = all_problems("train")
    rows = []
    for _ in range(n):
        p = rng.choice(train)
        text, is_cot, correct = solution(p, rng, mix)
        check_text(p.prompt + text, "code")
        rows.append({"prompt": p.prompt, "response": text, "is_cot": is_cot, "correct": correct})
    return rows
