"""Prompt text -> token ids: the tokenizer's chat template for chat models, a configurable template (default
R1-Zero style) for base models, the prompt as it is ('plain'), and the overlong-prompt policy ('error' names the
prompt and how much of it the template makes up, 'drop' counts it)."""

from dataclasses import dataclass

from actors.config import PromptConfig


@dataclass
class EncodedPrompts:
    """Token ids of the prompts that fit, and which inputs they came from."""

    token_ids: list[list[int]]
    kept: list[int]  # input index of each entry of token_ids
    dropped: list[int]  # input indices dropped as overlong (policy 'drop')


class PromptEncoder:
    """Renders and tokenizes prompts; prompt + max_tokens must fit into max_model_len."""

    def __init__(self, tokenizer, cfg: PromptConfig, max_model_len: int):
        if cfg.format == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"rollout.prompt.format='chat' but the tokenizer {getattr(tokenizer, 'name_or_path', '')!r} "
                "has no chat template; use rollout.prompt.format='base' with rollout.prompt.template")
        self.tokenizer, self.cfg, self.max_model_len = tokenizer, cfg, max_model_len

    @classmethod
    def from_pretrained(cls, model_path: str, cfg: PromptConfig, max_model_len: int) -> "PromptEncoder":
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(model_path), cfg, max_model_len)

    def render(self, prompt: str) -> list[int]:
        if self.cfg.format == "chat":
            messages = ([{"role": "system", "content": self.cfg.system}] if self.cfg.system else [])
            messages.append({"role": "user", "content": prompt})
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        # A base model sees the template as plain text; the tokenizer adds BOS if it is configured to.
        text = prompt if self.cfg.format == "plain" else self.cfg.template.replace("{prompt}", prompt)
        return list(self.tokenizer(text)["input_ids"])

    def lengths(self, prompts: list[str]) -> list[int]:
        """Token count of each rendered prompt (batched: a start-up check tokenizes whole datasets)."""
        if self.cfg.format == "chat":
            return [len(self.render(p)) for p in prompts]
        texts = prompts if self.cfg.format == "plain" else [self.cfg.template.replace("{prompt}", p) for p in prompts]
        return [len(ids) for ids in self.tokenizer(texts)["input_ids"]] if texts else []

    def overhead(self) -> int:
        """Tokens the format adds around a prompt (template or chat markup, BOS): those of an empty prompt."""
        return len(self.render(""))

    def describe(self, text: str, n_tokens: int, where: str) -> str:
        """'<where> ('text'...) has N tokens (T of them from the template)': the template's share shows when the
        format, not the prompt, is what does not fit."""
        share = ""
        if self.cfg.format == "chat" or (self.cfg.format == "base" and self.cfg.template != "{prompt}"):
            what = "rollout.prompt.template" if self.cfg.format == "base" else "the chat template"
            share = f" ({self.overhead()} of them from {what}"
            share += "; rollout.prompt.format='plain' sends the prompt as it is)" if self.cfg.format == "base" else ")"
        return f"{where} ({text[:60]!r}...) has {n_tokens} tokens{share}"

    def advice(self, max_tokens: int) -> str:
        return (f"rollout.max_model_len={self.max_model_len} minus sampling.max_tokens={max_tokens} leaves "
                f"{self.max_model_len - max_tokens}; shorten it, raise rollout.max_model_len, lower "
                "sampling.max_tokens, or set rollout.prompt.overlong='drop'")

    def encode(self, prompts: list[str], max_tokens: int) -> EncodedPrompts:
        """Token ids for each prompt; overlong ones raise or are dropped per `rollout.prompt.overlong`."""
        budget = self.max_model_len - max_tokens
        out = EncodedPrompts([], [], [])
        for i, text in enumerate(prompts):
            ids = self.render(text)
            if len(ids) <= budget:
                out.token_ids.append(ids)
                out.kept.append(i)
            elif self.cfg.overlong == "drop":
                out.dropped.append(i)
            else:
                raise ValueError(f"{self.describe(text, len(ids), f'prompt {i}')}, but {self.advice(max_tokens)}")
        return out


def check_round_trip(tokenizer, text: str, key: str) -> str | None:
    """`text` must survive tokenize -> decode, or the model is fed something else than what is logged (e.g.
    '<unk>' for characters the vocabulary lacks): raises ValueError naming `key`. Returns a warning when only
    surrounding whitespace changes (some tokenizers add or drop a leading space)."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    back = tokenizer.decode(ids)
    unk = getattr(tokenizer, "unk_token_id", None)
    where = f"{key}={text!r} does not round-trip through the tokenizer of {getattr(tokenizer, 'name_or_path', '')!r}"
    if (unk is not None and unk in ids) or back.strip() != text.strip():
        raise ValueError(f"{where}: it decodes to {back!r} (ids {ids[:20]}); set {key} to text the vocabulary "
                         "can spell")
    return f"{where}: whitespace differs, it decodes to {back!r}" if back != text else None
