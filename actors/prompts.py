"""Prompt text -> token ids: the tokenizer's chat template for chat models, a configurable template (default
R1-Zero style) for base models, and the overlong-prompt policy ('error' names the prompt, 'drop' counts it)."""

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
        return list(self.tokenizer(self.cfg.template.replace("{prompt}", prompt))["input_ids"])

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
                raise ValueError(
                    f"prompt {i} ({text[:60]!r}...) has {len(ids)} tokens, but rollout.max_model_len="
                    f"{self.max_model_len} minus sampling.max_tokens={max_tokens} leaves {budget}; shorten it, "
                    "raise rollout.max_model_len, lower sampling.max_tokens, or set rollout.prompt.overlong='drop'")
        return out
