"""Issue #16 regressions: false accepts, the last stated answer, the miss clusters, per-problem rules."""

import pytest

from rewards.math import Rules, extract_answer, is_equivalent, rules_from_prompt, score

FALSE_ACCEPTS = [  # each was accepted before #16
    (r"\frac{\pi}{6}", "0.5"), (r"\frac{\sqrt3}{2}", "0.9"), (r"\frac{\sqrt2}{2}", "0.7"),
    ("x", "|x|"), (r"\sqrt{x^2}", "x"), (r"\sqrt{x^2}", "|y|"), ("12:00", "1:00"), ("10, 4, -2", "4, 10, -2"),
    ("a", r"\sqrt{a^2}"), (r"\frac{x}{|x|}", "1"), ("2:30", "3:20"), ("3:4", "4:3"),
]


@pytest.mark.parametrize("pred,gold", FALSE_ACCEPTS)
def test_listed_false_accepts_are_rejected(pred, gold):
    assert not is_equivalent(pred, gold)
    assert not is_equivalent(gold, pred)


MISS_CLUSTERS = [  # each was rejected before #16
    ("1,22", "1.22"), ("0,5", r"\frac12"), (r"56,\!01,\!78", "560178"), ("3128 1/2", r"3128\frac{1}{2}"),
    ("-2 3/4", "-2.75"), (r"16.\overline{6}", r"\frac{50}{3}"), (r"0.\overline3", r"\frac13"), ("5\\", "5"),
    (r"5 \text{apples}", "5"), (r"12\text{ dozen eggs}", "12"), ("C. x = 42", "C"), (r"\mathcal{B}", "B"),
    (r"\textbf{(C) } 42", "C"), ("(D) 7", r"\text{(D)}"), ("C", r"\textbf{(C) }42"),
    (r"\left(\begin{pmatrix}1\\2\end{pmatrix}\right)", r"\begin{pmatrix}1\\2\end{pmatrix}"),
    (r"(\begin{matrix}1&2\\3&4\end{matrix})", r"\begin{bmatrix}1&2\\3&4\end{bmatrix}"),
    ("(1, -2)", r"\begin{pmatrix}1\\-2\end{pmatrix}"), ("12:00", "12:00"), ("2:30 p.m.", "2:30 PM"),
    (r"(-\infty, 3]", r"x \le 3"), (r"1 < x < 2", "(1, 2)"), (r"x \in [1, 2]", "[1,2]"), (r"\emptyset", r"\{\}"),
    (r"\mathbb{R}", r"(-\infty,\infty)"), ("{1,2,3}", r"\{3,2,1\}"), ("2", r"\{2\}"), ("5 apples", "5"),
    (r"\sin^2 x + \cos^2 x", "1"), ("x=1 \\text{ or } x=2", "1, 2"), (r"\left(\text{E}\right)", r"(\text{E})"),
]


@pytest.mark.parametrize("pred,gold", MISS_CLUSTERS)
def test_miss_clusters_are_accepted(pred, gold):
    assert is_equivalent(pred, gold)


@pytest.mark.parametrize("pred,gold", [
    ("1,000", "1.0"), ("1,22", "1,23"), ("1,22", "122"), ("3128 1/2", "1564"), ("C. x = 42", "B"),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", "(2, 1)"), (r"\begin{pmatrix}1\\2\end{pmatrix}", "[1, 2]"),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", "(1, 2]"),
    ("2:30 pm", "2:30 am"), (r"16.\overline{6}", "16.67"), (r"x < 3", r"(3, \infty)"), (r"1 \le x < 2", "(1, 2)"),
    (r"\{2\}", "2, 3"), ("5 and 6", "5"), ("2x", "2y"), ("10 pi", "10"), ("3 i", "3"),
])
def test_miss_cluster_fixes_do_not_open_near_misses(pred, gold):
    assert not is_equivalent(pred, gold)


@pytest.mark.parametrize("completion,expected", [
    ("The final answer is 12. Wait, I made an error; the answer is 15.", "15"),
    ("#### 12\nHmm, rechecking. The answer is 15", "15"),
    (r"So \boxed{12}. Actually no: the final answer is 15.", "15"),
    (r"The answer is 12, hmm, recompute: $\boxed{15}$", "15"),
    ("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.", r"\frac{1}{2}"),
    (r"Therefore $x = \boxed{44}$. We may check our answer: $17\cdot 44 = 748$, so our answer is correct.", "44"),
    (r"\boxed{7}. The answer is consistent with the constraint above.", "7"),
    ("**Answer:** 42", "42"), ("Answer:\n\\[\n\\frac{3}{4}\n\\]", r"\frac{3}{4}"), ("Answer: \\(x = 3\\).", "x = 3"),
    ("Answer: $$\n5\n$$", "5"), ("The answer is 0.5, i.e. 1/2.", "0.5"),
])
def test_extraction_takes_the_last_stated_answer(completion, expected):
    assert extract_answer(completion) == expected


def test_bare_lists_are_ordered_unless_the_problem_asks_for_all_solutions():
    assert not is_equivalent("1, -2", "-2, 1")
    assert is_equivalent("1, -2", "-2, 1", Rules(ordered=False))
    assert is_equivalent("x=1, y=2", "y=2, x=1")  # named values match in any order
    assert is_equivalent(r"\{1, -2\}", r"\{-2, 1\}") and is_equivalent(r"\pm 3", "-3, 3")  # sets, ±: unordered
    assert not is_equivalent("(1, 2)", "2, 1") and is_equivalent("(1, 2)", "2, 1", Rules(ordered=False))


@pytest.mark.parametrize("prompt,round_to,ordered", [
    ("Express your answer as a decimal to the nearest tenth.", 1, True),
    ("Round your answer to the nearest hundredth.", 2, True),
    ("Give the answer rounded to two decimal places.", 2, True),
    ("How many dollars, to the nearest cent?", 2, True),
    ("Express your answer to the nearest whole number.", 0, True),
    ("What is the population, to the nearest thousand?", -3, True),
    ("Find all solutions, separated by commas.", None, False),
    ("Find the roots of $x^3 - x = 0$.", None, False),
    ("Enter the ordered triple $(a,b,c)$.", None, True),
    ("Find all values of x and list them from least to greatest.", None, True),
    ("Compute $2+2$.", None, True),
])
def test_rules_from_prompt(prompt, round_to, ordered):
    assert rules_from_prompt(prompt) == Rules(round_to=round_to, ordered=ordered)


def test_rounding_rule_accepts_only_answers_that_round_to_the_gold():
    tenth = Rules(round_to=1)
    assert is_equivalent("2.47", "2.5", tenth) and is_equivalent(r"\frac{5}{2}", "2.5", tenth)
    assert is_equivalent(r"16.\overline{6}", "16.67", Rules(round_to=2))
    assert not is_equivalent("2.44", "2.5", tenth) and not is_equivalent(r"\frac{\pi}{5}", "0.5", tenth)
    assert is_equivalent(r"\frac{\pi}{6}", "0.5", tenth)  # 0.52...: right when the problem says "nearest tenth"
    assert is_equivalent("1520", "1,523", Rules(round_to=-1)) and not is_equivalent("1600", "1500", Rules(round_to=-2))


def test_score_reads_rules_from_a_dict_gold():
    assert score(r"\boxed{2.47}", "2.5") == 0.0
    assert score(r"\boxed{2.47}", {"answer": "2.5", "round_to": 1}) == 1.0
    assert score(r"\boxed{-2, 1}", {"answer": "1, -2", "ordered": False}) == 1.0
    assert score(r"\boxed{-2, 1}", {"answer": "1, -2"}) == 0.0


def test_dataset_settings_reach_the_reward_gold(tmp_path):
    import json

    from cluster.data.loaders import load_problems
    from cluster.data.spec import DatasetSpec

    rows = [{"q": "Round 2.468 to the nearest tenth.", "a": "2.5"}, {"q": "Find all roots of $x^2=x$.", "a": "0, 1"},
            {"q": "What is 2.47 + 0.03?", "a": "2.5"}]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = dict(name="jsonl", path=str(path), kind="math", fields={"prompt": "q", "answer": "a"})

    strict = load_problems(DatasetSpec(**spec, round_to=None, list_order="ordered")).problems
    assert [p.reward_gold for p in strict] == ["2.5", "0, 1", "2.5"]
    assert score(r"\boxed{2.47}", strict[0].reward_gold) == 0.0
    relaxed = load_problems(DatasetSpec(**spec, round_to="prompt")).problems
    assert [p.reward_gold for p in relaxed] == [{"answer": "2.5", "round_to": 1, "ordered": True},
                                                {"answer": "0, 1", "round_to": None, "ordered": False}, "2.5"]
    assert [score(c, p.reward_gold) for c, p in zip([r"\boxed{2.47}", r"\boxed{1, 0}", r"\boxed{2.47}"], relaxed)] \
        == [1.0, 1.0, 0.0]
    gold_places = load_problems(DatasetSpec(**spec, round_to="gold")).problems
    assert gold_places[2].reward_gold["round_to"] == 1
    with pytest.raises(ValueError, match="round_to=99"):
        DatasetSpec(**spec, round_to=99)
