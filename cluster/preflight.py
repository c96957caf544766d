"""Start-up checks that need no Ray: everything that can fail early fails here, before any actor starts.

Every training and evaluation prompt is rendered and tokenized once, so an overlong prompt is named by file and
line now instead of when it is drawn mid-run (or dropped with a count under rollout.prompt.overlong='drop'), and
optional integrations the config asks for are imported up front.
"""
from __future__ import annotations

import importlib.util

from cluster.config_error import ConfigError

SHOWN = 5  # offenders listed in an error


def check_integrations(cfg) -> None:
    """Optional packages the config uses must import now, not after the actors started."""
    if cfg.output.wandb_project and importlib.util.find_spec("wandb") is None:
        raise ConfigError(f"output.wandb_project={cfg.output.wandb_project!r} needs the wandb package, which is not "
                          "installed: pip install 'rlvr[wandb]' (WANDB_MODE=offline logs without an account), or "
                          "remove output.wandb_project")


def fit_prompts(encoder, problems: list, max_tokens: int, what: str) -> list:
    """The problems whose rendered prompt leaves `max_tokens` of room in rollout.max_model_len. Overlong ones raise
    a ConfigError naming file:line of each (up to SHOWN), or are dropped with a count under overlong='drop'."""
    budget = encoder.max_model_len - max_tokens
    lengths = encoder.lengths([p.prompt for p in problems])
    bad = [(p, n) for p, n in zip(problems, lengths) if n > budget]
    if not bad:
        return problems
    if encoder.cfg.overlong == "drop":
        print(f"{what}: dropped {len(bad)} of {len(problems)} prompts longer than rollout.max_model_len="
              f"{encoder.max_model_len} minus {max_tokens} response tokens (rollout.prompt.overlong='drop'; "
              f"first: {bad[0][0].origin or bad[0][0].id})", flush=True)
        keep = {id(p) for p, _ in bad}
        kept = [p for p in problems if id(p) not in keep]
        if not kept:
            raise ConfigError(f"{what}: every prompt is overlong; raise rollout.max_model_len or lower "
                              "sampling.max_tokens")
        return kept
    lines = [encoder.describe(p.prompt, n, p.origin or p.id) for p, n in bad[:SHOWN]]
    lines += [f"... and {len(bad) - SHOWN} more"] if len(bad) > SHOWN else []
    raise ConfigError(f"{what}: {len(bad)} of {len(problems)} prompts do not fit; {encoder.advice(max_tokens)}:\n  "
                      + "\n  ".join(lines))


def check_prompts(cfg, model_path: str, train: list, evals: list) -> tuple[list, list]:
    """(train, eval) problems after the length check of every prompt with the model's tokenizer and template."""
    from actors.prompts import PromptEncoder

    try:
        encoder = PromptEncoder.from_pretrained(model_path, cfg.rollout.prompt, cfg.rollout.max_model_len)
    except ValueError as e:  # e.g. format='chat' without a chat template
        raise ConfigError(str(e)) from None
    eval_tokens = (cfg.eval.sampling or cfg.sampling).max_tokens
    return (fit_prompts(encoder, train, cfg.sampling.max_tokens, "data.train"),
            fit_prompts(encoder, evals, eval_tokens, "data.eval") if evals else evals)
