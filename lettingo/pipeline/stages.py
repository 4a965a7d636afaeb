"""The stage table: what the orchestrator knows about each stage, in one place.

A stage is a module with ``run(ctx, cfg, store) -> summary``: the services (``Context``), the run's
config and its directory. Its row names the config sections that make
its inputs (with the previous stage's fingerprint, so a change upstream is seen downstream), the
files and folders it writes in the run directory (what a restart of it removes), whether its work
is per user (so shards can split it), whether shards share it (run by the first, waited for by the
others), and whether a whole run redoes it even when it is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from lettingo.pipeline import align, evaluate, explore, pair, prepare, report, test


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Any, Any, Any], dict[str, Any]]
    inputs: tuple[str, ...]      # config sections in its fingerprint
    outputs: tuple[str, ...]     # in the run directory; a restart of this stage removes them
    per_user: bool = False       # shards split it by user and merge the parts
    shared: bool = False         # shards share it: the first runs it, the others wait for it
    always_reruns: bool = False  # a whole run redoes it even when it is done
    calls_llms: bool = True      # it may pay for LLM requests: the plan is checked before the first such stage

    @property
    def row_files(self) -> list[str]:
        """Its JSONL files: the ones shards write a part of."""
        return [name for name in self.outputs if name.endswith(".jsonl")]


STAGES: tuple[Stage, ...] = (
    Stage("prepare", prepare.run, ("dataset", "protocol"),
          ("tasks.jsonl", "items.jsonl", "data_summary.json", "splits.json"), shared=True,
          calls_llms=False),
    Stage("explore", explore.run, ("llm", "prompt", "explore"), ("profiles.jsonl",), per_user=True),
    Stage("evaluate", evaluate.run, ("recommender", "evaluate"), ("judgements.jsonl",), per_user=True),
    Stage("pair", pair.run, ("pair_selector",), ("pairs.jsonl", "pairs_summary.json"), calls_llms=False),
    Stage("align", align.run, ("aligner", "align"), ("aligned",)),
    Stage("test", test.run, ("test",), ("test_profiles.jsonl", "test_judgements.jsonl"), per_user=True),
    Stage("report", report.run, ("report",), ("results.json", "report.md", "report.html"), always_reruns=True,
          calls_llms=False),
)
STAGE_NAMES: list[str] = [s.name for s in STAGES]
_BY_NAME = {s.name: s for s in STAGES}


def stage(name: str) -> Stage:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; the stages are {', '.join(STAGE_NAMES)}") from None


def from_stage(name: str) -> list[Stage]:
    """``name`` and every stage after it: what a restart of ``name`` redoes."""
    return list(STAGES[STAGE_NAMES.index(stage(name).name):])


def outputs_from(name: str) -> dict[str, tuple[str, ...]]:
    """Stage name -> its outputs, for ``name`` and every stage after it (what a restart of ``name`` removes)."""
    return {s.name: s.outputs for s in from_stage(name)}


def clear_from(store, name: str) -> None:
    """Remove the outputs (shards' parts included) and manifest entries of ``name`` and every later stage."""
    store.clear(outputs_from(name))
