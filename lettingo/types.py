"""The records that flow between stages.

Each stage reads the previous stage's JSONL file and writes its own; every record here round-trips
through ``to_dict`` / ``from_dict`` so that a stage file is plain JSON, one record a line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SENTIMENT_LABELS = ("like", "neutral", "dislike")


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Interaction(_Record):
    user_id: str
    item_id: str
    rating: float
    timestamp: int
    text: str | None = None


@dataclass
class Item(_Record):
    item_id: str
    title: str
    attributes: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """Item text for prompts and embeddings: title, then attributes as `key: value`."""
        parts = [self.title]
        for key, value in self.attributes.items():
            if value in (None, "", []):
                continue
            if isinstance(value, (list, tuple)):
                value = ", ".join(str(v) for v in value)
            parts.append(f"{key}: {value}")
        return "; ".join(parts)


@dataclass
class UserTask(_Record):
    """One user's evaluation instance, built by the protocol in ``lettingo.data.protocol``."""

    task_id: str
    user_id: str
    split: str  # "train" | "test"
    profile_window: list[Interaction]  # older interactions the profile is written from
    recent_window: list[Interaction]  # the K most recent interactions before the target
    target: Interaction
    label: str  # like | neutral | dislike
    candidates: list[str]  # item ids, target included, shuffled with candidate_seed
    candidate_seed: int
    # protocol.targets_per_user > 1: another of the user's targets, judged with the profiles of the
    # task named here (its primary task, whose target is the user's last); None: a primary task
    profile_task: str | None = None

    @property
    def primary_task_id(self) -> str:
        """The task whose profiles this task is judged with: itself unless it is an extra target."""
        return self.profile_task or self.task_id

    @classmethod
    def from_dict(cls, data):
        task = super().from_dict(data)
        task.profile_window = [Interaction.from_dict(i) for i in task.profile_window]
        task.recent_window = [Interaction.from_dict(i) for i in task.recent_window]
        task.target = Interaction.from_dict(task.target)
        return task


@dataclass
class Profile(_Record):
    task_id: str
    generator: str  # which generator wrote it: "base", "aligned", or a model name
    prompt_style: str
    sample: int
    text: str
    prompt_messages: list[dict[str, str]]
    usage: dict[str, Any] = field(default_factory=dict)
    model: str = ""  # the model that wrote it, as ``backend:model[+adapter]``

    @property
    def profile_id(self) -> str:
        return f"{self.task_id}/{self.generator}/{self.prompt_style}/{self.sample}"


@dataclass
class Judgement(_Record):
    profile_id: str
    task_id: str
    recommender: str
    prediction: Any  # a label for sentiment tasks, a ranked list of item ids for ranking tasks
    correct: bool
    score: float  # graded: P(true label) for sentiment, NDCG@10 of the target for ranking
    valid: bool  # False when the recommender's output could not be parsed
    raw_output: str = ""
    error: str | None = None  # the LLM request failed (after retries): not kept, judged again on rerun
    # none | base | aligned | a baseline prompt's name (test stage); the generator (evaluate stage).
    # Set by the stage, not the recommender; "" in run directories written before it was recorded.
    method: str = ""


@dataclass
class PreferencePair(_Record):
    user_id: str
    task_id: str
    prompt_messages: list[dict[str, str]]
    chosen: str
    rejected: str
    margin: float
    chosen_id: str = ""
    rejected_id: str = ""


@dataclass
class AlignedModel(_Record):
    base: str
    adapter_path: str | None  # a LoRA adapter on ``base``
    aligner: str
    metrics: dict[str, Any] = field(default_factory=dict)
    model_path: str | None = None  # a whole fine-tuned model (full fine-tuning) instead of an adapter

    @property
    def unchanged(self) -> bool:
        """No new weights (the ``none`` aligner): the aligned generator is the base generator."""
        return self.adapter_path is None and self.model_path is None
