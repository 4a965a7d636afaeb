"""Several targets per user (``protocol.targets_per_user``): one profile, judged on each of them.

With one target a user's profile is judged on one held-out item, and which of two sampled profiles
"helps" is then mostly the luck of that item (docs/experiments.md, "Is there a signal to learn?").
The protocol can give each user M tasks sharing one profile window (``lettingo.data.protocol``);
profiles are written for the primary task only, judged on all M, and a profile's worth for pairing
is its mean judgement over the M targets. Reports keep one row per (user, target) and resample
users, so the M targets of a user are never counted as independent evidence.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Mapping

from lettingo.types import Judgement, Profile, UserTask


def primary_tasks(tasks: Mapping[str, UserTask]) -> dict[str, UserTask]:
    """The tasks profiles are written for (one per user), in the given order."""
    return {task_id: task for task_id, task in tasks.items() if task.profile_task is None}


def targets_of(tasks: Mapping[str, UserTask]) -> dict[str, list[UserTask]]:
    """Primary task id -> every task judged with its profiles, the primary first."""
    out: dict[str, list[UserTask]] = {}
    for task in tasks.values():
        out.setdefault(task.primary_task_id, []).append(task)
    return out


def on_task(profile: Profile, task: UserTask) -> Profile:
    """``profile`` as judged on another target of its user: the same text under that task's id, so
    a judgement's ``profile_id`` and ``task_id`` name the target it was judged on."""
    return profile if profile.task_id == task.task_id else dataclasses.replace(profile, task_id=task.task_id)


def written_profile_id(judgement: Judgement, tasks: Mapping[str, UserTask]) -> str:
    """The id of the profile as written (on its primary task) that ``judgement`` judged."""
    primary = tasks[judgement.task_id].primary_task_id
    return primary + judgement.profile_id[len(judgement.task_id):]


def mean_over_targets(tasks: Mapping[str, UserTask], judgements: list[Judgement]) -> list[Judgement]:
    """One judgement per written profile: ``score`` the mean over its user's targets with a valid
    judgement, ``correct`` when correct on at least half of them, ``valid`` when any was valid.
    With one target per user the judgements come back as they are."""
    if all(tasks[j.task_id].profile_task is None for j in judgements):
        return judgements
    groups: dict[str, list[Judgement]] = {}
    for judgement in judgements:
        groups.setdefault(written_profile_id(judgement, tasks), []).append(judgement)
    out = []
    for profile_id, group in groups.items():
        primary = next((j for j in group if tasks[j.task_id].profile_task is None), group[0])
        valid = [j for j in group if j.valid]
        out.append(dataclasses.replace(
            primary, profile_id=profile_id, task_id=tasks[primary.task_id].primary_task_id,
            score=statistics.fmean(j.score for j in valid) if valid else 0.0,
            correct=bool(valid) and 2 * sum(j.correct for j in valid) >= len(valid),
            valid=bool(valid), prediction=None, raw_output=""))
    return out


def earliest_target_tasks(tasks: Mapping[str, UserTask]) -> list[UserTask]:
    """Per user, the task whose target comes first: its windows precede every target of the user."""
    return [group[-1] for group in targets_of(tasks).values()]
