"""The run config rejects bad recipes with messages that name the key, the value and the fix."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cluster.config import load_config, validate_config
from cluster.config_error import ConfigError
from cluster.overrides import apply_overrides

REPO = Path(__file__).resolve().parent.parent

BASE = {
    "model": {"path": "some/model"},
    "data": {"train": [{"name": "gsm8k", "split": "train"}]},
    "sampling": {"n": 4, "temperature": 1.0},
    "train": {"steps": 2, "prompts_per_step": 4},
}


def write(tmp_path, data) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def error_of(data) -> str:
    with pytest.raises(ConfigError) as e:
        validate_config(data)
    return str(e.value)


def test_valid_config_loads_with_defaults(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.sampling.n == 4 and cfg.algo.advantage == "grpo" and cfg.learner.num_ranks == 1


def test_overrides_are_parsed_as_yaml_scalars(tmp_path):
    cfg = load_config(write(tmp_path, BASE), ["sampling.n=8", "algo.advantage=rloo", "train.dynamic_sampling=true",
                                              "sampling.stop=[a, b]", "learner.lr=3e-5"])
    assert cfg.sampling.n == 8 and cfg.algo.advantage == "rloo" and cfg.train.dynamic_sampling is True
    assert cfg.sampling.stop == ["a", "b"] and cfg.learner.lr == pytest.approx(3e-5)


def test_unknown_key_suggests_the_closest_valid_key():
    msg = error_of(apply_overrides(BASE, ["sampling.temprature=0.5"]))
    assert "sampling.temprature" in msg and "did you mean 'sampling.temperature'" in msg


def test_unknown_section_suggests_the_closest_section():
    msg = error_of(apply_overrides(BASE, ["learnr.lr=1"]))
    assert "learnr" in msg and "did you mean 'learner'" in msg


def test_wrong_type_names_key_and_value():
    msg = error_of(apply_overrides(BASE, ["sampling.n=many"]))
    assert "sampling.n='many'" in msg and "integer" in msg


def test_literal_lists_allowed_values():
    msg = error_of(apply_overrides(BASE, ["algo.advantage=ppo2"]))
    assert "algo.advantage='ppo2'" in msg and "'grpo'" in msg and "'rloo'" in msg


def test_batch_not_divisible_into_mini_batches_is_rejected():
    msg = error_of(apply_overrides(BASE, ["learner.mini_batches=3"]))
    assert "learner.mini_batches" in msg and "16 samples" in msg


def test_mini_batch_splitting_a_group_is_rejected():
    msg = error_of(apply_overrides(BASE, ["train.prompts_per_step=2", "sampling.n=4", "learner.mini_batches=4"]))
    assert "split groups" in msg


def test_group_advantage_needs_n_at_least_two():
    msg = error_of(apply_overrides(BASE, ["sampling.n=1"]))
    assert "sampling.n must be >= 2" in msg


def test_more_gpus_than_exist_is_rejected():
    msg = error_of(apply_overrides(BASE, ["rollout.device=cuda", "rollout.num_engines=4", "learner.num_ranks=4",
                                          "ray.num_gpus=6"]))
    assert "needs 8 GPUs" in msg and "ray.num_gpus=6" in msg


def test_learner_temperature_follows_sampling_and_engine_logprobs_are_processed():
    cfg = validate_config(apply_overrides(BASE, ["sampling.temperature=0.7"]))
    assert cfg.learner.temperature == 0.7 and cfg.rollout.logprobs_mode == "processed_logprobs"
    msg = error_of(apply_overrides(BASE, ["sampling.temperature=0.7", "learner.temperature=1.0"]))
    assert "learner.temperature=1.0" in msg and "sampling.temperature=0.7" in msg
    msg = error_of(apply_overrides(BASE, ["sampling.temperature=0.7", "rollout.logprobs_mode=raw_logprobs"]))
    assert "rollout.logprobs_mode='processed_logprobs'" in msg


def test_truncated_sampling_with_is_correction_is_refused():
    for extra in ("sampling.top_p=0.9", "sampling.top_k=20"):
        msg = error_of(apply_overrides(BASE, ["algo.tis_cap=2.0", extra]))
        assert "algo.tis_cap=2.0" in msg and "sampling.top_p" in msg and "sampling.top_k" in msg
    msg = error_of(apply_overrides(BASE, ["train.schedule=async", "sampling.top_p=0.9"]))
    assert "defaults it to 2.0" in msg
    assert validate_config(apply_overrides(BASE, ["train.schedule=async", "sampling.top_p=0.9",
                                                  "algo.tis_cap=null"])).algo.tis_cap is None


def test_async_defaults_the_is_correction_on_and_max_staleness_is_gone():
    assert validate_config(apply_overrides(BASE, ["train.schedule=async"])).algo.tis_cap == 2.0
    assert validate_config(BASE).algo.tis_cap is None
    assert "train.max_staleness" in error_of(apply_overrides(BASE, ["train.max_staleness=1"]))


def test_dr_grpo_normaliser_defaults_to_the_generation_budget():
    cfg = validate_config(apply_overrides(BASE, ["algo.loss_agg=seq_mean_token_sum_norm", "sampling.max_tokens=300"]))
    assert cfg.algo.loss_norm_len == 300
    cfg = validate_config(apply_overrides(BASE, ["algo.loss_agg=seq_mean_token_sum_norm", "algo.loss_norm_len=64"]))
    assert cfg.algo.loss_norm_len == 64


def test_model_needs_exactly_one_source():
    msg = error_of(apply_overrides(BASE, ["model.path=null"]))
    assert "model.path" in msg and "model.embedded" in msg


def test_bad_override_syntax_is_explained():
    with pytest.raises(ConfigError, match="KEY.PATH=VALUE"):
        apply_overrides(BASE, ["sampling.n"])


def test_missing_file_is_explained(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cluster.cli", *args], capture_output=True, text=True, cwd=REPO)


def test_cli_help_lists_every_subcommand():
    out = run_cli("--help")
    assert out.returncode == 0
    for cmd in ("train", "eval", "submit", "config", "plot", "plan"):
        assert cmd in out.stdout
    for cmd in ("train", "eval", "submit", "plot", "plan"):
        sub = run_cli(cmd, "--help")
        assert sub.returncode == 0 and "usage: rlvr" in sub.stdout


def test_cli_config_show_prints_resolved_config_and_fails_cleanly(tmp_path):
    path = write(tmp_path, BASE)
    ok = run_cli("config", "show", str(path), "sampling.n=2")
    assert ok.returncode == 0 and yaml.safe_load(ok.stdout)["sampling"]["n"] == 2
    bad = run_cli("config", "show", str(path), "sampling.n=0")
    assert bad.returncode == 2 and "sampling.n=0" in bad.stderr and "Traceback" not in bad.stderr


def test_overrides_address_list_items_by_index():
    data = apply_overrides(BASE, ["data.train.0.limit=5"])
    assert validate_config(data).data.train[0].limit == 5
    with pytest.raises(ConfigError, match="index below 1"):
        apply_overrides(BASE, ["data.train.3.limit=5"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides(BASE, ["sampling.n.x=1"])


def test_cli_config_show_reads_eval_configs_and_prints_no_split_for_jsonl(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"q": "1+1=", "a": "2"}\n')
    jsonl = {"name": "jsonl", "path": str(data), "kind": "math", "fields": {"prompt": "q", "answer": "a"}}
    ev = run_cli("config", "show", str(REPO / "configs" / "eval_local.yaml"), "model.path=some/model",
                 f"datasets=[{yaml.safe_dump(jsonl, default_flow_style=True).strip()}]")
    assert ev.returncode == 0, ev.stderr
    shown = yaml.safe_load(ev.stdout)
    assert shown["model"]["path"] == "some/model" and shown["datasets"][0]["path"] == str(data)
    assert "split" not in shown["datasets"][0]
    train = run_cli("config", "show", str(write(tmp_path, {**BASE, "data": {"train": [jsonl]}})))
    assert train.returncode == 0 and "split" not in yaml.safe_load(train.stdout)["data"]["train"][0]
    assert validate_config(yaml.safe_load(train.stdout)).data.train[0].path == str(data)  # still loads
    bad = run_cli("config", "show", str(REPO / "configs" / "eval_local.yaml"), "ks=[0]")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("override", ["eval.ks=[1]", "eval.token_budgets=[64]", "eval.budget_forcing=true",
                                      "eval.bootstrap=100"])
def test_training_eval_section_has_no_keys_training_would_ignore(override):
    # pass@k, budgets and bootstrap are `rlvr eval`'s settings; the training loop logs accuracy and length only
    assert override.split("=")[0] in error_of(apply_overrides(BASE, [override]))


@pytest.mark.parametrize("key,value,allowed", [("task", "sorting", "'arith'"),
                                               ("size", "huge", "'tiny', 'small' or 'medium'")])
def test_embedded_task_and_size_are_checked_when_the_config_loads(key, value, allowed):
    data = apply_overrides(BASE, ["model.path=null", f"model.embedded.{key}={value}"])
    msg = error_of(data)
    assert f"model.embedded.{key}={value!r}" in msg and allowed in msg
