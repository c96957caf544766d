"""What `rlvr submit` changes in a config before it travels: relative paths made absolute against the directory
it is submitted from (a job's working directory is a temporary copy), and token auth switched on when a token is
available. The full flow against a real head is tests/test_submit.py."""
import os
from pathlib import Path

from cluster.config import validate_config
from cluster.submit import absolute_paths, use_token_auth


def test_relative_paths_become_absolute_against_the_submitting_directory(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "data.jsonl").write_text("{}\n")
    (tmp_path / "score.py").write_text("def f(c, p):\n    return 0.0\n")
    spec = {"name": "jsonl", "path": "data.jsonl", "kind": "custom", "reward": "score.py:f",
            "fields": {"prompt": "q", "answer": "a"}}
    cfg = validate_config({"model": {"path": "model"}, "data": {"train": [spec], "eval": [dict(spec, limit=2)]},
                           "train": {"steps": 1, "prompts_per_step": 2}, "sampling": {"n": 2},
                           "output": {"dir": "runs"}})
    out = validate_config(absolute_paths(cfg.model_dump(mode="json"), tmp_path))
    assert out.output.dir == str(tmp_path / "runs")
    assert out.model.path == str(tmp_path / "model")
    for s in out.data.train + out.data.eval:
        assert s.path == str(tmp_path / "data.jsonl") and s.reward == f"{tmp_path / 'score.py'}:f"


def test_hub_ids_and_the_default_prior_cache_are_left_alone(tmp_path):
    cfg = validate_config({"model": {"path": "Qwen/Qwen2.5-0.5B"}, "data": {"train": [{"name": "gsm8k",
                           "split": "train"}]}, "train": {"steps": 1, "prompts_per_step": 2}, "sampling": {"n": 2}})
    out = absolute_paths(cfg.model_dump(mode="json"), tmp_path)
    assert out["model"]["path"] == "Qwen/Qwen2.5-0.5B" and out["data"]["train"][0].get("path") is None
    emb = validate_config({"model": {"embedded": {"cache_dir": "c"}}, "data": {"train": [{"name": "embedded",
                           "split": "train"}]}, "train": {"steps": 1, "prompts_per_step": 2}, "sampling": {"n": 2}})
    assert absolute_paths(emb.model_dump(mode="json"), tmp_path)["model"]["embedded"]["cache_dir"] == \
        str(tmp_path / "c")


def test_token_auth_is_used_when_a_token_is_available(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    assert use_token_auth() is False and "RAY_AUTH_MODE" not in os.environ
    monkeypatch.setenv("RAY_AUTH_TOKEN", "abc")
    assert use_token_auth() is True and os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # an explicit choice is kept
    assert use_token_auth() is False
