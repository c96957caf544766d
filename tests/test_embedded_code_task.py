"""The embedded code task: problems, corpus, vocabulary, its dataset and config, and scoring by the real sandbox."""
import random

import pytest

from cluster.embedded.code_task import (CodeMix, CodeProblem, all_problems, corpus, problems, program, solution,
                                        split_of)
from cluster.embedded.tokenizer import VOCAB, build_tokenizer, vocab


def test_splits_are_disjoint_and_cover_every_function():
    train, test = set(all_problems("train")), set(all_problems("test"))
    assert not train & test and len(train | test) == 9 * 80
    assert 100 <= len(test) <= 190  # one in five held out, by hash
    assert all(split_of(p) == "test" for p in problems("test", 50, seed=0))
    assert problems("train", 30, seed=1) == problems("train", 30, seed=1)
    with pytest.raises(ValueError, match="lower the limit"):
        problems("test", 10_000, seed=0)


def test_corpus_mix_matches_its_shares_and_labels_correctness_honestly():
    mix = CodeMix()
    rows = corpus(4000, seed=0, mix=mix)
    cot = sum(r["is_cot"] for r in rows) / len(rows)
    assert abs(cot - mix.cot) < 0.03
    # correct share: worked answers right unless they slip, direct guesses right direct_right of the time
    expected = mix.cot * (1 - mix.wrong) + (1 - mix.cot) * mix.direct_right
    assert abs(sum(r["correct"] for r in rows) / len(rows) - expected) < 0.04
    assert expected <= 0.5  # the prior starts at most half right


def test_worked_answer_is_a_comment_then_the_function():
    rng = random.Random(0)
    texts = {solution(CodeProblem(8, 19), rng, CodeMix(cot=1.0, wrong=0.0))[0] for _ in range(5)}
    assert texts == {"# 27-19=8\ndef f(x): return 8*x+19"}
    assert program(3, 0) == "def f(x): return 3*x" and program(2, 5, squared=True) == "def f(x): return 2*x*x+5"


def test_code_vocabulary_extends_the_arithmetic_one_which_is_unchanged():
    assert vocab("arith") == VOCAB and vocab("code")[:len(VOCAB)] == VOCAB
    tok = build_tokenizer("code")
    text = "Q: f(0)=19 f(1)=27\nA: # 27-19=8\ndef f(x): return 8*x+19"
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids and tok.decode(ids, skip_special_tokens=True) == text
    with pytest.raises(ValueError, match="expected one of"):
        vocab("sorting")


def test_arithmetic_prior_cache_key_is_unchanged_by_the_task_field():
    from cluster.config import load_config
    from cluster.embedded.prior import pretrain_config

    cfg = load_config("configs/local.yaml")
    assert pretrain_config(cfg.model.embedded, 0).key() == "3d7c8e447441a695"  # the math default's cached prior
    code = load_config("configs/local_code.yaml")
    assert pretrain_config(code.model.embedded, 0).key() != "3d7c8e447441a695"


def _program_of(problem, squared=False):
    f0, f1 = (int(s.split("=")[1]) for s in problem.meta["question"].split())  # 'f(0)=19 f(1)=27'
    return program(f1 - f0, f0, squared)


def test_code_dataset_gives_code_problems_whose_tests_the_sandbox_runs():
    from cluster.data.spec import DatasetSpec
    from cluster.data.loaders import load_problems
    from cluster.scoring import score_texts

    ps = load_problems(DatasetSpec(name="embedded_code", split="test", limit=3)).problems
    assert [p.kind for p in ps] == ["code"] * 3 and ps[0].gold.startswith("assert f(0) == ")
    right, squared = _program_of(ps[0]), _program_of(ps[0], squared=True)  # squared fits f(0), f(1); fails hidden
    # duplicates of one (tests, text) pair are scored once and fanned back out in order
    probs = [ps[0], ps[0], ps[1], ps[0], ps[1], ps[0]]
    texts = [right, squared, _program_of(ps[1]), "# comment\n" + right, right, right]
    rewards = score_texts(probs, texts, timeout_s=10, workers=2)
    assert [float(r) for r in rewards] == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]


def test_config_refuses_a_task_with_the_other_tasks_data():
    from cluster.config import load_config
    from cluster.overrides import ConfigError

    with pytest.raises(ConfigError, match="embedded_code"):
        load_config("configs/local.yaml", ["model.embedded.task=code"])
    with pytest.raises(ConfigError, match="prior='natural'"):
        load_config("configs/local_code.yaml", ["model.embedded.prior=no_answer_form"])
