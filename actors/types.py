"""Errors the rollout side raises. Its data is the rollout record (record/rollout.py, docs/design.md)."""


class StaleWeightsError(RuntimeError):
    """An engine serves another policy version than the pool expects (it was restarted): reload, then retry."""


class RolloutError(RuntimeError):
    """A generate request failed on an engine twice (after one restart-and-retry)."""
