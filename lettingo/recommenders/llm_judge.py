"""The shape every LLM judge shares: profile, recent window and target in; an answer read from the
label log-probabilities or parsed from a short greedy reply.

Subclasses (``llm_sentiment``, ``llm_rating``) say how the recent window is shown
(:meth:`LLMJudge.recent_section`), what is asked (:meth:`LLMJudge.question`), which answers the
log-probabilities are taken over (:meth:`LLMJudge.answer_labels`) and how an answer becomes a
judgement (:meth:`LLMJudge.from_probabilities`, :meth:`LLMJudge.from_text`). Each of them gets the
run's data (``lettingo.run_data.RunData``: items, label rule, rating scale). ``answer: auto`` is
``logprobs`` unless the backend says ``supports_logprobs = False``. A request that failed for good
gives a judgement with ``error`` set (judged again on rerun); an answer that cannot be read gives
``valid=False`` with the raw output kept.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from lettingo.llm import Generation, SamplingParams, failed
from lettingo.prompts.history import item_text
from lettingo.recommenders import check_aligned, profile_id_for
from lettingo.run_data import RunData
from lettingo.types import Judgement, Profile, UserTask

ANSWER_MODES = ("logprobs", "text", "auto")
# The most completion tokens one label-scoring request may bill (an API backend asks for up to 8).
SCORING_ANSWER_TOKENS = 8


@dataclass
class LLMJudgeSettings:
    """What every LLM judge takes."""

    name: str = "?"
    llm: Any = "${llm}"           # the judging model; by default the same model as the profile generator
    batch_size: int = 8           # prompts per label_logprobs / generate call
    system: Optional[str] = None  # optional system message
    answer: str = "auto"          # logprobs: label probabilities | text: parse a greedy reply (unparseable =
                                  #   invalid) for backends without log-probs | auto: logprobs unless the
                                  #   backend sets supports_logprobs = False
    max_new_tokens: int = 8       # reply length in text mode


def normalise(logprobs: dict[str, float], labels: Sequence[str]) -> dict[str, float] | None:
    """Softmax over the labels' log-probabilities; None when no label has any probability."""
    values = [float(logprobs[label]) for label in labels]
    top = max(values)
    if not math.isfinite(top):
        return None
    weights = [math.exp(v - top) for v in values]
    total = sum(weights)
    return {label: w / total for label, w in zip(labels, weights)}


def check_judge_settings(name: str, batch_size: int, answer: str, max_new_tokens: int) -> None:
    if batch_size < 1:
        raise ValueError(f"recommender {name!r}: batch_size must be at least 1, got {batch_size}")
    if answer not in ANSWER_MODES:
        raise ValueError(f"recommender {name!r}: answer must be one of {', '.join(ANSWER_MODES)}, got {answer!r}")
    if max_new_tokens < 1:
        raise ValueError(f"recommender {name!r}: max_new_tokens must be at least 1, got {max_new_tokens}")


def require_llm(cfg: Any) -> None:
    if cfg.get("llm") is None:
        raise ValueError(
            f"recommender {cfg.name!r} needs an `llm` config node (its default, `${{llm}}`, is the "
            "generator's model); set recommender.llm to an llm option"
        )


def resolve_answer_mode(answer: str, llm: Any) -> str:
    """``auto`` is ``logprobs`` unless the engine (or the backend a cache wraps) has
    ``supports_logprobs = False``; ``logprobs`` and ``text`` are themselves."""
    if answer != "auto":
        return answer
    for engine in (llm, getattr(llm, "backend", None)):
        if engine is not None and getattr(engine, "supports_logprobs", True) is False:
            return "text"
    return "logprobs"


def answer_seed(task_id: str) -> int:
    """The per-task seed of a free-text answer: the same in every process and batch."""
    from lettingo.data.protocol import derive_seed  # pandas-backed module: loaded on first use only

    return derive_seed(0, task_id)


def generate_answers(llm: Any, prompts: list, task_ids: list[str], max_new_tokens: int,
                     batch_size: int) -> list[Generation]:
    """One greedy reply per prompt, ``batch_size`` prompts a call."""
    params = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, n=1)
    seeds = [answer_seed(task_id) for task_id in task_ids]
    replies: list[Generation] = []
    for start in range(0, len(prompts), batch_size):
        batch = llm.generate(prompts[start : start + batch_size], params, seeds[start : start + batch_size])
        replies.extend(generations[0] for generations in batch)
    return replies


def failed_judgement(task: UserTask, profile: Profile | None, recommender: str, generation: Generation) -> Judgement:
    """A request that failed for good: ``error`` set, so the run judges it again on rerun."""
    return Judgement(profile_id_for(task, profile), task.task_id, recommender, None, False, 0.0, False,
                     generation.text, error=f"the LLM request for the answer failed: {generation.usage['error']}")


class LLMJudge:
    task_type = ""
    labels: Sequence[str] = ()
    Settings: type[LLMJudgeSettings] = LLMJudgeSettings

    def __init__(self, ctx: Any, llm_cfg: Any, name: str, batch_size: int = LLMJudgeSettings.batch_size,
                 system: str | None = None, answer: str | None = None,
                 max_new_tokens: int = LLMJudgeSettings.max_new_tokens):
        answer = answer or self.Settings.answer
        check_judge_settings(name, batch_size, answer, max_new_tokens)
        self.ctx = ctx
        self.llm_cfg = llm_cfg
        self.name = name
        self.batch_size = batch_size
        self.system = system
        self.answer = answer
        self.max_new_tokens = max_new_tokens

    @staticmethod
    def settings(cfg: Any) -> dict[str, Any]:
        """The config keys every LLM judge takes, for ``from_config``."""
        require_llm(cfg)
        return {"name": cfg.name, "batch_size": cfg.batch_size, "system": cfg.system, "answer": cfg.answer,
                "max_new_tokens": cfg.max_new_tokens}

    @property
    def llm(self):
        """The judging engine, asked of the context's pool at use: building a recommender loads no
        model, and an engine released between stages is rebuilt rather than used closed."""
        return self.ctx.llm(self.llm_cfg)

    def recent_section(self, task: UserTask, data: RunData) -> str:
        raise NotImplementedError

    def question(self, data: RunData) -> str:
        raise NotImplementedError

    def answer_labels(self, data: RunData) -> Sequence[str]:
        """The answers the log-probabilities are taken over (default: the class's ``labels``)."""
        return self.labels

    def from_probabilities(self, task: UserTask, profile: Profile | None, probs: dict[str, float],
                           data: RunData) -> Judgement:
        raise NotImplementedError

    def from_text(self, task: UserTask, profile: Profile | None, text: str, data: RunData) -> Judgement:
        raise NotImplementedError

    def messages(self, task: UserTask, profile: Profile | None, data: RunData) -> list[dict[str, str]]:
        sections = [f"User profile:\n{profile.text.strip()}"] if profile is not None else []
        sections.append(self.recent_section(task, data))
        target = item_text(data.items, task.target.item_id, where=f"target of task {task.task_id}")
        sections += [f"Candidate item:\n{target}", self.question(data)]
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": "\n\n".join(sections)})
        return messages

    def request_plan(self, tasks: list[UserTask], profiles: list[Profile | None],
                     data: RunData) -> list[tuple[list[dict[str, str]], int]]:
        """The requests :meth:`judge` sends for these (task, profile) pairs: one each, with the most
        completion tokens it may take."""
        answer_tokens = self.max_new_tokens if self.answer == "text" else SCORING_ANSWER_TOKENS
        return [(self.messages(task, profile, data), answer_tokens) for task, profile in zip(tasks, profiles)]

    def judge(self, tasks: list[UserTask], profiles: list[Profile | None], data: RunData) -> list[Judgement]:
        check_aligned(self.name, tasks, profiles)
        prompts = [self.messages(t, p, data) for t, p in zip(tasks, profiles)]
        llm = self.llm
        if resolve_answer_mode(self.answer, llm) == "text":
            replies = generate_answers(llm, prompts, [t.task_id for t in tasks], self.max_new_tokens, self.batch_size)
            return [failed_judgement(t, p, self.name, r) if failed(r) else self.from_text(t, p, r.text, data)
                    for t, p, r in zip(tasks, profiles, replies)]
        labels = list(self.answer_labels(data))
        logprobs: list[dict[str, float]] = []
        for start in range(0, len(prompts), self.batch_size):
            logprobs.extend(llm.label_logprobs(prompts[start : start + self.batch_size], labels))
        return [self._from_logprobs(t, p, lp, labels, data) for t, p, lp in zip(tasks, profiles, logprobs)]

    def invalid(self, task: UserTask, profile: Profile | None, raw: str) -> Judgement:
        """An answer that cannot be read: counted invalid by the metrics, never dropped."""
        return Judgement(profile_id_for(task, profile), task.task_id, self.name, None, False, 0.0, False, raw)

    def judgement(self, task: UserTask, profile: Profile | None, prediction: Any, correct: bool, score: float,
                  raw: str) -> Judgement:
        return Judgement(profile_id_for(task, profile), task.task_id, self.name, prediction, correct, score,
                         True, raw)

    def _from_logprobs(self, task: UserTask, profile: Profile | None, logprobs: dict[str, float],
                       labels: list[str], data: RunData) -> Judgement:
        missing = [label for label in labels if label not in logprobs]
        if missing:
            raise ValueError(
                f"recommender {self.name!r}: the LLM returned no log-probability for {missing} "
                f"on task {task.task_id!r} (got {sorted(logprobs)}); the backend's label_logprobs is broken"
            )
        if any(math.isnan(float(v)) for v in logprobs.values()):  # the backend's request failed
            return Judgement(profile_id_for(task, profile), task.task_id, self.name, None, False, 0.0,
                             False, "", error="the LLM request for the answer's scores failed (see the log)")
        probs = normalise(logprobs, labels)
        if probs is None:  # every answer impossible: nothing to read
            return self.invalid(task, profile, json.dumps({"logprobs": {k: str(v) for k, v in logprobs.items()}}))
        return self.from_probabilities(task, profile, probs, data)
