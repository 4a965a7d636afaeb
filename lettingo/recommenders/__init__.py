"""Recommenders: frozen judges that say whether a profile helps on a user's held-out task."""

from __future__ import annotations

from typing import Any, Sequence

from lettingo.metrics import ndcg_at_k
from lettingo.types import Judgement, Profile, UserTask

NDCG_AT = 10  # a ranking judgement's score: NDCG@10 of the target
CORRECT_AT = 5  # the target in the top 5 counts as correct


def profile_id_for(task: UserTask, profile: Profile | None) -> str:
    """The judgement's ``profile_id``; ``<task_id>/none`` for the no-profile baseline (10H)."""
    return profile.profile_id if profile is not None else f"{task.task_id}/none"


def check_aligned(recommender: str, tasks: Sequence[Any], profiles: Sequence[Any]) -> None:
    if len(tasks) != len(profiles):
        raise ValueError(
            f"recommender {recommender!r}: judge() needs one profile (or None) per task, "
            f"got {len(tasks)} tasks and {len(profiles)} profiles"
        )
    for task, profile in zip(tasks, profiles):
        if profile is not None and profile.task_id != task.task_id:
            raise ValueError(
                f"recommender {recommender!r}: profile {profile.profile_id!r} belongs to task "
                f"{profile.task_id!r} but was passed with task {task.task_id!r}"
            )


def check_ranking_tasks(recommender: str, tasks: Sequence[Any], profiles: Sequence[Any]) -> None:
    """:func:`check_aligned`, and every task lists its target among its candidates."""
    check_aligned(recommender, tasks, profiles)
    for task in tasks:
        if task.target.item_id not in task.candidates:
            raise ValueError(
                f"recommender {recommender!r}: the candidates of task {task.task_id!r} lack its target "
                f"{task.target.item_id!r}; a ranking task must list the target among its candidates"
            )


def ranking_judgement(task: UserTask, profile: Profile | None, recommender: str, ranked: list[str],
                      raw_output: str) -> Judgement:
    """Every ranking judge's verdict on a full ranking: score NDCG@10, correct = target in the top 5."""
    rank = ranked.index(task.target.item_id)
    return Judgement(profile_id_for(task, profile), task.task_id, recommender, ranked, rank < CORRECT_AT,
                     ndcg_at_k(rank, NDCG_AT), True, raw_output)
