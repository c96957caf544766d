"""Test-only model builders: tiny random Qwen2 causal LMs written as HF directories (also used by bench/).

The tokenizer is stories260K's (512-token vocab), shipped in tests/fixtures/stories260K-tokenizer; the weights
are random. Head size 32 (learner tests) or 64 (actor tests) is one vLLM's CPU attention takes.
"""

import shutil
from pathlib import Path

STORIES_TOKENIZER = Path(__file__).resolve().parent / "fixtures" / "stories260K-tokenizer"


def make_tiny_qwen2(out_dir, seed: int = 0, hidden: int = 64, layers: int = 2, vocab: int = 512,
                    tokenizer_dir=STORIES_TOKENIZER, heads: int = 2, kv_heads: int = 1,
                    intermediate: int | None = None, init_std: float = 0.02) -> str:
    """Write config + random weights (~110K params by default) + tokenizer files (unless tokenizer_dir is None)
    to out_dir; returns out_dir. `intermediate` defaults to 2 * hidden; `init_std` is the init scale."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate or 2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0, initializer_range=init_std)
    torch.manual_seed(seed)
    Qwen2ForCausalLM(config).save_pretrained(str(out_dir))
    if tokenizer_dir is not None:
        for path in Path(tokenizer_dir).iterdir():
            shutil.copy(path, Path(out_dir) / path.name)
    return str(out_dir)


def make_tiny_llama(out_dir, seed: int = 0, hidden: int = 64, layers: int = 2, heads: int = 2,
                    init_std: float = 0.02) -> str:
    """A tiny random Llama with the stories260K tokenizer. For tests whose text must survive the tokenizer (e.g. a
    budget-forcing string): transformers loads a qwen2-config directory's tokenizer as Qwen2Tokenizer, which over
    this Llama vocabulary drops whitespace and braces; a llama config keeps the tokenizer's own pipeline."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=512, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=1, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                         initializer_range=init_std)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(str(out_dir))
    for path in STORIES_TOKENIZER.iterdir():
        shutil.copy(path, Path(out_dir) / path.name)
    return str(out_dir)


def build_tiny_qwen2(out_dir, hidden: int = 128, layers: int = 2, heads: int = 2, kv_heads: int = 1,
                     intermediate: int = 256, init_std: float = 0.1, seed: int = 0) -> Path:
    """The actor tests' model: head size 64 (hidden 128, 2 heads) and larger init weights, so sampling varies."""
    return Path(make_tiny_qwen2(out_dir, seed=seed, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
                                intermediate=intermediate, init_std=init_std))


def tool_prior(cache_dir: str = "/tmp/rlvr-test-priors") -> str:
    """A 43K-parameter embedded prior whose corpus answers half its problems with a calculator call
    (`?a+b;=sum. #### sum`): multi-turn tests need a model that writes calls. ~1 min once, then cached."""
    from cluster.embedded.pretrain import PretrainConfig, pretrain
    from cluster.embedded.tasks import CorpusMix

    cfg = PretrainConfig(size="tiny", steps=400, corpus_size=4000, mix=CorpusMix(tool=0.5))
    return str(pretrain(cfg, cache_dir, progress=False))
