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

from lettingo.pair_selectors.best_vs_worst import BestVsWorst, BestVsWorstSettings


@dataclass
class BetweenWritersSettings(BestVsWorstSettings):
    """Best profile against the worst profile of another writer (explore.generators), per task."""

    name: str = "between_writers"


class BetweenWriters(BestVsWorst):
    """``best_vs_worst`` with the rejected side drawn from the other writers' profiles only."""

    Settings = BetweenWritersSettings

    def candidates(self, task, group):  # members sorted by id: ties stable
        best = max(group, key=lambda m: m.score)
        return self.pair_with_worst(best, [m for m in group if m.profile.generator != best.profile.generator])
