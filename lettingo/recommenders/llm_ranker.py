"""LLMRank (Hou et al., "Large Language Models are Zero-Shot Rankers"): a frozen LLM ranks the
task's candidates from the profile and the recent window.

The prompt numbers the candidates ``[1] <item text>`` ... and asks for every number, most likely
next item first. LLMs favour whatever is listed first, so the candidates are ranked ``bootstrap``
times in different orders (the first pass in the task's own, already shuffled, order; the others
reshuffled with a per-task seed, the same for every profile of the task) and the passes are
combined by Borda count: an item at position ``p`` of ``n`` gets ``n - p`` points, ties go to the
candidates' original order.

Answers are parsed by :func:`parse_ranking` and repaired only where the repair is unambiguous
(out-of-range numbers and repeats dropped, unranked candidates appended in the order shown). A pass
with no usable number is unparseable; a judgement is invalid only when every pass is. Each pass's
presented order, raw text, parsed ranking and problems are kept in ``raw_output``, and the number
shown at the first place of each pass (``top_position``) lets :func:`position_bias` measure how
often the LLM just picks the first candidate listed.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import numpy as np

from lettingo.data.protocol import derive_seed
from lettingo.llm import SamplingParams, failed
from lettingo.prompts.history import format_interactions, item_text
from lettingo.recommenders import check_ranking_tasks, profile_id_for, ranking_judgement
from lettingo.recommenders.llm_judge import require_llm
from lettingo.run_data import RunData
from lettingo.types import Judgement, Profile, UserTask

_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
# a standalone integer: not part of a word ("top20", "1st") nor of a decimal ("4.5")
_NUMBER = re.compile(r"(?<![\w.])(\d+)(?!\w|\.\d)")
# "1. 3", "2) 17", "3: 5" -- an enumerator followed by the candidate's number
_ENUMERATED = re.compile(r"^\s*\d+\s*[.):]\s+#?(\d+)(?!\w|\.\d)")


def _numbers(text: str) -> list[int]:
    """The candidate numbers an answer names, in order (see :func:`parse_ranking`)."""
    bracketed = _BRACKETED.findall(text)
    if bracketed:
        return [int(x) for x in bracketed]
    lines = text.splitlines()
    enumerated = [m for m in (_ENUMERATED.match(line) for line in lines) if m]
    if len(enumerated) >= 2:
        return [int(m.group(1)) for m in enumerated]
    return [int(x) for x in _NUMBER.findall(text)]


def parse_ranking(text: str, n: int, min_ranked: int = 1) -> tuple[list[int] | None, list[str]]:
    """Read an LLM's ranking of ``n`` numbered candidates.

    Returns ``(order, problems)``: ``order`` is the 0-based candidate indices best first, covering
    all ``n``, or None when the answer is unparseable. The numbers read are, in this preference:
    the bracketed ones (``[3] > [1]``, ``1. [2] Apollo 13 (1995)`` reads 2) when there are any; else
    the number after each list enumerator when at least two lines look like ``1. 3``; else every
    standalone integer (``3, 1, 7`` with prose around it). Then: numbers outside ``1..n`` are
    dropped (problem ``out of range: ...``), repeats keep their first place (``duplicate: ...``),
    and fewer than ``min_ranked`` usable numbers make the answer unparseable (``unparseable: ...``);
    otherwise unranked candidates are appended in the order shown (``missing k``).
    """
    problems: list[str] = []
    seen: set[int] = set()
    order: list[int] = []
    out_of_range: list[int] = []
    duplicates: list[int] = []
    for number in _numbers(text):
        if not 1 <= number <= n:
            out_of_range.append(number)
        elif number - 1 in seen:
            duplicates.append(number)
        else:
            seen.add(number - 1)
            order.append(number - 1)
    if out_of_range:
        problems.append("out of range: " + ", ".join(map(str, out_of_range)))
    if duplicates:
        problems.append("duplicate: " + ", ".join(map(str, duplicates)))
    if len(order) < max(1, min_ranked):
        problems.append(f"unparseable: {len(order)} usable candidate number(s), at least {max(1, min_ranked)} needed")
        return None, problems
    missing = [i for i in range(n) if i not in seen]
    if missing:
        problems.append(f"missing {len(missing)}")
        order.extend(missing)
    return order, problems


def borda(rankings: Iterable[list[int]], n: int) -> tuple[list[int], list[int]]:
    """Combine rankings of ``n`` items (0-based indices, best first, possibly partial) by Borda
    count: position ``p`` earns ``n - p`` points, an unranked item none. Returns the combined
    order (ties in index order) and each index's points."""
    points = [0] * n
    for ranking in rankings:
        for position, index in enumerate(ranking):
            points[index] += n - position
    order = sorted(range(n), key=lambda i: (-points[i], i))
    return order, points


def presentation_orders(task: UserTask, bootstrap: int) -> list[list[int]]:
    """The candidate orders of the ``bootstrap`` passes, as indices into ``task.candidates``:
    the task's own order first, then permutations seeded by ``derive_seed(b, task_id)``,
    each different from the earlier passes' where there are enough orders to go round."""
    n = len(task.candidates)
    orders = [list(range(n))]
    distinct_possible = math.factorial(n) if n <= 10 else math.inf
    for b in range(1, bootstrap):
        rng = np.random.default_rng(derive_seed(b, task.task_id))
        order = [int(i) for i in rng.permutation(n)]
        while order in orders and len(orders) < distinct_possible:
            order = [int(i) for i in rng.permutation(n)]
        orders.append(order)
    return orders


def position_bias(judgements: Iterable[Any]) -> dict[str, Any]:
    """How often each pass's top pick was the candidate shown first, against the 1/n of an LLM
    without position bias. Takes :class:`Judgement` objects or their dicts; judgements with an
    error or without an ``llm_ranker`` ``raw_output`` are counted as ``skipped``."""
    used = skipped = unparseable = top_first = 0
    expected = 0.0
    positions: Counter[int] = Counter()
    for judgement in judgements:
        get = judgement.get if isinstance(judgement, dict) else lambda k: getattr(judgement, k, None)
        try:
            raw = json.loads(get("raw_output") or "")
            passes = raw["passes"]
        except (ValueError, TypeError, KeyError):
            skipped += 1
            continue
        if get("error"):
            skipped += 1
            continue
        used += 1
        for p in passes:
            if p.get("top_position") is None:
                unparseable += 1
                continue
            positions[int(p["top_position"])] += 1
            top_first += p["top_position"] == 1
            expected += 1.0 / len(p["order"])
    parsed = sum(positions.values())
    share = top_first / parsed if parsed else None
    uniform = expected / parsed if parsed else None
    return {
        "judgements": used,
        "skipped": skipped,
        "passes": parsed,
        "unparseable_passes": unparseable,
        "top_first": top_first,
        "share_first": share,
        "expected_first": uniform,
        "ratio": share / uniform if parsed else None,
        "top_position_counts": {str(k): positions[k] for k in sorted(positions)},
    }


@dataclass
class LLMRankerSettings:
    """LLMRank (Hou et al.): a frozen LLM ranks the task's numbered candidates from the profile and
    the recent window; several passes in reshuffled orders are combined by Borda count (position
    bias). score = NDCG@10 of the target; correct = target in the top 5; invalid only when no pass parsed."""

    name: str = "llm_ranker"
    llm: Any = "${llm}"           # the judging model; by default the same model as the profile generator
    bootstrap: int = 3            # passes per judgement: the task's candidate order, then reshuffled orders
    max_new_tokens: int = 120     # greedy decoding; enough for 20 numbers and commas
    system: Optional[str] = None  # optional system message
    min_ranked: int = 1           # a pass naming fewer usable candidate numbers is unparseable


S = LLMRankerSettings


class LLMRanker:
    task_type = "ranking"
    Settings = LLMRankerSettings

    def __init__(self, ctx: Any, llm_cfg: Any, name: str = S.name, bootstrap: int = S.bootstrap,
                 max_new_tokens: int = S.max_new_tokens, system: str | None = None, min_ranked: int = S.min_ranked):
        for key, value in (("bootstrap", bootstrap), ("max_new_tokens", max_new_tokens), ("min_ranked", min_ranked)):
            if int(value) < 1:
                raise ValueError(f"recommender {name!r}: {key} must be at least 1, got {value}")
        self.ctx = ctx
        self.llm_cfg = llm_cfg
        self.name = name
        self.bootstrap = int(bootstrap)
        self.max_new_tokens = int(max_new_tokens)
        self.system = system
        self.min_ranked = int(min_ranked)

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "LLMRanker":
        require_llm(cfg)
        return cls(ctx, cfg.llm, name=cfg.name, bootstrap=cfg.bootstrap, max_new_tokens=cfg.max_new_tokens,
                   system=cfg.system, min_ranked=cfg.min_ranked)

    @property
    def llm(self):
        """The judging engine, asked of the context's pool at use (building loads no model)."""
        return self.ctx.llm(self.llm_cfg)

    @property
    def params(self) -> SamplingParams:
        return SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=self.max_new_tokens, n=1)

    def messages(self, task: UserTask, profile: Profile | None, order: list[int],
                 data: RunData) -> list[dict[str, str]]:
        """The prompt of one pass: candidates listed in ``order`` (indices into task.candidates)."""
        sections = []
        if profile is not None:
            sections.append(f"User profile:\n{profile.text.strip()}")
        recent = format_interactions(task.recent_window, data, where=f"recent window of task {task.task_id}")
        sections.append("The user's most recent interactions, oldest first, each with how the user felt:\n"
                        + (recent or "(none)"))
        n = len(order)
        listed = "\n".join(
            f"[{number}] {item_text(data.items, task.candidates[i], where=f'candidate of task {task.task_id}')}"
            for number, i in enumerate(order, start=1)
        )
        sections.append(f"Candidate items ({n}):\n{listed}")
        example = ", ".join(str(k) for k in (3, 1, 7) if k <= n) + ", ..."
        sections.append(
            f"Rank all {n} candidates from the most to the least likely to be the user's next item. "
            f"Answer with the candidate numbers only, most likely first, separated by commas, "
            f"e.g. {example}, using each number from 1 to {n} once."
        )
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": "\n\n".join(sections)})
        return messages

    def judgement_summary(self, judgements: list[Judgement]) -> dict[str, Any]:
        """What the report shows beside the metrics: how often a pass just picked the first candidate."""
        return {"position_bias": position_bias(judgements)}

    def request_plan(self, tasks: list[UserTask], profiles: list[Profile | None],
                     data: RunData) -> list[tuple[list[dict[str, str]], int]]:
        """The requests :meth:`judge` sends for these (task, profile) pairs: ``bootstrap`` passes
        each, listing the candidates in its own order, each answered in ``max_new_tokens``."""
        return [(self.messages(task, profile, order, data), self.max_new_tokens)
                for task, profile in zip(tasks, profiles) for order in presentation_orders(task, self.bootstrap)]

    def judge(self, tasks: list[UserTask], profiles: list[Profile | None], data: RunData) -> list[Judgement]:
        check_ranking_tasks(self.name, tasks, profiles)
        orders = [presentation_orders(task, self.bootstrap) for task in tasks]
        prompts, seeds = [], []
        for task, profile, task_orders in zip(tasks, profiles, orders):
            for b, order in enumerate(task_orders):
                prompts.append(self.messages(task, profile, order, data))
                seeds.append(derive_seed(b, task.task_id))
        generations = self.llm.generate(prompts, self.params, seeds) if prompts else []
        judgements = []
        for k, (task, profile, task_orders) in enumerate(zip(tasks, profiles, orders)):
            passes = [gens[0] for gens in generations[k * self.bootstrap:(k + 1) * self.bootstrap]]
            judgements.append(self._judgement(task, profile, task_orders, passes))
        return judgements

    def _judgement(self, task: UserTask, profile: Profile | None, orders: list[list[int]],
                   generations: list) -> Judgement:
        profile_id = profile_id_for(task, profile)
        errors = [g.usage["error"] for g in generations if failed(g)]
        if errors:
            return Judgement(profile_id, task.task_id, self.name, None, False, 0.0, False, "",
                             error=f"{len(errors)} of {len(generations)} ranking request(s) failed: {errors[0]}")
        n = len(task.candidates)
        passes, rankings = [], []
        for order, generation in zip(orders, generations):
            parsed, problems = parse_ranking(generation.text, n, self.min_ranked)
            ranking = [order[i] for i in parsed] if parsed is not None else None
            if ranking is not None:
                rankings.append(ranking)
            passes.append({
                "order": [task.candidates[i] for i in order],
                "text": generation.text,
                "ranking": [task.candidates[i] for i in ranking] if ranking is not None else None,
                "top_position": parsed[0] + 1 if parsed is not None else None,
                "problems": problems,
            })
        raw: dict[str, Any] = {
            "passes": passes,
            "parsed_passes": len(rankings),
            "repaired_passes": sum(1 for p in passes if p["ranking"] is not None and p["problems"]),
            "unparseable_passes": len(passes) - len(rankings),
        }
        if not rankings:
            return Judgement(profile_id, task.task_id, self.name, None, False, 0.0, False, json.dumps(raw))
        combined, points = borda(rankings, n)
        ranked = [task.candidates[i] for i in combined]
        raw["borda"] = {task.candidates[i]: points[i] for i in combined}
        return ranking_judgement(task, profile, self.name, ranked, json.dumps(raw))
