"""The paper's pairs: every profile that made the recommender right against every one that made it wrong.

Users whose profiles were all right or all wrong give no pairs: nothing separates their profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from lettingo.pair_selectors.selection import PairSelector, SelectionSettings


@dataclass
class CorrectVsIncorrectSettings(SelectionSettings):
    """The paper's pairs: every correct profile x every incorrect profile of the same task and prompt."""

    name: str = "correct_vs_incorrect"


class CorrectVsIncorrect(PairSelector):
    Settings = CorrectVsIncorrectSettings

    def candidates(self, task, group):
        return [(chosen, rejected) for chosen in group if chosen.correct
                for rejected in group if not rejected.correct]
