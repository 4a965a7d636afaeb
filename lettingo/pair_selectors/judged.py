"""Joining profiles with their judgements and grouping them into comparable sets.

Two profiles are comparable only when they answer the same prompt for the same task: DPO needs one
prompt per pair. Invalid judgements (the recommender's output could not be read) say nothing about
the profile, and empty texts teach nothing, so neither enters a group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

from lettingo.types import Judgement, PreferencePair, Profile, UserTask


@dataclass(frozen=True)
class JudgedProfile:
    profile: Profile
    judgement: Judgement

    @property
    def profile_id(self) -> str:
        return self.profile.profile_id

    @property
    def text(self) -> str:
        return self.profile.text

    @property
    def key_text(self) -> str:
        """The text compared for identity: surrounding whitespace does not make a new profile."""
        return self.profile.text.strip()

    @property
    def score(self) -> float:
        return float(self.judgement.score)

    @property
    def correct(self) -> bool:
        return bool(self.judgement.correct)


def judged_groups(
    tasks: Mapping[str, UserTask], profiles: list[Profile], judgements: list[Judgement]
) -> list[tuple[UserTask, list[JudgedProfile]]]:
    """Groups of judged profiles sharing a task and a prompt, in task-id order, members by profile id."""
    by_id: dict[str, Judgement] = {}
    for judgement in judgements:
        earlier = by_id.get(judgement.profile_id)
        if earlier is not None and earlier != judgement:
            raise ValueError(
                f"profile {judgement.profile_id!r} has two different judgements (recommenders "
                f"{earlier.recommender!r} and {judgement.recommender!r}); pass one recommender's judgements"
            )
        by_id[judgement.profile_id] = judgement
    groups: dict[tuple[str, str], list[JudgedProfile]] = {}
    for profile in profiles:
        judgement = by_id.get(profile.profile_id)
        if judgement is None or not judgement.valid or not profile.text.strip():
            continue
        if profile.task_id not in tasks:
            raise KeyError(
                f"profile {profile.profile_id!r} names task {profile.task_id!r}, which is not among the "
                f"{len(tasks)} tasks given; are tasks.jsonl and profiles.jsonl from the same run?"
            )
        prompt_key = json.dumps(profile.prompt_messages, sort_keys=True, ensure_ascii=False)
        groups.setdefault((profile.task_id, prompt_key), []).append(JudgedProfile(profile, judgement))
    return [
        (tasks[task_id], sorted(members, key=lambda m: m.profile_id))
        for (task_id, _), members in sorted(groups.items())
    ]


def make_pair(task: UserTask, chosen: JudgedProfile, rejected: JudgedProfile) -> PreferencePair:
    return PreferencePair(
        user_id=task.user_id,
        task_id=task.task_id,
        prompt_messages=chosen.profile.prompt_messages,
        chosen=chosen.text,
        rejected=rejected.text,
        margin=chosen.score - rejected.score,
        chosen_id=chosen.profile_id,
        rejected_id=rejected.profile_id,
    )


def pair_order(pair: PreferencePair) -> tuple:
    """Largest margin first, then ids: the same inputs always give the same list."""
    return (-pair.margin, pair.task_id, pair.chosen_id, pair.rejected_id)
