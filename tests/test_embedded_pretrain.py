"""Pre-training the prior: loss only on responses, it learns, and the cache makes a second run free."""

import torch

from cluster.embedded.pretrain import PretrainConfig, cached_stats, pad_pairs, pretrain
from cluster.embedded.tasks import CorpusMix

TINY = dict(size="tiny", steps=40, batch=16, corpus_size=200, lr=3e-3, warmup=5)


def test_pad_pairs_masks_prompt_and_padding_out_of_the_loss():
    ids, mask, labels = pad_pairs([([1, 5, 6], [7, 2]), ([1, 5], [8, 9, 2])], pad_id=0)
    assert ids.tolist() == [[1, 5, 6, 7, 2], [1, 5, 8, 9, 2]]
    assert labels.tolist() == [[-100, -100, -100, 7, 2], [-100, -100, 8, 9, 2]]
    assert mask.sum().item() == 10


def test_pretrain_lowers_loss_and_second_call_hits_the_cache(tmp_path):
    cfg = PretrainConfig(**TINY)
    path = pretrain(cfg, tmp_path, progress=False)
    stats = cached_stats(path)["stats"]
    assert stats["final_loss"] < 2.6  # untrained: ln(vocab=28) ~ 3.3 nats per token
    weights = path / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert pretrain(cfg, tmp_path, progress=False) == path
    assert weights.stat().st_mtime_ns == stamp  # not retrained
    other = pretrain(PretrainConfig(**{**TINY, "steps": 2}), tmp_path, progress=False)
    assert other != path and sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, other.name])


def test_cache_key_covers_every_setting():
    base = PretrainConfig(**TINY)
    changed = [PretrainConfig(**{**TINY, "seed": 1}), PretrainConfig(**{**TINY, "digits": 3}),
               PretrainConfig(**TINY, mix=CorpusMix(cot=0.5)), PretrainConfig(**TINY, mix=CorpusMix(answer_form="none"))]
    assert len({base.key()} | {c.key() for c in changed}) == 5
    assert PretrainConfig(**TINY).key() == base.key()


def test_prior_is_loadable_by_transformers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = pretrain(PretrainConfig(**{**TINY, "steps": 1}), tmp_path, progress=False)
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    out = model.generate(tok("Q: 1234+5678\nA: ", return_tensors="pt")["input_ids"], max_new_tokens=3, do_sample=False)
    assert out.shape[1] == 1 + 16 + 3 and torch.all(out >= 0)


def test_prepare_prior_maps_the_run_config(tmp_path):
    from cluster.config import EmbeddedModelConfig
    from cluster.embedded.prior import prepare_prior, pretrain_config

    cfg = EmbeddedModelConfig(size="tiny", prior="no_answer_form", pretrain_steps=2, pretrain_batch=4,
                              corpus_size=20, cache_dir=str(tmp_path))
    assert pretrain_config(cfg, seed=0).mix.answer_form == "none"
    path = prepare_prior(cfg, seed=0, progress=False)
    assert cached_stats(path)["config"]["mix"]["answer_form"] == "none"
