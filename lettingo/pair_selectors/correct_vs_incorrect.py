"""The paper's pairs: every profile that made the recommender right against every one that made it wrong.

Users whose profiles were all right or all wrong give no pairs: nothing separates their profiles.
"""

from __future__ import annotations

from typing import Any, Mapping

from lettingo.pair_selectors.judged import judged_groups, make_pair, pair_order
from lettingo.types import Judgement, PreferencePair, Profile, UserTask


class CorrectVsIncorrect:
    def __init__(self, name: str = "correct_vs_incorrect", max_pairs_per_user: int | None = None):
        if max_pairs_per_user is not None and max_pairs_per_user < 1:
            raise ValueError(f"pair selector {name!r}: max_pairs_per_user must be positive or null, "
                             f"got {max_pairs_per_user}")
        self.name = name
        self.max_pairs_per_user = max_pairs_per_user

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "CorrectVsIncorrect":
        return cls(name=cfg.name, max_pairs_per_user=cfg.get("max_pairs_per_user"))

    def select(self, tasks: Mapping[str, UserTask], profiles: list[Profile],
               judgements: list[Judgement]) -> list[PreferencePair]:
        per_user: dict[str, list[PreferencePair]] = {}
        for task, group in judged_groups(tasks, profiles, judgements):
            seen: set[tuple[str, str]] = set()
            for chosen in (m for m in group if m.correct):
                for rejected in (m for m in group if not m.correct):
                    texts = (chosen.key_text, rejected.key_text)
                    if texts[0] == texts[1] or texts in seen:
                        continue  # the same text on both sides, or a pair already taken
                    seen.add(texts)
                    per_user.setdefault(task.user_id, []).append(make_pair(task, chosen, rejected))
        pairs: list[PreferencePair] = []
        for user_id in sorted(per_user):
            kept = sorted(per_user[user_id], key=pair_order)
            pairs.extend(kept[: self.max_pairs_per_user] if self.max_pairs_per_user else kept)
        return pairs
