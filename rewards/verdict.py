"""A reward that remembers how it was reached: `Verdict(1.0, "ok")` is a float, with a `status` beside it.

status: "ok" (the verifier decided), "timeout" (killed at its deadline), "error" (the verifier raised or its
worker crashed). Timeouts and errors score 0.0 like wrong answers, so the status is the only way to count
them; being a float, a Verdict flows through every caller that expects rewards.
"""

STATUSES = ("ok", "timeout", "error")


class Verdict(float):
    __slots__ = ("status",)

    def __new__(cls, value: float, status: str = "ok"):
        if status not in STATUSES:
            raise ValueError(f"Verdict status={status!r}: expected one of {list(STATUSES)}")
        self = super().__new__(cls, value)
        self.status = status
        return self

    def __reduce__(self):  # pickles (Ray, multiprocessing) with its status
        return Verdict, (float(self), self.status)

    def __repr__(self) -> str:
        return f"Verdict({float(self)!r}, {self.status!r})"


def status_counts(rewards) -> dict[str, int]:
    """`reward/timeouts` and `reward/errors` of a batch (plain floats count as decided)."""
    statuses = [getattr(r, "status", "ok") for r in rewards]
    return {"reward/timeouts": statuses.count("timeout"), "reward/errors": statuses.count("error")}
