"""The paper's judge: a frozen LLM reads profile + recent history + target, answers like/neutral/dislike.

With ``answer: logprobs`` (the default) the answer is read as the probability of each label as the
assistant's whole reply (not parsed from free text), so every output is valid and the probability of
the true label is a graded score that pair selectors can use as a margin.

With ``answer: text`` (backends without log-probabilities) the judge generates a short greedy reply
and parses it (``lettingo.recommenders.answers.parse_label``); score is 1 when the parsed label is
right and 0 otherwise, and an unparseable reply is a judgement with ``valid=False`` and the raw text
kept. ``answer: auto`` is ``logprobs`` unless the backend says ``supports_logprobs = False``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lettingo.prompts.history import format_interactions
from lettingo.recommenders.answers import parse_label
from lettingo.recommenders.llm_judge import LLMJudge, LLMJudgeSettings
from lettingo.run_data import RunData
from lettingo.types import SENTIMENT_LABELS, Judgement, Profile, UserTask

QUESTION = (
    "Will this user like, be neutral about, or dislike the candidate item? "
    "Answer with one word: like, neutral, or dislike."
)


@dataclass
class LLMSentimentSettings(LLMJudgeSettings):
    """The paper's judge: a frozen LLM answers like / neutral / dislike for the user's next item,
    read as label probabilities (score = probability of the true label), or parsed from a short
    reply (``answer: text``: score 1 if right, else 0; unparseable = invalid)."""

    name: str = "llm_sentiment"
    answer: str = "logprobs"


class LLMSentimentRecommender(LLMJudge):
    task_type = "sentiment"
    labels = SENTIMENT_LABELS
    Settings = LLMSentimentSettings

    def __init__(self, ctx: Any, llm_cfg: Any, name: str = LLMSentimentSettings.name, **settings: Any):
        super().__init__(ctx, llm_cfg, name, **settings)

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "LLMSentimentRecommender":
        return cls(ctx, cfg.llm, **cls.settings(cfg))

    def recent_section(self, task: UserTask, data: RunData) -> str:
        recent = format_interactions(task.recent_window, data, where=f"recent window of task {task.task_id}")
        return f"The user's most recent interactions, oldest first, each with how the user felt:\n{recent}"

    def question(self, data: RunData) -> str:
        return QUESTION

    def from_probabilities(self, task: UserTask, profile: Profile | None, probs: dict[str, float],
                           data: RunData) -> Judgement:
        prediction = max(self.labels, key=lambda label: probs[label])  # ties: first in label order
        return self.judgement(task, profile, prediction, prediction == task.label, probs.get(task.label, 0.0),
                              json.dumps(probs))

    def from_text(self, task: UserTask, profile: Profile | None, text: str, data: RunData) -> Judgement:
        prediction = parse_label(text, self.labels)
        if prediction is None:
            return self.invalid(task, profile, text)
        correct = prediction == task.label
        return self.judgement(task, profile, prediction, correct, 1.0 if correct else 0.0, text)
