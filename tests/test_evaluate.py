"""`rlvr eval` end to end, as a user runs it (`python -m cluster.cli eval CONFIG`), on 8 real GSM8K test problems
with two tiny random Llama "checkpoints" served by vLLM: n=4, ks 1/2/4, two token budgets, budget forcing.
One subprocess (one Ray runtime) serves the whole module. The metric pipeline is also checked without an engine,
on hand-built completions scored by the real verifier (maj@k grouping '0.5' with '\\frac{1}{2}')."""
import json
import os
import subprocess
import sys
from pathlib import Path

from cluster.data.root import data_root

import pytest
import yaml

from cluster.config_error import ConfigError
from cluster.eval.config import load_eval_config, validate_eval_config
from cluster.eval.pass_at_k import summarize
from cluster.eval.summary import for_voting, metrics_block
from record.rollout import Sample
from tiny_models import make_tiny_llama, make_tiny_qwen2

REPO = Path(__file__).resolve().parent.parent
GSM8K = data_root() / "gsm8k" / "test.jsonl"
N, KS, BUDGETS, PROBLEMS = 4, [1, 2, 4], [8, 16], 8
FORCING = "\nFinal answer: \\boxed{"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    # Llama, so that the forcing string round-trips through the tokenizer (tests/tiny_models.make_tiny_llama)
    models = [{"name": f"seed{s}", "path": make_tiny_llama(str(root / f"m{s}"), seed=s)} for s in (0, 1)]
    cfg = {
        "models": models,
        "datasets": [{"name": "gsm8k", "split": "test", "limit": PROBLEMS}],
        "rollout": {"dtype": "float32", "max_model_len": 512, "kv_cache_gib": 0.25,
                    "prompt": {"format": "base", "template": "Question: {prompt}\nAnswer:"}},
        "sampling": {"n": N, "temperature": 1.0, "max_tokens": BUDGETS[-1], "seed": 0},
        "ks": KS, "token_budgets": BUDGETS[:1],
        "budget_forcing": {"enabled": True, "forcing": FORCING, "answer_tokens": 6},
        "bootstrap": 200, "reward_workers": 1,
        "output": {"dir": str(root / "runs"), "name": "e2e"},
        "ray": {"num_cpus": 2},
    }
    path = root / "eval.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "cluster.cli", "eval", str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = root / "runs" / "e2e"
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {"dir": out, "results": json.loads((out / "results.json").read_text()), "rows": rows,
            "stdout": proc.stdout}


def _in_unit(x):
    return 0.0 <= x <= 1.0


@pytest.mark.slow
def test_results_json_has_every_model_dataset_metric_and_budget(run):
    r = run["results"]
    assert r["n"] == N and r["ks"] == KS and r["budgets"] == BUDGETS and list(r["models"]) == ["seed0", "seed1"]
    for m in r["models"].values():
        assert m["datasets"] == {"gsm8k": {"problems": PROBLEMS, "dropped_prompts": 0}}
        for scope in ("gsm8k", "overall"):
            block = m["metrics"][scope]
            assert block["n_problems"] == PROBLEMS and block["ks"] == KS
            for metric in ("pass@k", "maj@k", "mean@k"):
                assert len(block[metric]) == len(KS) and all(map(_in_unit, block[metric]))
                for v, (lo, hi) in zip(block[metric], block[f"{metric}_ci"]):
                    assert lo <= v + 1e-12 and v <= hi + 1e-12
            assert block["pass@k"] == sorted(block["pass@k"])  # more samples never lower pass@k
            assert 0 < block["mean_tokens"] <= BUDGETS[-1]
        assert set(m["token_budget"]) == {"max_tokens", "forced"}
        for mode in m["token_budget"].values():
            assert mode["overall"]["budgets"] == BUDGETS and all(map(_in_unit, mode["overall"]["accuracy"]))
    assert "gsm8k" in run["stdout"] and "pass@1" in run["stdout"]  # the rich summary table


@pytest.mark.slow
def test_pass_at_1_and_budget_accuracy_equal_mean_verdict_of_samples_jsonl(run):
    rows, r = run["rows"], run["results"]
    assert len(rows) == 2 * PROBLEMS * N * len(BUDGETS) * 2  # models x problems x n x budgets x modes
    for row in rows:
        assert {"prompt", "completion", "extracted", "verdict", "tokens"} <= set(row)
    for name, m in r["models"].items():
        main = [x for x in rows if x["model"] == name and x["mode"] == "max_tokens" and x["budget"] == BUDGETS[-1]]
        assert len(main) == PROBLEMS * N
        mean_verdict = sum(x["verdict"] for x in main) / len(main)
        assert m["metrics"]["overall"]["pass@k"][0] == pytest.approx(mean_verdict, abs=1e-12)
        assert m["metrics"]["overall"]["mean_tokens"] == pytest.approx(sum(x["tokens"] for x in main) / len(main))
        for mode, block in m["token_budget"].items():
            for b, acc, toks in zip(BUDGETS, block["overall"]["accuracy"], block["overall"]["mean_tokens"]):
                sel = [x for x in rows if x["model"] == name and x["mode"] == mode and x["budget"] == b]
                assert acc == pytest.approx(sum(x["verdict"] for x in sel) / len(sel), abs=1e-12)
                assert toks == pytest.approx(sum(x["tokens"] for x in sel) / len(sel))


@pytest.mark.slow
def test_max_tokens_sweep_respects_each_budget_and_forcing_continues_the_cut_thinking(run):
    rows = run["rows"]
    plain = {(x["model"], x["id"], x["budget"], i % N): x for i, x in enumerate(r for r in rows
                                                                              if r["mode"] == "max_tokens")}
    forced_rows = [x for x in rows if x["mode"] == "forced"]
    assert all(x["tokens"] <= x["budget"] for x in plain.values())
    assert any(x["forced"] for x in forced_rows), "random models run past 8 tokens: some samples must be forced"
    for i, x in enumerate(forced_rows):
        base = plain[(x["model"], x["id"], x["budget"], i % N)]
        if x["forced"]:
            assert base["finish_reason"] == "length" and base["tokens"] == x["budget"]
            assert x["completion"].startswith(base["completion"] + FORCING)
            assert x["completion"].endswith("}") and x["tokens"] > x["budget"]
        else:
            assert x["completion"] == base["completion"] and base["finish_reason"] == "stop"


@pytest.mark.slow
def test_two_checkpoints_are_evaluated_separately(run):
    by_model = {}
    for x in run["rows"]:
        by_model.setdefault(x["model"], []).append(x["completion"])
    assert by_model["seed0"] != by_model["seed1"]


@pytest.mark.slow
def test_random_tiny_models_score_honestly_low(run):
    # Forced answers are extracted (the pipeline reads them) but a random model's answers are wrong.
    forced = [x for x in run["rows"] if x["forced"]]
    assert forced and any(x["extracted"] for x in forced)
    for m in run["results"]["models"].values():
        block = m["metrics"]["overall"]
        assert max(block["pass@k"] + block["maj@k"]) == 0.0
        assert max(m["token_budget"]["forced"]["overall"]["accuracy"]) == 0.0


@pytest.mark.slow
def test_plots_are_written_as_valid_pngs(run):
    import matplotlib.image as mpimg

    assert run["results"]["plots"] == ["accuracy_vs_k.png", "accuracy_vs_tokens.png"]
    for name in run["results"]["plots"]:
        data = (run["dir"] / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(run["dir"] / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


# ---- the metric pipeline on hand-built completions (real verifier, no engine) -------------------------------


def _samples(texts):
    return [Sample.model_written([7] * (i + 1), [0.0] * (i + 1), "stop", 0, t) for i, t in enumerate(texts)]


def test_scoring_pipeline_groups_equivalent_answers_for_maj_at_k(tmp_path):
    from cluster.data.loaders import load_problems
    from cluster.data.spec import DatasetSpec
    from cluster.eval.heldout import results_and_rows
    from cluster.scoring import score_groups

    data = tmp_path / "half.jsonl"
    data.write_text(json.dumps({"q": "What is 1/2 as a fraction?", "a": "\\frac{1}{2}"}) + "\n"
                    + json.dumps({"q": "Twice 9?", "a": "18"}) + "\n")
    problems = load_problems(DatasetSpec(name="jsonl", path=str(data), kind="math",
                                         fields={"prompt": "q", "answer": "a"})).problems
    groups = [_samples(["so \\boxed{0.5}", "\\boxed{3}", "it is \\boxed{3}", "\\boxed{\\frac{1}{2}}"]),
              _samples(["#### 18", "no idea", "The answer is 18.", "\\boxed{17}"])]
    results, rows = results_and_rows(score_groups(problems, groups, timeout_s=10.0, workers=1))
    assert [r.correct for r in results] == [[True, False, False, True], [True, False, True, False]]
    assert [r["extracted"] for r in rows[:4]] == ["0.5", "3", "3", "\\frac{1}{2}"]
    block = metrics_block({"half": for_voting(problems, results)}, [1, 2, 3, 4], bootstrap=100)["half"]
    # exact maj@k over subsets, ties split. Problem 1: 0.5/\\frac12 (2 votes) vs 3 (2): 1/2 for every k by symmetry.
    # Problem 2: 18 (2), 17 (1), one abstention: k=1 2/4; k=2 {18,18} + 2x{18,None} win, 2x{18,17} tie: 4/6;
    # k=3 {18,18,*} win twice, 2x{18,None,17} tie: 3/4; k=4 18 wins
    assert block["maj@k"] == pytest.approx([(0.5 + 0.5) / 2, (0.5 + 4 / 6) / 2, (0.5 + 0.75) / 2, (0.5 + 1) / 2])
    # pass@k with c=2 of n=4 for both: 1/2, 1 - C(2,2)/C(4,2) = 5/6, 1, 1
    assert block["pass@k"] == pytest.approx([0.5, 5 / 6, 1.0, 1.0])
    assert block["mean_tokens"] == pytest.approx(2.5)
    # Grouping by string instead of by the verifier's equivalence loses the vote at k=4 (3 beats 0.5).
    by_string = summarize({"half": results[:1]}, [4], equiv=str.__eq__, n_resamples=10)["half"]["maj@k"]
    assert by_string == [0.0]
    assert block["pass^k"] == pytest.approx([0.5, 1 / 6, 0.0, 0.0])


def test_maj_at_k_is_left_out_for_datasets_without_extracted_answers():
    from cluster.data.problem import Problem
    from cluster.eval.pass_at_k import ProblemResult

    code = Problem("c/0", "def f():", "assert f() == 1", "code", "c/test")
    res = for_voting([code], [ProblemResult([True, False], [None, None], [3, 4])])
    block = metrics_block({"code": res}, [1, 2], bootstrap=10)["code"]
    assert "maj@k" not in block and block["pass@k"] == [0.5, 1.0]


# ---- config ----------------------------------------------------------------------------------------------


def test_eval_recipe_needs_the_model_on_the_command_line():
    with pytest.raises(ConfigError, match="model.path=HF_DIR"):
        load_eval_config(REPO / "configs" / "eval_local.yaml")
    cfg = load_eval_config(REPO / "configs" / "eval_local.yaml", ["model.path=runs/x/checkpoints/step-000060/hf"])
    assert [m.label for m in cfg.all_models] == ["step-000060"]
    assert cfg.k_values == [1, 2, 4, 8] and cfg.budgets == [64, 128, 256, 512]
    assert cfg.datasets[0].name == "gsm8k"


@pytest.mark.parametrize("change,message", [
    ({"ks": [1, 8]}, "ks=[1, 8]: expected distinct ascending values in 1..sampling.n=4"),
    ({"token_budgets": [64]}, "token_budgets [64]: each budget must be in 1..sampling.max_tokens=32"),
    ({"models": [{"path": "/a/m"}, {"path": "/b/m"}]}, "labels ['m'] occur more than once"),
    ({"model": {"path": "x"}}, "both are set"),
    ({"rollout": {"max_model_len": 40}}, "leaves no room for prompts"),
    ({"budget_forcing": {"enabeld": True}}, "did you mean 'budget_forcing.enabled'"),
])
def test_eval_config_errors_name_the_key_and_the_fix(change, message):
    base = {"models": [{"path": "m"}], "datasets": [{"name": "gsm8k"}], "sampling": {"n": 4, "max_tokens": 32},
            "budget_forcing": {"enabled": True}}
    with pytest.raises(ConfigError) as e:
        validate_eval_config({**base, **change})
    assert message in str(e.value)


@pytest.mark.slow  # measured 20 s (2 cores, loaded)
def test_overlong_prompts_fail_before_any_engine_starts(tmp_path):
    import ray

    from cluster.eval.harness import run_eval

    model = make_tiny_qwen2(str(tmp_path / "m"), seed=0)
    cfg = validate_eval_config({"model": {"path": model}, "datasets": [{"name": "gsm8k", "limit": 2}],
                                "rollout": {"max_model_len": 64}, "sampling": {"n": 2, "max_tokens": 32},
                                "output": {"dir": str(tmp_path / "runs")}})
    with pytest.raises(ConfigError, match=r"dataset gsm8k: prompt 0 .*\(responses reserve 32 tokens"):
        run_eval(cfg)
    assert not ray.is_initialized() and not (tmp_path / "runs").exists()


def test_default_ks_are_powers_of_two_up_to_n():
    cfg = validate_eval_config({"model": {"path": "m"}, "datasets": [{"name": "gsm8k"}], "sampling": {"n": 12}})
    assert cfg.k_values == [1, 2, 4, 8, 12]
