"""Per-stage budget for LLM requests that failed for good (API errors after retries).

A failed request's outputs are not written, so a rerun of the stage asks for exactly those again;
the stage goes on while the share of failed units stays within ``max_failure_rate`` and stops,
keeping everything written, once it is exceeded.
"""

from __future__ import annotations

import logging

from lettingo.errors import LettingoError

log = logging.getLogger("lettingo")


class TooManyFailuresError(LettingoError):
    """More LLM requests failed than ``max_failure_rate`` allows."""


DEFAULT_MAX_RATE = 0.05


class FailureBudget:
    @classmethod
    def for_stage(cls, cfg, stage: str, total: int) -> "FailureBudget":
        # .get: run directories made before this key existed still resume
        return cls(stage, total, cfg.get("max_failure_rate", DEFAULT_MAX_RATE))

    def __init__(self, stage: str, total: int, max_rate: float):
        self.stage = stage
        self.total = max(1, total)
        self.max_rate = float(max_rate)
        self.failed = 0
        self.first_error: str | None = None

    def record(self, what: str, error: str) -> None:
        """One unit (a user's profiles, a judgement) failed; stop once the budget is spent."""
        self.failed += 1
        if self.first_error is None:
            self.first_error = f"{what}: {error}"
        log.warning("%s: LLM request failed for %s: %s", self.stage, what, error)
        if self.failed / self.total > self.max_rate:
            raise TooManyFailuresError(
                f"{self.stage}: {self.failed} of {self.total} LLM requests failed, more than "
                f"max_failure_rate={self.max_rate:g} allows; first failure: {self.first_error}. "
                f"Everything answered so far is kept: fix the cause (key, quota, server) and rerun "
                f"`lettingo resume` to ask only for the missing ones"
            )

    def summary(self) -> dict:
        return {"failed_requests": self.failed, "first_failure": self.first_error} if self.failed else {}
