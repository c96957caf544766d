"""Procedural multi-digit addition: problems, prompts, solutions and the pre-training corpus of the embedded prior.

Why addition: a tiny transformer cannot add two 4-digit numbers in one forward pass (carries chain across
digits), but it learns the column-by-column chain of thought quickly, because every step is a one-digit sum
plus a carry. So a direct answer is a guess, a chain of thought is reliably right, and a prior that mostly
answers directly has low accuracy that RL can raise by making it reason (longer responses).

Formats (prompt, then response; `####` is the final-answer marker the math verifier reads):

    Q: 4831+2976
    A: #### 7807                                           direct
    A: 1+6+0=7:7 3+7+0=10:07 8+9+1=18:807 4+2+1=7:7807 #### 7807    chain of thought, last column first

The corpus mixes direct answers, chains of thought and a share of wrong answers (a slip in one column that
the chain then carries through, or a wrong guess). Direct answers are what answering at a glance gives: right
when no column carries, but for sums with a carry usually the carry-less sum (right only `direct_carry` of the
time). So however long the prior trains, answering directly stays mostly wrong on hard instances, while the
chain of thought becomes reliable: RL has something to find, and it is the longer response. The `no_answer_form` prior writes `= 7807` instead of
`#### 7807`: its numbers can be right, but the verifier never finds an answer, so reward stays zero.

Held-out problems are disjoint from training ones by construction: a problem's split is a hash of its text.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from cluster.embedded.tokenizer import ANSWER_MARKER, check_text

PROMPT_TEMPLATE = "Q: {question}\nA: "
SPLITS = ("train", "test")
TEST_SHARE = 10  # one problem in TEST_SHARE (by hash) is held out
DEFAULT_DIGITS = 3
ANSWER_FORMS = ("marker", "none")  # prior 'natural' writes the marker; 'no_answer_form' never does
# Calculator calls of the 'tool' prior, in the characters of the vocabulary: `?345+678;` is the call and
# `#### 1023` the observation the tool appends, its result written as the final answer (rollout.tools in
# configs/local_tool.yaml uses the same tags). A first format, `=1023.` followed by the model's own `#### 1023`,
# needed the tiny prior to copy the result, which 600 pre-training steps did not teach reliably.
CALL_OPEN, CALL_CLOSE, OBS_OPEN, OBS_CLOSE = "?", ";", f"{ANSWER_MARKER} ", ""
TOOL_FORMAT = 2  # in the prior's cache key (with a tool share): bump when the call format changes


@dataclass(frozen=True)
class Addition:
    """a + b, both with `digits` digits."""

    a: int
    b: int

    @property
    def question(self) -> str:
        return f"{self.a}+{self.b}"

    @property
    def answer(self) -> int:
        return self.a + self.b

    @property
    def prompt(self) -> str:
        return PROMPT_TEMPLATE.format(question=self.question)

    @property
    def carries(self) -> int:
        """Columns that carry: 0 means a direct answer is right by construction, each carry makes it harder."""
        a, b, carry, count = self.a, self.b, 0, 0
        while a or b:
            carry = (a % 10 + b % 10 + carry) // 10
            count += carry
            a, b = a // 10, b // 10
        return count


@dataclass(frozen=True)
class CorpusMix:
    """How the pre-training corpus answers its problems."""

    cot: float = 0.3  # share of chains of thought (the rest answer directly)
    wrong: float = 0.1  # share of responses with a slip (chain of thought) or a wrong guess (direct)
    direct_carry: float = 0.15  # chance that a direct answer to a sum with a carry is right (else: carry dropped)
    answer_form: str = "marker"  # 'marker': `#### 7807`; 'none': `= 7807`, which the verifier cannot read
    tool: float = 0.0  # share of calculator calls (`?a+b;=sum. #### sum`), drawn before the cot/direct choice

    def __post_init__(self):
        for name in ("cot", "wrong", "direct_carry", "tool"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"corpus mix {name}={getattr(self, name)}: expected a share in [0, 1]")
        if self.answer_form not in ANSWER_FORMS:
            raise ValueError(f"corpus mix answer_form={self.answer_form!r}: expected one of {list(ANSWER_FORMS)}")


def split_of(problem: Addition) -> str:
    """'test' for one problem in TEST_SHARE, decided by a hash of its question (stable across seeds)."""
    digest = hashlib.sha256(problem.question.encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") % TEST_SHARE == 0 else "train"


def sample_problem(rng: random.Random, digits: int) -> Addition:
    """Two uniformly drawn `digits`-digit numbers."""
    lo, hi = 10 ** (digits - 1), 10 ** digits - 1
    return Addition(rng.randint(lo, hi), rng.randint(lo, hi))


def problems(split: str, n: int, seed: int, digits: int = DEFAULT_DIGITS) -> list[Addition]:
    """`n` distinct problems of `split`, the same for the same (split, n, seed, digits)."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {list(SPLITS)}")
    if digits < 1:
        raise ValueError(f"digits={digits}: expected at least 1")
    space = (9 * 10 ** (digits - 1)) ** 2
    if n > space // (2 * TEST_SHARE):
        raise ValueError(f"n={n} problems asked of {digits}-digit addition, which has only ~{space // TEST_SHARE} "
                         f"held-out problems; lower n or raise digits")
    rng = random.Random(f"{split}/{seed}/{digits}")
    seen, out = set(), []
    while len(out) < n:
        p = sample_problem(rng, digits)
        if p not in seen and split_of(p) == split:
            seen.add(p)
            out.append(p)
    return out


def columns(a: int, b: int, digits: int, slip: int | None = None, slip_by: int = 1) -> list[tuple[int, int, int, int]]:
    """(digit of a, digit of b, carry in, column sum) per column, least significant first. `slip` is a column
    whose sum is off by `slip_by` (a wrong chain of thought); later columns carry that error through."""
    out, carry = [], 0
    for i in range(digits):
        da, db = a // 10 ** i % 10, b // 10 ** i % 10
        s = da + db + carry
        if i == slip:  # off by one, staying a possible column sum (0..19)
            s = s + slip_by if 0 <= s + slip_by <= 19 else s - slip_by
        out.append((da, db, carry, s))
        carry = s // 10
    return out


def value_of(cols: list[tuple[int, int, int, int]]) -> int:
    """The number a chain of columns spells: each column's last digit, plus the final carry."""
    return sum((s % 10) * 10 ** i for i, (_, _, _, s) in enumerate(cols)) + (cols[-1][3] // 10) * 10 ** len(cols)


def final_answer(value: int, answer_form: str = "marker") -> str:
    return f"{ANSWER_MARKER} {value}" if answer_form == "marker" else f"= {value}"


def direct_solution(value: int, answer_form: str = "marker") -> str:
    return final_answer(value, answer_form)


def cot_solution(cols: list[tuple[int, int, int, int]], answer_form: str = "marker") -> str:
    """Column sums, each followed by the digits of the result written so far (as under the line on paper):
    the final answer is then a copy of the last partial result, never a digit-reversing read-back."""
    steps, partial = [], ""
    for i, (da, db, c, s) in enumerate(cols):
        partial = str(s if i == len(cols) - 1 else s % 10) + partial
        steps.append(f"{da}+{db}+{c}={s}:{partial}")
    return f"{' '.join(steps)} {final_answer(value_of(cols), answer_form)}"


def dropped_carry(p: Addition) -> int:
    """The classic wrong sum: every column added without its carry."""
    digits = len(str(max(p.a, p.b)))
    return sum((p.a // 10 ** i % 10 + p.b // 10 ** i % 10) % 10 * 10 ** i for i in range(digits))


def tool_solution(p: Addition) -> str:
    """A calculator call and the observation the tool answers with (the final answer line)."""
    return f"{CALL_OPEN}{p.question}{CALL_CLOSE}{OBS_OPEN}{p.answer}{OBS_CLOSE}"


def solution(p: Addition, rng: random.Random, mix: CorpusMix) -> tuple[str, bool, bool]:
    """One response to `p` drawn from the corpus mix: (text, is_cot, is_correct)."""
    digits = len(str(max(p.a, p.b)))
    if mix.tool and rng.random() < mix.tool:  # no draw at tool=0: the other priors' corpora stay as they were
        return tool_solution(p), False, True
    is_cot, wrong = rng.random() < mix.cot, rng.random() < mix.wrong
    if is_cot:
        slip = rng.randrange(digits) if wrong else None
        cols = columns(p.a, p.b, digits, slip, slip_by=rng.choice((-1, 1)))
        text = cot_solution(cols, mix.answer_form)
        correct = value_of(cols) == p.answer
    else:
        # Answering at a glance works when no column carries; with carries it is often the carry-less sum.
        value, no_carry = p.answer, dropped_carry(p) == p.answer
        if not no_carry and rng.random() >= mix.direct_carry:
            value = dropped_carry(p)
        elif wrong:
            value = dropped_carry(p) if not no_carry else p.answer + rng.choice((-10, -1, 1, 10))
        text, correct = direct_solution(value, mix.answer_form), value == p.answer
    return text, is_cot, correct


def corpus(n: int, seed: int, mix: CorpusMix, digits: int = DEFAULT_DIGITS) -> list[dict]:
    """`n` pre-training examples over training problems: dicts with prompt, response, is_cot, correct."""
    rng = random.Random(f"corpus/{seed}")
    rows = []
    for p in problems("train", n, seed, digits):
        text, is_cot, correct = solution(p, rng, mix)
        check_text(p.prompt + text)
        rows.append({"prompt": p.prompt, "response": text, "is_cot": is_cot, "correct": correct,
                     "answer": p.answer})
    return rows


def extract_marked(completion: str) -> str | None:
    """The text after the last `####` (first token of it), or None: a stand-in for the math verifier."""
    if ANSWER_MARKER not in completion:
        return None
    tail = completion.rsplit(ANSWER_MARKER, 1)[1].split()
    return tail[0] if tail else None


def is_correct(completion: str, answer: int) -> bool:
    """Exact match of the marked final answer."""
    return extract_marked(completion) == str(answer)


def is_cot(completion: str) -> bool:
    """A response that does any work before its final answer."""
    return not completion.lstrip().startswith((ANSWER_MARKER, "=", CALL_OPEN))


def is_tool_call(completion: str) -> bool:
    """A response that calls the calculator."""
    return CALL_OPEN in completion and CALL_CLOSE in completion
