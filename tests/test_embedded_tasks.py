"""Procedural addition: seeded, split-disjoint, and a corpus whose mix is what it claims to be."""

import random

import pytest

from cluster.embedded.tasks import (Addition, CorpusMix, columns, corpus, dropped_carry, is_correct, is_cot,
                                    problems, split_of, value_of)


def test_problems_are_deterministic_by_seed():
    assert problems("train", 50, seed=1) == problems("train", 50, seed=1)
    assert problems("train", 50, seed=1) != problems("train", 50, seed=2)


def test_train_and_test_splits_are_disjoint():
    train = {p.question for seed in range(3) for p in problems("train", 2000, seed=seed)}
    test = {p.question for p in problems("test", 500, seed=0)}
    assert len(test) == 500 and not train & test
    assert all(split_of(p) == "test" for p in problems("test", 100, seed=7))


def test_columns_spell_the_sum_and_a_slip_changes_it():
    rng = random.Random(0)
    for _ in range(200):
        p = Addition(rng.randint(1000, 9999), rng.randint(1000, 9999))
        assert value_of(columns(p.a, p.b, 4)) == p.answer
        assert value_of(columns(p.a, p.b, 4, slip=rng.randrange(4), slip_by=rng.choice((-1, 1)))) != p.answer
    assert value_of(columns(9999, 9999, 4, slip=1, slip_by=1)) != 19998  # 9+9+1=19 cannot slip upwards
    assert dropped_carry(Addition(4831, 2976)) == 6707


def test_corpus_mix_proportions_and_labels():
    rows = corpus(4000, seed=0, mix=CorpusMix(cot=0.25, wrong=0.1, direct_carry=1.0))
    cot = sum(r["is_cot"] for r in rows) / len(rows)
    wrong = sum(not r["correct"] for r in rows) / len(rows)
    assert abs(cot - 0.25) < 0.03 and abs(wrong - 0.1) < 0.02
    for r in rows:  # the labels describe the text
        assert is_cot(r["response"]) == r["is_cot"]
        assert is_correct(r["response"], r["answer"]) == r["correct"]


def test_direct_answers_are_right_when_no_column_carries_and_mostly_wrong_otherwise():
    rows = corpus(4000, seed=0, mix=CorpusMix(cot=0.0, wrong=0.0, direct_carry=0.3))
    easy = [r for r in rows if dropped_carry(Addition(*map(int, r["prompt"][3:-4].split("+")))) == r["answer"]]
    hard = [r for r in rows if r not in easy]
    assert easy and all(r["correct"] for r in easy)
    assert abs(sum(r["correct"] for r in hard) / len(hard) - 0.3) < 0.04


def test_math_verifier_reads_the_marker_form_and_never_the_no_answer_form():
    from rewards.math import score

    marked = corpus(300, seed=0, mix=CorpusMix(cot=0.5, wrong=0.2))
    assert [score(r["response"], str(r["answer"])) for r in marked] == [float(r["correct"]) for r in marked]
    bare = corpus(300, seed=0, mix=CorpusMix(cot=0.5, wrong=0.2, direct_carry=1.0, answer_form="none"))
    assert all("####" not in r["response"] for r in bare)
    assert sum(r["correct"] for r in bare) > 200  # the numbers are mostly right, in a form never read
    assert all(score(r["response"], str(r["answer"])) == 0.0 for r in bare)


def test_bad_settings_are_refused_with_the_allowed_values():
    with pytest.raises(ValueError, match="expected one of"):
        problems("valid", 3, seed=0)
    with pytest.raises(ValueError, match="answer_form"):
        CorpusMix(answer_form="boxed")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        CorpusMix(cot=1.5)


def test_embedded_dataset_gives_math_problems_with_the_sum_as_gold():
    from types import SimpleNamespace as Spec  # the fields of a data.train/eval entry that it reads

    from cluster.data.embedded_source import embedded_problems

    test = embedded_problems(Spec(name="embedded", split="test", limit=50))
    train = embedded_problems(Spec(name="embedded", split="train", limit=2000))
    assert len(test) == 50 and {p.kind for p in test} == {"math"}
    assert all(p.prompt.startswith("Q: ") and p.prompt.endswith("\nA: ") for p in test)
    assert all(int(p.gold) == sum(map(int, p.meta["question"].split("+"))) for p in test)
    assert not {p.prompt for p in test} & {p.prompt for p in train}


def test_carries_count_the_columns_that_carry():
    from cluster.embedded.tasks import Addition as AddProblem

    assert [AddProblem(a, b).carries for a, b in [(123, 456), (195, 105), (999, 1), (500, 500), (45, 55)]] == \
        [0, 2, 3, 1, 2]


def test_held_out_rows_are_bucketed_by_difficulty():
    from cluster.eval.heldout import by_difficulty

    rows = [{"difficulty": "0 carries", "reward": 1.0, "tokens": 4}, {"difficulty": "0 carries", "reward": 0.0,
            "tokens": 6}, {"difficulty": "2 carries", "reward": 1.0, "tokens": 40}, {"reward": 1.0, "tokens": 1}]
    assert by_difficulty(rows) == {"0 carries": {"accuracy": 0.5, "mean_response_length": 5, "samples": 2},
                                   "2 carries": {"accuracy": 1.0, "mean_response_length": 40, "samples": 1}}
