"""The paper's judge: a frozen LLM reads profile + recent history + target, answers like/neutral/dislike.

The answer is read as the probability of each label as the assistant's whole reply (not parsed from
free text), so every output is valid and the probability of the true label is a graded score that
pair selectors can use as a margin.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

from lettingo.prompts.history import format_interactions, item_text, sentiment_thresholds
from lettingo.recommenders import check_aligned, profile_id_for
from lettingo.types import SENTIMENT_LABELS, Judgement, Profile, UserTask

QUESTION = (
    "Will this user like, be neutral about, or dislike the candidate item? "
    "Answer with one word: like, neutral, or dislike."
)


def normalise(logprobs: dict[str, float], labels: Sequence[str]) -> dict[str, float] | None:
    """Softmax over the labels' log-probabilities; None when no label has any probability."""
    values = [float(logprobs[label]) for label in labels]
    top = max(values)
    if not math.isfinite(top):
        return None
    weights = [math.exp(v - top) for v in values]
    total = sum(weights)
    return {label: w / total for label, w in zip(labels, weights)}


class LLMSentimentRecommender:
    task_type = "sentiment"
    labels = SENTIMENT_LABELS

    def __init__(self, ctx: Any, llm_cfg: Any, name: str = "llm_sentiment", batch_size: int = 8,
                 system: str | None = None):
        if batch_size < 1:
            raise ValueError(f"recommender {name!r}: batch_size must be at least 1, got {batch_size}")
        self.ctx = ctx
        self.llm_cfg = llm_cfg
        self.name = name
        self.batch_size = batch_size
        self.system = system
        self.like_min, self.dislike_max = sentiment_thresholds(ctx.cfg)

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "LLMSentimentRecommender":
        if cfg.get("llm") is None:
            raise ValueError(
                f"recommender {cfg.name!r} needs an `llm` config node (conf/recommender/{cfg.name}.yaml "
                "sets `llm: ${llm}`, the generator's model); set recommender.llm to an llm option"
            )
        return cls(ctx, cfg.llm, name=cfg.name, batch_size=int(cfg.get("batch_size", 8)),
                   system=cfg.get("system"))

    @property
    def llm(self):
        """The judging engine, asked of the context's pool at use: building a recommender loads no
        model, and an engine released between stages is rebuilt rather than used closed."""
        return self.ctx.llm(self.llm_cfg)

    def messages(self, task: UserTask, profile: Profile | None) -> list[dict[str, str]]:
        items = self.ctx.items
        sections = []
        if profile is not None:
            sections.append(f"User profile:\n{profile.text.strip()}")
        recent = format_interactions(
            task.recent_window, items, self.like_min, self.dislike_max,
            where=f"recent window of task {task.task_id}",
        )
        sections.append(f"The user's most recent interactions, oldest first, each with how the user felt:\n{recent}")
        target = item_text(items, task.target.item_id, where=f"target of task {task.task_id}")
        sections.append(f"Candidate item:\n{target}")
        sections.append(QUESTION)
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": "\n\n".join(sections)})
        return messages

    def judge(self, tasks: list[UserTask], profiles: list[Profile | None]) -> list[Judgement]:
        check_aligned(self.name, tasks, profiles)
        prompts = [self.messages(t, p) for t, p in zip(tasks, profiles)]
        llm, logprobs = self.llm, []
        for start in range(0, len(prompts), self.batch_size):
            logprobs.extend(llm.label_logprobs(prompts[start : start + self.batch_size], list(self.labels)))
        return [self._judgement(t, p, lp) for t, p, lp in zip(tasks, profiles, logprobs)]

    def _judgement(self, task: UserTask, profile: Profile | None, logprobs: dict[str, float]) -> Judgement:
        missing = [label for label in self.labels if label not in logprobs]
        if missing:
            raise ValueError(
                f"recommender {self.name!r}: the LLM returned no log-probability for {missing} "
                f"on task {task.task_id!r} (got {sorted(logprobs)}); the backend's label_logprobs is broken"
            )
        if any(math.isnan(float(v)) for v in logprobs.values()):  # the backend's request failed
            return Judgement(profile_id_for(task, profile), task.task_id, self.name, None, False, 0.0,
                             False, "", error="the LLM request for the label scores failed (see the log)")
        probs = normalise(logprobs, self.labels)
        if probs is None:  # every label impossible: nothing to read, count it as invalid
            return Judgement(profile_id_for(task, profile), task.task_id, self.name, None, False, 0.0,
                             False, json.dumps({"logprobs": {k: str(v) for k, v in logprobs.items()}}))
        prediction = max(self.labels, key=lambda label: probs[label])  # ties: first in label order
        return Judgement(
            profile_id=profile_id_for(task, profile),
            task_id=task.task_id,
            recommender=self.name,
            prediction=prediction,
            correct=prediction == task.label,
            score=probs.get(task.label, 0.0),
            valid=True,
            raw_output=json.dumps(probs),
        )
