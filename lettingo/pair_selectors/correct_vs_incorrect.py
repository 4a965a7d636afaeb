"""The paper's pairs: every profile that made the recommender right against every one that made it wrong.

Users whose profiles were all right or all wrong give no pairs: nothing separates their profiles.
"""

from __future__ import annotations

from lettingo.pair_selectors.selection import PairSelector


class CorrectVsIncorrect(PairSelector):
    name = "correct_vs_incorrect"

    def candidates(self, task, group):
        return [(chosen, rejected) for chosen in group if chosen.correct
                for rejected in group if not rejected.correct]
