"""One pair per task: the highest-scoring profile against the lowest-scoring one.

Uses the recommender's graded score rather than right/wrong, so a task still gives a pair when
every profile was right (or every one wrong) but some helped more than others.
"""

from __future__ import annotations

from typing import Any, Mapping

from lettingo.pair_selectors.judged import judged_groups, make_pair
from lettingo.types import Judgement, PreferencePair, Profile, UserTask


class BestVsWorst:
    def __init__(self, name: str = "best_vs_worst", min_margin: float = 0.0):
        if min_margin < 0:
            raise ValueError(f"pair selector {name!r}: min_margin must be >= 0, got {min_margin}")
        self.name = name
        self.min_margin = float(min_margin)

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "BestVsWorst":
        return cls(name=cfg.name, min_margin=float(cfg.get("min_margin", 0.0)))

    def select(self, tasks: Mapping[str, UserTask], profiles: list[Profile],
               judgements: list[Judgement]) -> list[PreferencePair]:
        pairs = []
        for task, group in judged_groups(tasks, profiles, judgements):  # members sorted by id: ties stable
            best = max(group, key=lambda m: m.score)
            worst = min(group, key=lambda m: m.score)
            margin = best.score - worst.score
            if margin <= 0 or margin < self.min_margin or best.key_text == worst.key_text:
                continue  # exact ties never make a pair, whatever min_margin says
            pairs.append(make_pair(task, best, worst))
        return pairs
