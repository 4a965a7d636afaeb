"""What every judged-profile pair selector shares: grouping, the per-user cap, length balancing.

A selector names the candidate pairs of one comparable group (``candidates``); this base joins
profiles with judgements, drops pairs with the same text on both sides (or taken twice), keeps at
most ``max_pairs_per_user`` per user (largest margins first) and, with ``length_balance``, keeps as
many pairs whose chosen profile is the longer as pairs whose chosen profile is the shorter, so DPO
cannot learn "longer is better" from pairs where the chosen one is longer only by chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from lettingo.pair_selectors.judged import JudgedProfile, judged_groups, make_pair, pair_order
from lettingo.types import Judgement, PreferencePair, Profile, UserTask


@dataclass
class SelectionSettings:
    name: str = "pair_selector"
    max_pairs_per_user: Optional[int] = None  # cap per user, keeping the largest score margins; null: all
    length_balance: bool = False              # true: as many chosen-longer as chosen-shorter pairs (no "longer
                                              # wins" shortcut)


class PairSelector:
    Settings: type[SelectionSettings] = SelectionSettings

    def __init__(self, name: str | None = None, max_pairs_per_user: int | None = SelectionSettings.max_pairs_per_user,
                 length_balance: bool = SelectionSettings.length_balance):
        self.name = name or self.Settings.name
        if max_pairs_per_user is not None and int(max_pairs_per_user) < 1:
            raise ValueError(f"pair selector {self.name!r}: max_pairs_per_user must be positive or null, "
                             f"got {max_pairs_per_user}")
        self.max_pairs_per_user = int(max_pairs_per_user) if max_pairs_per_user is not None else None
        self.length_balance = bool(length_balance)
        self.last_summary: dict[str, Any] = {}  # what the last select() dropped and why (pairs_summary.json)

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "PairSelector":
        options = {k: v for k, v in dict(cfg).items() if k != "name"}
        return cls(name=cfg.name, **options)

    def candidates(self, task: UserTask, group: list[JudgedProfile]) -> list[tuple[JudgedProfile, JudgedProfile]]:
        """(chosen, rejected) candidates among one task's profiles answering one prompt."""
        raise NotImplementedError

    def select(self, tasks: Mapping[str, UserTask], profiles: list[Profile],
               judgements: list[Judgement]) -> list[PreferencePair]:
        per_user: dict[str, list[PreferencePair]] = {}
        for task, group in judged_groups(tasks, profiles, judgements):
            seen: set[tuple[str, str]] = set()
            for chosen, rejected in self.candidates(task, group):
                texts = (chosen.key_text, rejected.key_text)
                if texts[0] == texts[1] or texts in seen:
                    continue  # the same text on both sides, or a pair already taken
                seen.add(texts)
                per_user.setdefault(task.user_id, []).append(make_pair(task, chosen, rejected))
        pairs: list[PreferencePair] = []
        capped = 0
        for user_id in sorted(per_user):
            kept = sorted(per_user[user_id], key=pair_order)
            if self.max_pairs_per_user:
                capped += max(0, len(kept) - self.max_pairs_per_user)
                kept = kept[: self.max_pairs_per_user]
            pairs.extend(kept)
        self.last_summary = {"dropped_by_user_cap": capped}
        if self.length_balance:
            pairs = self._balance_lengths(pairs)
        return pairs

    def _balance_lengths(self, pairs: list[PreferencePair]) -> list[PreferencePair]:
        """Keep equally many chosen-longer and chosen-shorter pairs (the larger side keeps its
        largest margins); pairs of equal length stay. The order of the kept pairs is unchanged."""
        longer = [p for p in pairs if len(p.chosen) > len(p.rejected)]
        shorter = [p for p in pairs if len(p.chosen) < len(p.rejected)]
        keep_n = min(len(longer), len(shorter))
        dropped = {id(p) for side in (longer, shorter) for p in sorted(side, key=pair_order)[keep_n:]}
        self.last_summary["dropped_by_length_balance"] = len(dropped)
        self.last_summary["before_length_balance"] = {"pairs": len(pairs), "chosen_longer": len(longer),
                                                      "chosen_shorter": len(shorter)}
        return [p for p in pairs if id(p) not in dropped]
