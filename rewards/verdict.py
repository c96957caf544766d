"""A reward that remembers how it was reached: `Verdict(1.0, "ok")` is a float, with a `status` beside it.

status: "ok" (the verifier decided), "timeout" (killed at its deadline), "error" (the verifier raised or its
worker crashed; `detail` holds the exception text when there is one). Timeouts and errors score 0.0 like wrong answers, so the status is the only way to count
them; being a float, a Verdict flows through every caller that expects rewards.
"""

STATUSES = ("ok", "timeout", "error")


class Verdict(float):
    __slots__ = ("status", "detail")

    def __new__(cls, value: float, status: str = "ok", detail: str | None = None):
        if status not in STATUSES:
            raise ValueError(f"Verdict status={status!r}: expected one of {list(STATUSES)}")
        self = super().__new__(cls, value)
        self.status, self.detail = status, detail
        return self

    def __reduce__(self):  # pickles (Ray, multiprocessing) with its status
        return Verdict, (float(self), self.status, self.detail)

    def __repr__(self) -> str:
        return f"Verdict({float(self)!r}, {self.status!r}" + (f", {self.detail!r})" if self.detail else ")")

    @property
    def failure(self) -> str | None:
        """None when the verifier decided; else 'timeout', or the error text ('error' if none was given)."""
        return None if self.status == "ok" else "timeout" if self.status == "timeout" else self.detail or "error"


def status_counts(rewards) -> dict[str, int]:
    """`reward/timeouts` and `reward/errors` of a batch (plain floats count as decided)."""
    statuses = [getattr(r, "status", "ok") for r in rewards]
    return {"reward/timeouts": statuses.count("timeout"), "reward/errors": statuses.count("error")}
