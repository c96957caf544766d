"""A character-level tokenizer for the embedded arithmetic tasks, built with the `tokenizers` library.

One token per character, plus `####` (the final-answer marker) as a single token so that "writes the marker"
is one decision of the policy. Saved as a transformers fast tokenizer (tokenizer.json + tokenizer_config.json),
which both transformers (`AutoTokenizer`) and vLLM load. Encoding adds `<bos>` in front (the post-processor),
so prompts rendered by either library start the same way; decoding concatenates characters (`Fuse`).

    tok = build_tokenizer(); tok.save_pretrained(model_dir)
"""

from __future__ import annotations

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]  # ids 0..3, in this order
ANSWER_MARKER = "####"
# Every character the task texts use; tasks.py checks its texts against this set.
CHARACTERS = "0123456789+-*=,.:;? \nQA"
VOCAB = SPECIAL_TOKENS + [ANSWER_MARKER] + list(CHARACTERS)


def build_tokenizer():
    """A `PreTrainedTokenizerFast` over VOCAB: pad=0, bos=1, eos=2, unk=3, `####`=4, then the characters."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(VOCAB)}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    # Split into the marker or single characters ([\s\S] so that newline is a character too).
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"####|[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_special_tokens(SPECIAL_TOKENS)
    core.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK, model_max_length=4096)


def check_text(text: str) -> None:
    """Raise if `text` has a character outside the vocabulary (it would become <unk> silently)."""
    bad = sorted(set(text.replace(ANSWER_MARKER, "")) - set(CHARACTERS))
    if bad:
        raise ValueError(f"text {text[:60]!r} has characters {bad} outside the embedded vocabulary "
                         f"{CHARACTERS!r}; add them to cluster.embedded.tokenizer.CHARACTERS")
