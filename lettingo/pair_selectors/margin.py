"""Every pair of one task's profiles whose scores differ by at least ``delta``.

Between correct_vs_incorrect (right/wrong only) and best_vs_worst (one pair): graded scores decide,
and small differences, which are mostly the recommender's noise, are not taught.
"""

from __future__ import annotations

from dataclasses import dataclass

from lettingo.pair_selectors.selection import PairSelector, SelectionSettings


@dataclass
class MarginSettings(SelectionSettings):
    """Every pair of one task's profiles whose recommender scores differ by at least delta."""

    name: str = "margin"
    delta: float = 0.2  # minimum score difference chosen - rejected (scores are in [0, 1])


class MarginPairs(PairSelector):
    Settings = MarginSettings

    def __init__(self, name: str | None = None, delta: float = MarginSettings.delta, **options):
        super().__init__(name, **options)
        if not delta > 0:
            raise ValueError(f"pair selector {self.name!r}: delta must be > 0 (equal scores never pair), got {delta}")
        self.delta = float(delta)

    def candidates(self, task, group):
        # a hair of tolerance: 0.6 - 0.3 is 0.29999999999999993 in floating point
        return [(chosen, rejected) for chosen in group for rejected in group
                if chosen.score - rejected.score >= self.delta - 1e-9]
