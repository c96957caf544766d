"""Bringing your own model and data: path resolution, the user cache, the plain prompt format, and the start-up
checks that run before Ray (every prompt tokenized, optional integrations, the forcing string)."""
import json

import pytest
from tiny_models import STORIES_TOKENIZER as STORIES_DIR

from actors.config import PromptConfig
from actors.prompts import PromptEncoder, check_round_trip
from cluster.config import validate_config
from cluster.config_error import ConfigError
from cluster.data.loaders import load_problems
from cluster.data.problem import DatasetError
from cluster.data.spec import DatasetSpec
from cluster.paths import prior_cache_dir, resolve_model_path, user_cache_dir
from cluster.preflight import check_integrations, fit_prompts


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(STORIES_DIR)


def test_plain_format_sends_the_prompt_as_it_is(tokenizer):
    plain = PromptEncoder(tokenizer, PromptConfig(format="plain"), max_model_len=512)
    assert plain.encode(["Lily saw a cat."], 16).token_ids[0] == tokenizer("Lily saw a cat.")["input_ids"]
    with pytest.raises(ValueError, match="format='plain' uses no template"):
        PromptConfig(format="plain", template="Q: {prompt}")


def test_overlong_error_shows_the_templates_share(tokenizer):
    enc = PromptEncoder(tokenizer, PromptConfig(), max_model_len=100)  # the R1-Zero template
    template_tokens = len(enc.render(""))
    with pytest.raises(ValueError, match=rf"prompt 0 .* tokens \({template_tokens} of them from "
                                         r"rollout.prompt.template; rollout.prompt.format='plain'"):
        enc.encode(["Lily saw a cat."], max_tokens=32)


def test_forcing_string_must_round_trip_through_the_tokenizer(tokenizer):
    from cluster.embedded.tokenizer import build_tokenizer
    from cluster.eval.budget_forcing import DEFAULT_FORCING

    with pytest.raises(ValueError, match=r"budget_forcing.forcing=.* does not round-trip.*decodes to"):
        check_round_trip(build_tokenizer(), DEFAULT_FORCING, "budget_forcing.forcing")  # character vocab: <unk>
    assert check_round_trip(build_tokenizer(), " #### ", "budget_forcing.forcing") is None
    assert check_round_trip(tokenizer, DEFAULT_FORCING, "budget_forcing.forcing") is None  # byte fallback spells it


def problems_from(tmp_path, prompts):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"q": q, "a": "1"}) + "\n" for q in prompts))
    spec = DatasetSpec(name="jsonl", path=str(data), kind="math", fields={"prompt": "q", "answer": "a"})
    return data, load_problems(spec).problems


def test_every_overlong_prompt_is_named_by_file_and_line_before_anything_starts(tmp_path, tokenizer):
    data, problems = problems_from(tmp_path, ["short", "word " * 80, "short too", "word " * 90])
    enc = PromptEncoder(tokenizer, PromptConfig(format="plain"), max_model_len=64)
    with pytest.raises(ConfigError, match=rf"data.train: 2 of 4 prompts do not fit; rollout.max_model_len=64 "
                                          rf"minus sampling.max_tokens=16 leaves 48(.|\n)*{data}:2 (.|\n)*{data}:4 "):
        fit_prompts(enc, problems, 16, "data.train")
    drop = PromptEncoder(tokenizer, PromptConfig(format="plain", overlong="drop"), max_model_len=64)
    assert [p.prompt for p in fit_prompts(drop, problems, 16, "data.train")] == ["short", "short too"]


def test_wandb_is_checked_before_anything_starts():
    cfg = validate_config({"model": {"path": "m"}, "data": {"train": [{"name": "gsm8k", "split": "test"}]},
                           "train": {"steps": 1, "prompts_per_step": 2}, "sampling": {"n": 2},
                           "output": {"wandb_project": "p"}})
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(ConfigError, match=r"output.wandb_project='p' needs the wandb package.*rlvr\[wandb\]"):
            check_integrations(cfg)
    else:
        check_integrations(cfg)


def test_relative_model_path_resolves_against_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("my-model") == str(tmp_path / "my-model")
    with pytest.raises(ConfigError, match=r"'./nope'.*does not exist.*not tried as a hub id"):
        resolve_model_path("./nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"'someone/no-such-model'.*does not exist.*tried as a hub id, that failed"):
        resolve_model_path("someone/no-such-model")


def test_prior_cache_is_per_user_and_overridable(tmp_path, monkeypatch):
    monkeypatch.delenv("RLVR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert prior_cache_dir(None) == tmp_path / "xdg" / "rlvr" / "priors"
    monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"
    monkeypatch.chdir(tmp_path)
    assert prior_cache_dir("rel/priors") == tmp_path / "rel" / "priors"  # explicit: against the working dir
    cfg = validate_config({"model": {"embedded": {}}, "data": {"train": [{"name": "embedded", "split": "train"}]},
                           "train": {"steps": 1, "prompts_per_step": 2}, "sampling": {"n": 2}})
    assert cfg.model.embedded.cache_dir is None


def test_relative_jsonl_path_resolves_against_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "p.jsonl").write_text(json.dumps({"q": "1+1", "a": "2"}) + "\n")
    monkeypatch.chdir(tmp_path)
    spec = DatasetSpec(name="jsonl", path="d/p.jsonl", kind="math", fields={"prompt": "q", "answer": "a"})
    assert load_problems(spec).problems[0].origin == f"{tmp_path / 'd' / 'p.jsonl'}:1"
    missing = spec.model_copy(update={"path": "d/nope.jsonl"})
    with pytest.raises(DatasetError, match=r"'d/nope.jsonl' not found in the working directory .* nor under the "
                                           "data root"):
        load_problems(missing)
