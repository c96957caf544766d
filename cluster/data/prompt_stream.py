"""Training prompts in a reproducible order: epochs of seeded shuffles, with a position that checkpoints save.

Resuming from (epoch, position) reproduces exactly the batches an uninterrupted run would have drawn.
"""
from __future__ import annotations

import random


class PromptStream:
    def __init__(self, problems: list, batch_size: int, seed: int, shuffle: bool = True):
        if not problems:
            raise ValueError("no training problems: data.train loaded 0 problems; check its datasets and limits")
        self.problems, self.batch_size, self.seed, self.shuffle = problems, batch_size, seed, shuffle
        self.epoch, self.position = 0, 0
        self._order = self._order_of(0)

    def _order_of(self, epoch: int) -> list[int]:
        order = list(range(len(self.problems)))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def next_batch(self) -> list:
        out = []
        while len(out) < self.batch_size:
            if self.position == len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._order_of(self.epoch)
            out.append(self.problems[self._order[self.position]])
            self.position += 1
        return out

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._order_of(self.epoch)
