"""The data a run works on, handed to components explicitly, and what a run directory holds about it.

The prepare stage writes ``tasks.jsonl`` and ``items.jsonl``; every later stage and the report read
them back through here (so reading a run needs nothing from the pipeline package). Components never
look data up on their own: a prompt gets a :class:`RunData` in ``messages(task, data)``, a
recommender in ``judge(tasks, profiles, data)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from omegaconf import OmegaConf

from lettingo.labels import DEFAULT_DISLIKE_MAX, DEFAULT_LIKE_MIN, label_for, thresholds
from lettingo.store import read_jsonl
from lettingo.types import Item, UserTask

DEFAULT_RATING_SCALE = (1.0, 5.0)


def rating_scale(dataset_cfg: Any) -> tuple[float, float]:
    """``(low, high)`` from a ``dataset`` config node; a missing or null ``rating_scale``: 1-5."""
    scale = dataset_cfg.get("rating_scale") if dataset_cfg is not None else None
    return tuple(float(v) for v in (scale or DEFAULT_RATING_SCALE))  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class RunData:
    """What components read about the run's data besides the tasks they are given.

    ``items``: item_id -> Item, every item the tasks name. ``like_min`` / ``dislike_max``: the label
    rule (``lettingo.labels``), so histories are shown with the words the targets are labelled
    with. ``rating_scale``: the dataset's ``(low, high)``. ``dataset``: the run's dataset component
    (``load()`` gives its prepared interactions), for a recommender that fits on them; None outside
    a run.
    """

    items: Mapping[str, Item] = field(default_factory=dict)
    like_min: float = DEFAULT_LIKE_MIN
    dislike_max: float = DEFAULT_DISLIKE_MAX
    rating_scale: tuple[float, float] = DEFAULT_RATING_SCALE
    dataset: Any = None

    @classmethod
    def of(cls, items: Mapping[str, Item], dataset_cfg: Any = None, dataset: Any = None) -> "RunData":
        """The items with the label rule and rating scale of a ``dataset`` config node (None: the defaults)."""
        like_min, dislike_max = thresholds(dataset_cfg)
        return cls(dict(items), like_min, dislike_max, rating_scale(dataset_cfg), dataset)

    def label(self, rating: float) -> str:
        """``like`` / ``neutral`` / ``dislike``: the rule the targets are labelled with."""
        return label_for(rating, self.like_min, self.dislike_max)


def evaluated_split(cfg) -> str:
    """The held-out users the test stage evaluates: ``test`` (default) or ``validation`` (to tune on
    while the test users stay untouched)."""
    split = str(OmegaConf.select(cfg, "test.split", default="test") or "test")
    if split not in ("test", "validation"):
        raise ValueError(f"test.split must be test or validation, got {split!r}")
    return split


def load_tasks(store, split: str | None = None) -> dict[str, UserTask]:
    tasks = (UserTask.from_dict(row) for row in read_jsonl(store.path("tasks.jsonl")))
    return {t.task_id: t for t in tasks if split is None or t.split == split}


def load_items(store) -> dict[str, Item]:
    """The items the prepare stage kept (``items.jsonl``)."""
    return {row["item_id"]: Item.from_dict(row) for row in read_jsonl(store.path("items.jsonl"))}


def load_run_data(ctx, cfg, store) -> RunData:
    """The run's :class:`RunData`: its items, and the label rule, rating scale and dataset component
    of its ``dataset`` config (building the component loads nothing)."""
    return RunData.of(load_items(store), cfg.dataset, ctx.build("dataset", cfg.dataset))
