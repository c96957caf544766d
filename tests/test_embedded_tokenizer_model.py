"""The embedded tokenizer and model: round trips, and directories that transformers loads back unchanged."""

import pytest

from cluster.embedded.tokenizer import ANSWER_MARKER, VOCAB, build_tokenizer, check_text

TEXT = "Q: 4831+2976\nA: 1+6+0=7:7 3+7+0=10:07 8+9+1=18:807 4+2+1=7:7807 #### 7807"


def test_tokenizer_round_trips_task_text_one_token_per_character():
    tok = build_tokenizer()
    ids = tok(TEXT)["input_ids"]
    assert ids[0] == tok.bos_token_id  # the post-processor adds <bos>, for transformers and vLLM alike
    assert tok.decode(ids, skip_special_tokens=True) == TEXT
    assert len(ids) == 1 + len(TEXT) - len(ANSWER_MARKER) + 1  # `####` is one token
    assert ids.count(VOCAB.index(ANSWER_MARKER)) == 1
    assert tok.unk_token_id not in ids


def test_tokenizer_saved_dir_loads_with_autotokenizer(tmp_path):
    from transformers import AutoTokenizer

    build_tokenizer().save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded(TEXT)["input_ids"] == build_tokenizer()(TEXT)["input_ids"]
    assert (loaded.pad_token_id, loaded.bos_token_id, loaded.eos_token_id) == (0, 1, 2)
    assert loaded.decode(loaded(TEXT)["input_ids"] + [loaded.eos_token_id], skip_special_tokens=True) == TEXT


def test_check_text_names_unknown_characters():
    check_text(TEXT)
    with pytest.raises(ValueError, match=r"\['x'\]"):
        check_text("Q: 2x+1")


def test_model_dir_loads_in_transformers_with_same_outputs(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cluster.embedded.model import build_model

    model = build_model(str(tmp_path), seed=3, size="tiny").eval()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    tok = AutoTokenizer.from_pretrained(tmp_path)  # with config.json present: the model type picks the class
    ids = tok(TEXT, return_tensors="pt")["input_ids"]
    assert tok.decode(ids[0], skip_special_tokens=True) == TEXT  # spaces and newlines survive
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert type(loaded).__name__ == "LlamaForCausalLM"
    assert loaded.config.head_dim == 32  # a head size vLLM's CPU attention accepts
    assert loaded.config.vocab_size == len(VOCAB)


def test_default_model_size_is_tiny_but_not_trivial():
    import torch
    from transformers import LlamaForCausalLM

    from cluster.embedded.model import count_params, model_config

    with torch.device("meta"):
        params = count_params(LlamaForCausalLM(model_config("small")))
    assert 300_000 < params < 3_000_000
    with pytest.raises(ValueError, match="expected one of"):
        model_config("huge")
