"""A character-level tokenizer for the embedded tasks (arithmetic, and the code task's programs), built with the `tokenizers` library.

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
# The code task (cluster/embedded/code_task.py) also writes `# comment` lines and `def f(x): return ...`: its
# vocabulary extends the arithmetic one, which stays as it is so the math prior and its cache are unchanged.
TASK_CHARACTERS = {"arith": CHARACTERS, "code": CHARACTERS + "#()defnrtux"}


def vocab(task: str = "arith") -> list[str]:
    """The token list of a task's tokenizer: special tokens, the marker, then its characters."""
    if task not in TASK_CHARACTERS:
        raise ValueError(f"model.embedded.task={task!r}: expected one of {sorted(TASK_CHARACTERS)}")
    return SPECIAL_TOKENS + [ANSWER_MARKER] + list(TASK_CHARACTERS[task])


def build_tokenizer(task: str = "arith"):
    """A `PreTrainedTokenizerFast` over `vocab(task)`: pad=0, bos=1, eos=2, unk=3, `####`=4, then the characters."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = {tok: i for i, tok in enumerate(vocab(task))}
    core = Tokenizer(models.WordLevel(ids, unk_token=UNK))
    # Split into the marker or single characters ([\s\S] so that newline is a character too).
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"####|[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_special_tokens(SPECIAL_TOKENS)
    core.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, ids[BOS])])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK, model_max_length=4096)


def check_text(text: str, task: str = "arith") -> None:
    """Raise if `text` has a character outside the task's vocabulary (it would become <unk> silently)."""
    chars = TASK_CHARACTERS[task]
    bad = sorted(set(text.replace(ANSWER_MARKER, "")) - set(chars))
    if bad:
        raise ValueError(f"text {text[:60]!r} has characters {bad} outside the embedded {task} vocabulary "
                         f"{chars!r}; add them to cluster.embedded.tokenizer.TASK_CHARACTERS[{task!r}]")
