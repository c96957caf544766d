"""Pre-train the embedded prior: next-token SFT on the procedural corpus, loss on the response tokens only.

Plain torch on one process (the default model has 790,912 parameters; DeepSpeed would add start-up time and nothing else).
The result is cached on disk under a hash of every setting that changes it, so a second run loads it at once.

    path = pretrain(PretrainConfig(steps=1500), cache_dir=".cache/rlvr/priors")   # an HF model directory
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from cluster.embedded.code_task import CodeMix
from cluster.embedded.tasks import TOOL_FORMAT, CorpusMix, corpus

CACHE_VERSION = 1  # bump when the corpus or training code changes what a given config produces
DONE_FILE = "prior.json"  # written last: a directory without it is an interrupted run


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines the prior (all of it goes into the cache key)."""

    task: str = "arith"  # 'arith' (cluster/embedded/tasks.py) or 'code' (cluster/embedded/code_task.py)
    size: str = "small"  # cluster.embedded.model.SIZES
    seed: int = 0
    steps: int = 1500
    lr: float = 3e-3  # peak; linear warm-up, then linear decay to lr / 10
    warmup: int = 30
    batch: int = 64  # sequences per step
    corpus_size: int = 20000
    digits: int = 4
    mix: CorpusMix | CodeMix = field(default_factory=CorpusMix)  # CodeMix for task 'code'

    def __post_init__(self):
        for name in ("steps", "batch", "corpus_size", "digits"):
            if getattr(self, name) < 1:
                raise ValueError(f"pretrain {name}={getattr(self, name)}: expected a positive integer")
        if not self.lr > 0:
            raise ValueError(f"pretrain lr={self.lr}: expected > 0")
        mix_type = {"arith": CorpusMix, "code": CodeMix}.get(self.task)
        if mix_type is None or not isinstance(self.mix, mix_type):
            raise ValueError(f"pretrain task={self.task!r} with a {type(self.mix).__name__}: expected task 'arith' "
                             f"with a CorpusMix or 'code' with a CodeMix")

    def key(self) -> str:
        """Short hash of the settings (and CACHE_VERSION): the cache directory name."""
        settings = dataclasses.asdict(self)
        if self.task == "arith":  # keys of arithmetic priors predate the task field: keep them (and their caches)
            del settings["task"]
        if "tool" in settings["mix"] and not settings["mix"]["tool"]:  # added later: priors without tool calls
            del settings["mix"]["tool"]                                # keep their cache keys
        elif settings["mix"].get("tool"):
            settings["tool_format"] = TOOL_FORMAT
        blob = json.dumps({"version": CACHE_VERSION, **settings}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def task_corpus(cfg: PretrainConfig) -> list[dict]:
    """The pre-training rows of the configured task."""
    if cfg.task == "code":
        from cluster.embedded.code_task import corpus as code_corpus

        return code_corpus(cfg.corpus_size, cfg.seed, cfg.mix)
    return corpus(cfg.corpus_size, cfg.seed, cfg.mix, cfg.digits)


def encode_corpus(rows: list[dict], tokenizer) -> list[tuple[list[int], list[int]]]:
    """(prompt ids with <bos>, response ids + <eos>) per corpus row."""
    prompts = tokenizer([r["prompt"] for r in rows])["input_ids"]
    responses = tokenizer([r["response"] for r in rows], add_special_tokens=False)["input_ids"]
    return [(list(p), list(r) + [tokenizer.eos_token_id]) for p, r in zip(prompts, responses)]


def pad_pairs(pairs: list[tuple[list[int], list[int]]], pad_id: int):
    """Right-padded input ids, attention mask, and labels that are -100 except on response tokens."""
    import torch

    width = max(len(p) + len(r) for p, r in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    labels = torch.full((len(pairs), width), -100, dtype=torch.long)
    for i, (p, r) in enumerate(pairs):
        seq = p + r
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
        labels[i, len(p):len(seq)] = torch.tensor(r)
    return ids, mask, labels


def lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * (1 - frac))


def train_prior(cfg: PretrainConfig, out_dir: str, progress: bool = True) -> dict:
    """Build the model, SFT it on the corpus, save it to `out_dir`; returns training stats."""
    import torch
    from tqdm import tqdm

    from cluster.embedded.model import build_model, count_params, save_model
    from cluster.embedded.tokenizer import build_tokenizer

    # One thread: a model this small gains little from two, and spin-waiting threads lose badly to any other
    # process on a 2-core machine (measured 8x slower per step under contention).
    torch.set_num_threads(1)
    tokenizer = build_tokenizer(cfg.task)
    model = build_model(out_dir, seed=cfg.seed, size=cfg.size, task=cfg.task)
    rows = task_corpus(cfg)
    data = encode_corpus(rows, tokenizer)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.0)
    rng = random.Random(cfg.seed)
    order: list[int] = []
    model.train()
    start, losses = time.time(), []
    bar = tqdm(range(cfg.steps), desc="pre-training the prior", disable=not progress, mininterval=2.0)
    for step in bar:
        if len(order) < cfg.batch:  # one pass over the corpus per epoch, reshuffled
            order += rng.sample(range(len(data)), len(data))
        batch, order = [data[i] for i in order[:cfg.batch]], order[cfg.batch:]
        ids, mask, labels = pad_pairs(batch, tokenizer.pad_token_id)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    save_model(model, out_dir, cfg.task)
    tail = losses[-20:]
    return {"params": count_params(model), "seconds": round(time.time() - start, 1),
            "final_loss": sum(tail) / len(tail), "examples": len(data),
            "cot_share": sum(r["is_cot"] for r in rows) / len(rows),
            "correct_share": sum(r["correct"] for r in rows) / len(rows)}


def pretrain(cfg: PretrainConfig, cache_dir: str | os.PathLike, progress: bool = True) -> Path:
    """The prior's HF directory: from the cache when these settings were trained before, else trained now."""
    final = Path(cache_dir) / cfg.key()
    if (final / DONE_FILE).is_file():
        return final
    tmp = Path(cache_dir) / f".{cfg.key()}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    stats = train_prior(cfg, str(tmp), progress=progress)
    (tmp / DONE_FILE).write_text(json.dumps({"config": dataclasses.asdict(cfg), "stats": stats}, indent=1))
    if (final / DONE_FILE).is_file():  # another process finished the same prior meanwhile: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        return final
    shutil.rmtree(final, ignore_errors=True)  # an interrupted earlier run
    os.replace(tmp, final)  # atomic: a reader sees either nothing or a complete prior
    return final


def cached_stats(path: str | os.PathLike) -> dict:
    """The settings and training stats stored with a prior."""
    return json.loads((Path(path) / DONE_FILE).read_text())
