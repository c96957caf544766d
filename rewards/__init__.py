"""Rule-based verifiers: math answers, code against unit tests, countdown equations; user reward hooks.

The controller calls `score_batch`; `rewards.math`, `rewards.code` and `rewards.countdown` hold the
single-item APIs. Nothing heavy is imported here (sympy loads inside the pool's workers).
"""


def score_batch(kinds, completions: list[str], golds: list, timeout_s: float = 5.0, workers: int = 2,
                code_timeout_s: float = 10.0) -> list:
    """Score completions in a worker pool; each item finishes within its timeout or scores 0.0.

    Returns `rewards.verdict.Verdict`s: floats whose `.status` is "ok", "timeout" or "error" (with `.detail`).

    kinds: one of "math" | "code" | "countdown" | "custom" for all items, or one per item.
    golds: math -> gold answer str; code -> tests source str (or {"tests": str});
           countdown -> {"nums": list[int], "target": int};
           custom -> {"reward": "file.py:fn" | "module:fn", "problem": dict} (rewards/custom.py).
    """
    from rewards.pool import default_pool

    kinds = kinds if isinstance(kinds, str) else list(kinds)
    if "code" in ([kinds] if isinstance(kinds, str) else kinds):
        from rewards.sandbox import require_wall

        require_wall()  # no sandbox wall and no opt-in: stop here with what is missing, not score 0.0 forever

    return default_pool(workers, timeout_s, code_timeout_s).score(kinds, completions, golds)
