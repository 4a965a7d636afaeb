"""One pair per task and prompt, always between two writers: the best-judged profile against the
worst-judged profile of another writer (generator).

With several writers exploring (``explore.generators``: other models, or the same model asked another
way), ``best_vs_worst`` also pairs two samples of one writer, whose difference is mostly which sample
happened to suit the judge. Pairs between writers carry what a writer does differently, the
paper's cross-LLM pairs: DPO learns to write like the writer the judge prefers for a user. A task
whose comparable profiles come from one writer gives no pair.
"""

from __future__ import annotations

from dataclasses import dataclass

from lettingo.pair_selectors.selection import PairSelector, SelectionSettings


@dataclass
class BetweenWritersSettings(SelectionSettings):
    """Best profile against the worst profile of another writer (explore.generators), per task."""

    name: str = "between_writers"
    min_margin: float = 0.0  # minimum score difference; exact ties never pair


class BetweenWriters(PairSelector):
    Settings = BetweenWritersSettings

    def __init__(self, name: str | None = None, min_margin: float = BetweenWritersSettings.min_margin, **options):
        super().__init__(name, **options)
        if min_margin < 0:
            raise ValueError(f"pair selector {self.name!r}: min_margin must be >= 0, got {min_margin}")
        self.min_margin = float(min_margin)

    def candidates(self, task, group):  # members sorted by id: ties stable
        best = max(group, key=lambda m: m.score)
        others = [m for m in group if m.profile.generator != best.profile.generator]
        if not others:
            return []
        worst = min(others, key=lambda m: m.score)
        margin = best.score - worst.score
        if margin <= 0 or margin < self.min_margin:
            return []
        return [(best, worst)]
