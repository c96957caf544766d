"""actors/ pieces that need no engine: config validation, prompt rendering and the overlong policy, the
weight-sync wire format, batch splitting."""

import pytest
import torch
from pydantic import ValidationError

from actors.config import PromptConfig, RolloutConfig, SamplingConfig
from actors.pool import split_evenly
from actors.prompts import PromptEncoder
from actors.weight_sync import bucket_nbytes, parse_dtype, unflatten_bucket
from tiny_models import STORIES_TOKENIZER


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(STORIES_TOKENIZER)


def test_config_rejects_unknown_keys_and_impossible_values():
    with pytest.raises(ValidationError, match="kv_cache_gb"):
        RolloutConfig(kv_cache_gb=1)
    with pytest.raises(ValidationError, match="tensor_parallel_size=2 needs rollout.device='cuda'"):
        RolloutConfig(tensor_parallel_size=2)
    with pytest.raises(ValidationError, match="n"):
        SamplingConfig(n=0)
    with pytest.raises(ValidationError, match=r"exactly once, found 0"):
        PromptConfig(template="no placeholder")
    with pytest.raises(ValidationError, match="num_engines"):
        RolloutConfig(num_engines=0)


def test_base_template_renders_prompt_inside_template(tokenizer):
    enc = PromptEncoder(tokenizer, PromptConfig(template="User: {prompt}\nAssistant:"), max_model_len=512)
    ids = enc.encode(["Lily saw a cat."], max_tokens=16).token_ids[0]
    assert ids == tokenizer("User: Lily saw a cat.\nAssistant:")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "User: Lily saw a cat.\nAssistant:"


def test_default_template_is_r1_zero_style_and_ends_in_think(tokenizer):
    enc = PromptEncoder(tokenizer, PromptConfig(), max_model_len=512)
    text = tokenizer.decode(enc.encode(["2+2?"], max_tokens=8).token_ids[0], skip_special_tokens=True)
    assert "User: 2+2?" in text and text.endswith("Assistant: <think>")


def test_chat_format_uses_tokenizer_chat_template(tokenizer):
    chat_tok = type(tokenizer).from_pretrained(STORIES_TOKENIZER)
    chat_tok.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
                              "{% if add_generation_prompt %}<assistant>{% endif %}")
    enc = PromptEncoder(chat_tok, PromptConfig(format="chat", system="Be brief."), max_model_len=512)
    ids = enc.encode(["hi"], max_tokens=8).token_ids[0]
    assert ids == chat_tok("<system>Be brief.<user>hi<assistant>", add_special_tokens=False)["input_ids"]


def test_chat_format_without_chat_template_is_a_clear_error(tokenizer):
    with pytest.raises(ValueError, match="has no chat template; use rollout.prompt.format='base'"):
        PromptEncoder(tokenizer, PromptConfig(format="chat"), max_model_len=512)


def test_overlong_prompt_error_names_the_prompt(tokenizer):
    enc = PromptEncoder(tokenizer, PromptConfig(template="{prompt}"), max_model_len=64)
    with pytest.raises(ValueError, match=r"prompt 1 .* tokens, but rollout.max_model_len=64 minus "
                                         r"sampling.max_tokens=16 leaves 48.*overlong='drop'"):
        enc.encode(["short", "word " * 60, "short too"], max_tokens=16)


def test_overlong_prompt_drop_policy_keeps_the_rest_and_counts(tokenizer):
    enc = PromptEncoder(tokenizer, PromptConfig(template="{prompt}", overlong="drop"), max_model_len=64)
    out = enc.encode(["short", "word " * 60, "short too", "word " * 70], max_tokens=16)
    assert out.kept == [0, 2] and out.dropped == [1, 3]
    assert out.token_ids == [tokenizer("short")["input_ids"], tokenizer("short too")["input_ids"]]


def test_unflatten_bucket_recovers_mixed_dtype_tensors_at_odd_offsets():
    tensors = [("a", torch.randn(3, 5)), ("b", torch.randn(7).to(torch.bfloat16)), ("c", torch.randn(2, 2, 3)),
               ("d", torch.arange(5, dtype=torch.int64))]
    meta = [(n, str(t.dtype), list(t.shape)) for n, t in tensors]  # 'torch.float32' form is accepted too
    flat = torch.cat([t.reshape(-1).view(torch.uint8) for _, t in tensors])
    assert bucket_nbytes(meta) == flat.numel()
    for (name, want), (got_name, got) in zip(tensors, unflatten_bucket(meta, flat)):
        assert got_name == name and got.dtype == want.dtype and torch.equal(got, want)


def test_unflatten_bucket_rejects_size_mismatch_and_unknown_dtype():
    with pytest.raises(ValueError, match="has 10 bytes, meta describes 12"):
        unflatten_bucket([("a", "float32", [3])], torch.zeros(10, dtype=torch.uint8))
    with pytest.raises(ValueError, match="'float33' is not a torch dtype"):
        parse_dtype("float33")


def test_split_evenly_is_contiguous_balanced_and_complete():
    for items, parts in [(10, 3), (2, 4), (0, 2), (7, 1)]:
        shards = split_evenly(items, parts)
        assert len(shards) == parts
        assert [i for s in shards for i in s] == list(range(items))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
