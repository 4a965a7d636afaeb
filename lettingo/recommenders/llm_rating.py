"""Rating judge: a frozen LLM reads profile + recent ratings + target and predicts the user's rating.

The prompt has the shape of ``llm_sentiment``'s, but the recent window shows the user's ratings
(``-> 4 stars``) and the question asks for a rating on the dataset's scale (``dataset.rating_scale``,
default 1-5). The target's own rating never appears.

Answers (``answer``):

- ``text`` (default): a short greedy reply parsed by ``lettingo.recommenders.answers.parse_rating``;
  a reply without one clear rating on the scale is ``valid=False`` (score 0, raw text kept).
- ``logprobs``: the probability of each rating on the scale (every ``rating_step`` from low to high,
  e.g. ``"1"`` ... ``"5"``) as the assistant's whole reply, softmax-normalised; the prediction is the
  expected rating ``sum_r r * P(r)``.
- ``auto``: ``logprobs`` unless the backend says ``supports_logprobs = False``.

prediction is the rating (a float); score = 1 - |prediction - truth| / (high - low), the authors'
reward 1 - |pred - gt| / 4 on a 1-5 scale; correct = the prediction rounded half up to the nearest
``rating_step`` (1 by default, 0.5 for half-star scales) equals the true rating.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from lettingo.prompts.history import item_text
from lettingo.recommenders.answers import parse_rating
from lettingo.recommenders.llm_judge import LLMJudge, LLMJudgeSettings
from lettingo.run_data import RunData
from lettingo.types import Interaction, Item, Judgement, Profile, UserTask


@dataclass
class LLMRatingSettings(LLMJudgeSettings):
    """A frozen LLM predicts the user's rating of the next item on the dataset's scale
    (dataset.rating_scale, default 1-5) from the profile and the recent window with its ratings.
    score = 1 - |predicted - true| / (high - low); correct = prediction rounded half up to
    rating_step == true. ``answer``: text parses a greedy reply (unparseable or off the scale =
    invalid); logprobs takes the expected rating over the scale's values' label probabilities."""

    name: str = "llm_rating"
    answer: str = "text"
    rating_step: float = 1.0  # the scale's step: 1 (whole stars) or 0.5 (half stars); the logprobs mode's answers


def number(value: float) -> str:
    """``4.0`` -> ``4``, ``3.5`` -> ``3.5``."""
    return f"{float(value):g}"


def format_rated_interactions(interactions: list[Interaction], items: dict[str, Item], where: str) -> str:
    """One numbered line per interaction: ``1. <item text> -> 4 stars``."""
    lines = []
    for position, interaction in enumerate(interactions, start=1):
        stars = "star" if float(interaction.rating) == 1 else "stars"
        text = item_text(items, interaction.item_id, where)
        lines.append(f"{position}. {text} -> {number(interaction.rating)} {stars}")
    return "\n".join(lines)


def round_half_up(value: float, step: float) -> float:
    return math.floor(value / step + 0.5 + 1e-9) * step


@dataclass(frozen=True)
class Scale:
    """The ratings a judge answers with: ``low`` to ``high`` every ``step``."""

    low: float
    high: float
    step: float

    @classmethod
    def of(cls, name: str, rating_scale: tuple[float, float], step: float) -> "Scale":
        low, high = (float(v) for v in rating_scale)
        if not low < high:
            raise ValueError(f"recommender {name!r}: dataset.rating_scale must be [low, high] with low < high, "
                             f"got {list(rating_scale)}")
        steps = (high - low) / step if step > 0 else -1.0
        if step <= 0 or not math.isclose(steps, round(steps)):
            raise ValueError(f"recommender {name!r}: rating_step must be a positive step that divides the "
                             f"scale {number(low)}-{number(high)}, got {step}")
        return cls(low, high, float(step))

    @property
    def values(self) -> list[float]:
        return [self.low + k * self.step for k in range(int(round((self.high - self.low) / self.step)) + 1)]

    @property
    def labels(self) -> list[str]:
        """The logprobs mode's answers: ``"1"`` ... ``"5"``."""
        return [number(v) for v in self.values]


class LLMRatingRecommender(LLMJudge):
    task_type = "rating"
    Settings = LLMRatingSettings

    def __init__(self, ctx: Any, llm_cfg: Any, name: str = LLMRatingSettings.name,
                 rating_step: float = LLMRatingSettings.rating_step, **settings: Any):
        super().__init__(ctx, llm_cfg, name, **settings)
        if not rating_step > 0:  # whether it divides the scale is checked against the run's data
            raise ValueError(f"recommender {name!r}: rating_step must be a positive step, got {rating_step}")
        self.step = float(rating_step)

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "LLMRatingRecommender":
        return cls(ctx, cfg.llm, rating_step=cfg.rating_step, **cls.settings(cfg))

    def scale(self, data: RunData) -> Scale:
        """The run's rating scale (``dataset.rating_scale``) at this judge's ``rating_step``."""
        return Scale.of(self.name, data.rating_scale, self.step)

    def answer_labels(self, data: RunData) -> list[str]:
        return self.scale(data).labels

    def question(self, data: RunData) -> str:
        scale = self.scale(data)
        low, high = number(scale.low), number(scale.high)
        steps = "" if scale.step == 1 else f" in steps of {number(scale.step)}"
        return (f"What rating would this user give the candidate item, on a scale from {low} to {high}? "
                f"Answer with one number from {low} to {high}{steps}.")

    def recent_section(self, task: UserTask, data: RunData) -> str:
        recent = format_rated_interactions(task.recent_window, data.items,
                                           where=f"recent window of task {task.task_id}")
        low, high = data.rating_scale
        return ("The user's most recent interactions, oldest first, each with the user's rating "
                f"({number(low)} to {number(high)} stars):\n{recent}")

    def graded(self, task: UserTask, profile: Profile | None, prediction: float | None, raw: str,
               scale: Scale) -> Judgement:
        if prediction is None:
            return self.invalid(task, profile, raw)
        truth = float(task.target.rating)
        return self.judgement(task, profile, prediction, math.isclose(round_half_up(prediction, scale.step), truth),
                              1.0 - abs(prediction - truth) / (scale.high - scale.low), raw)

    def from_text(self, task: UserTask, profile: Profile | None, text: str, data: RunData) -> Judgement:
        scale = self.scale(data)
        return self.graded(task, profile, parse_rating(text, scale.low, scale.high), text, scale)

    def from_probabilities(self, task: UserTask, profile: Profile | None, probs: dict[str, float],
                           data: RunData) -> Judgement:
        scale = self.scale(data)
        expected = sum(value * probs[label] for value, label in zip(scale.values, scale.labels))
        return self.graded(task, profile, expected, json.dumps(probs), scale)
