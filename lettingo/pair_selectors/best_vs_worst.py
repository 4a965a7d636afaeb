"""One pair per task and prompt: the highest-scoring profile against the lowest-scoring one.

Uses the recommender's graded score rather than right/wrong, so a task still gives a pair when
every profile was right (or every one wrong) but some helped more than others.
"""

from __future__ import annotations

from dataclasses import dataclass

from lettingo.pair_selectors.selection import PairSelector, SelectionSettings


@dataclass
class BestVsWorstSettings(SelectionSettings):
    """One pair per task: highest-score profile vs lowest-score profile (pairs even when all are right)."""

    name: str = "best_vs_worst"
    min_margin: float = 0.0  # minimum score difference; exact ties never pair


class BestVsWorst(PairSelector):
    Settings = BestVsWorstSettings

    def __init__(self, name: str | None = None, min_margin: float = BestVsWorstSettings.min_margin, **options):
        super().__init__(name, **options)
        if min_margin < 0:
            raise ValueError(f"pair selector {self.name!r}: min_margin must be >= 0, got {min_margin}")
        self.min_margin = float(min_margin)

    def candidates(self, task, group):  # members sorted by id: ties stable
        best = max(group, key=lambda m: m.score)
        return self.pair_with_worst(best, group)

    def pair_with_worst(self, best, rejectable):
        """``best`` against the lowest-scoring of ``rejectable``, if it clears ``min_margin``."""
        if not rejectable:
            return []
        worst = min(rejectable, key=lambda m: m.score)
        margin = best.score - worst.score
        if margin <= 0 or margin < self.min_margin:
            return []  # exact ties never make a pair, whatever min_margin says
        return [(best, worst)]
