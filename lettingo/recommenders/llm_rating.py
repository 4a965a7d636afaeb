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
from typing import Any

from omegaconf import OmegaConf

from lettingo.llm import Generation, failed
from lettingo.prompts.history import item_text
from lettingo.recommenders import check_aligned, profile_id_for
from lettingo.recommenders.answers import parse_rating
from lettingo.recommenders.llm_sentiment import (
    check_judge_settings, failed_judgement, generate_answers, normalise, require_llm, resolve_answer_mode,
)
from lettingo.types import Interaction, Item, Judgement, Profile, UserTask

DEFAULT_SCALE = (1.0, 5.0)


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


class LLMRatingRecommender:
    task_type = "rating"

    def __init__(self, ctx: Any, llm_cfg: Any, name: str = "llm_rating", batch_size: int = 8,
                 system: str | None = None, answer: str = "text", max_new_tokens: int = 8,
                 rating_step: float = 1.0):
        check_judge_settings(name, batch_size, answer, max_new_tokens)
        scale = OmegaConf.select(ctx.cfg, "dataset.rating_scale", default=None) if ctx.cfg is not None else None
        low, high = (float(v) for v in (scale if scale else DEFAULT_SCALE))
        if not low < high:
            raise ValueError(f"recommender {name!r}: dataset.rating_scale must be [low, high] with low < high, "
                             f"got {list(scale)}")
        steps = (high - low) / rating_step if rating_step > 0 else -1.0
        if rating_step <= 0 or not math.isclose(steps, round(steps)):
            raise ValueError(f"recommender {name!r}: rating_step must be a positive step that divides the "
                             f"scale {number(low)}-{number(high)}, got {rating_step}")
        self.ctx = ctx
        self.llm_cfg = llm_cfg
        self.name = name
        self.batch_size = batch_size
        self.system = system
        self.answer = answer
        self.max_new_tokens = max_new_tokens
        self.low, self.high, self.step = low, high, float(rating_step)
        self.values = [low + k * self.step for k in range(int(round(steps)) + 1)]
        self.labels = [number(v) for v in self.values]  # the logprobs mode's answers: "1" ... "5"

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "LLMRatingRecommender":
        require_llm(cfg)
        return cls(ctx, cfg.llm, name=cfg.name, batch_size=int(cfg.get("batch_size", 8)),
                   system=cfg.get("system"), answer=str(cfg.get("answer", "text")),
                   max_new_tokens=int(cfg.get("max_new_tokens", 8)),
                   rating_step=float(cfg.get("rating_step", 1.0)))

    @property
    def llm(self):
        """The judging engine, asked of the context's pool at use (see ``llm_sentiment``)."""
        return self.ctx.llm(self.llm_cfg)

    def question(self) -> str:
        low, high = number(self.low), number(self.high)
        steps = "" if self.step == 1 else f" in steps of {number(self.step)}"
        return (f"What rating would this user give the candidate item, on a scale from {low} to {high}? "
                f"Answer with one number from {low} to {high}{steps}.")

    def messages(self, task: UserTask, profile: Profile | None) -> list[dict[str, str]]:
        items = self.ctx.items
        sections = []
        if profile is not None:
            sections.append(f"User profile:\n{profile.text.strip()}")
        recent = format_rated_interactions(task.recent_window, items, where=f"recent window of task {task.task_id}")
        sections.append(
            "The user's most recent interactions, oldest first, each with the user's rating "
            f"({number(self.low)} to {number(self.high)} stars):\n{recent}"
        )
        target = item_text(items, task.target.item_id, where=f"target of task {task.task_id}")
        sections.append(f"Candidate item:\n{target}")
        sections.append(self.question())
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": "\n\n".join(sections)})
        return messages

    def judge(self, tasks: list[UserTask], profiles: list[Profile | None]) -> list[Judgement]:
        check_aligned(self.name, tasks, profiles)
        prompts = [self.messages(t, p) for t, p in zip(tasks, profiles)]
        llm = self.llm
        if resolve_answer_mode(self.answer, llm) == "text":
            replies = generate_answers(llm, prompts, [t.task_id for t in tasks], self.max_new_tokens, self.batch_size)
            return [self._text_judgement(t, p, r) for t, p, r in zip(tasks, profiles, replies)]
        logprobs: list[dict[str, float]] = []
        for start in range(0, len(prompts), self.batch_size):
            logprobs.extend(llm.label_logprobs(prompts[start : start + self.batch_size], list(self.labels)))
        return [self._logprob_judgement(t, p, lp) for t, p, lp in zip(tasks, profiles, logprobs)]

    def _graded(self, task: UserTask, profile: Profile | None, prediction: float | None, raw: str) -> Judgement:
        truth = float(task.target.rating)
        if prediction is None:  # unparseable / nothing to read: invalid, never dropped
            return Judgement(profile_id_for(task, profile), task.task_id, self.name, None, False, 0.0, False, raw)
        return Judgement(
            profile_id=profile_id_for(task, profile),
            task_id=task.task_id,
            recommender=self.name,
            prediction=prediction,
            correct=math.isclose(round_half_up(prediction, self.step), truth),
            score=1.0 - abs(prediction - truth) / (self.high - self.low),
            valid=True,
            raw_output=raw,
        )

    def _text_judgement(self, task: UserTask, profile: Profile | None, reply: Generation) -> Judgement:
        if failed(reply):
            return failed_judgement(task, profile, self.name, reply)
        return self._graded(task, profile, parse_rating(reply.text, self.low, self.high), reply.text)

    def _logprob_judgement(self, task: UserTask, profile: Profile | None, logprobs: dict[str, float]) -> Judgement:
        missing = [label for label in self.labels if label not in logprobs]
        if missing:
            raise ValueError(
                f"recommender {self.name!r}: the LLM returned no log-probability for {missing} "
                f"on task {task.task_id!r} (got {sorted(logprobs)}); the backend's label_logprobs is broken"
            )
        if any(math.isnan(float(v)) for v in logprobs.values()):  # the backend's request failed
            return Judgement(profile_id_for(task, profile), task.task_id, self.name, None, False, 0.0,
                             False, "", error="the LLM request for the rating scores failed (see the log)")
        probs = normalise(logprobs, self.labels)
        if probs is None:  # every rating impossible: nothing to read, count it as invalid
            return self._graded(task, profile, None,
                                json.dumps({"logprobs": {k: str(v) for k, v in logprobs.items()}}))
        expected = sum(value * probs[label] for value, label in zip(self.values, self.labels))
        return self._graded(task, profile, expected, json.dumps(probs))
