"""What each kind of component must provide: one ``typing.Protocol`` per kind.

A registered factory builds an object that satisfies its kind's protocol; a meta-test checks every
registered component (built-in or plugin) against it. Optional members, which the pipeline reads
with a default when a component lacks them, are named in each docstring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping, Protocol, runtime_checkable

from lettingo.llm import LLM, Messages
from lettingo.run_data import RunData
from lettingo.types import AlignedModel, Judgement, PreferencePair, Profile, UserTask


@runtime_checkable
class Dataset(Protocol):
    """``load()`` returns the prepared interactions and items (``lettingo.data.InteractionData``)."""

    def load(self) -> Any: ...


@runtime_checkable
class Prompt(Protocol):
    """How a profile is asked for, from a task and the run's data (items, label rule). Optional:
    ``needs_llm = False`` with ``profile_text(task, data)`` for a prompt that writes its profile
    itself (``raw_history``)."""

    def messages(self, task: UserTask, data: RunData) -> Messages: ...


@runtime_checkable
class Recommender(Protocol):
    """Judges profiles on tasks, given the run's data (items, label rule, rating scale, dataset).
    ``task_type`` is ``sentiment``, ``rating`` or ``ranking`` (which metrics the report computes).
    Optional: ``judgement_summary(judgements) -> dict``; ``request_plan(tasks, profiles, data)`` ->
    the LLM requests ``judge`` would send, as ``(messages, most completion tokens)`` (dry runs count
    them; a recommender without it makes no LLM request)."""

    task_type: ClassVar[str]

    def judge(self, tasks: list[UserTask], profiles: list[Profile | None], data: RunData) -> list[Judgement]: ...


@runtime_checkable
class PairSelector(Protocol):
    """Judged profiles to preference pairs. Optional: ``last_summary`` (merged into pairs_summary.json)."""

    def select(self, tasks: Mapping[str, UserTask], profiles: list[Profile],
               judgements: list[Judgement]) -> list[PreferencePair]: ...


@runtime_checkable
class Aligner(Protocol):
    """Pairs to a trained writer. Optional: ``trains`` (default True; False: no pairs needed, one
    round) and ``score_pairs(...)`` (the held-out pair check, docs/plugin-hooks.md)."""

    def train(self, pairs: list[PreferencePair], base_model: str, output_dir: Path,
              init_adapter: str | None = None) -> AlignedModel: ...


CONTRACTS: dict[str, type] = {"dataset": Dataset, "llm": LLM, "prompt": Prompt, "recommender": Recommender,
                              "pair_selector": PairSelector, "aligner": Aligner}


def required_members(protocol: type) -> list[str]:
    """The names a class must define to satisfy ``protocol`` (its methods and class variables)."""
    names = {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
    names |= {n for n in getattr(protocol, "__annotations__", {}) if not n.startswith("_")}
    return sorted(names)


def missing_members(cls: type, kind: str) -> list[str]:
    """What ``cls`` lacks of its kind's contract (empty: it satisfies it)."""
    return [name for name in required_members(CONTRACTS[kind]) if not hasattr(cls, name)]
