"""The LettinGo paper's published numbers (KDD 2025), as data, so tables can show them beside ours.

Where they come from: ``docs/paper.md`` (the paper's setting and numbers as lettingo reads them).
They are **second-hand**: the paper's text was read through reviews and notes, not
copied from its tables, so treat them as reference points, not as targets to the decimal. What the
notes say about the setting:

- Task: a frozen LLaMA3-8B-Instruct judge (temperature 0) answers like / neutral / dislike for a
  user's last interaction from the user's profile and 10 most recent interactions ("10H"); metric:
  accuracy (and F1, whose numbers the notes do not give).
- Data: MovieLens-10M, Yelp and Amazon Books; users with more than 70 interactions; 2,000 test users
  (3,000 train users); 10 explored profiles per user.
- Headline accuracy (%): MovieLens 44.95 (10H, no profile) → 53.00 (LettinGo); Yelp 37.45 → 70.70;
  Amazon Books 48.15 → 70.75.
- Ablation accuracy (%), MovieLens / Yelp / Amazon: no DPO 50.9 / 64.9 / 59.1, SFT 51.1 / 66.2 / 63.7,
  DPO 53.0 / 70.4 / 70.4.

Values are stored as fractions (0.4495), like lettingo's metric values; ``text`` keeps the number as
published (``"44.95"``, in percent). :func:`published` says which entries a lettingo setting can be
set beside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

JUDGE = "LLaMA3-8B judge"
TEST_USERS = "2,000 test users"

# lettingo's dataset option -> the paper's dataset, as table labels name it.
PAPER_DATASETS = {"movielens": "ML-10M", "yelp": "Yelp", "amazon": "Amazon Books"}


@dataclass(frozen=True)
class Published:
    """One number from the paper.

    ``method`` is lettingo's method key (``none`` = the 10H row, ``base`` = profiles of the
    un-aligned generator, ``aligned`` = LettinGo); ``aligner`` is the aligner it needs (``None``:
    any), ``table`` the paper's table it is from (``headline`` or ``ablation``)."""

    dataset: str        # lettingo's dataset option: movielens | yelp | amazon
    paper_dataset: str  # as the paper names it: ML-10M | Yelp | Amazon Books
    method: str
    aligner: str | None
    metric: str
    value: float        # a fraction, like lettingo's metrics
    text: str           # as published, in percent
    table: str
    row: str            # the paper's row: "10H row", "LettinGo row", "ablation: SFT", ...

    @property
    def setting(self) -> str:
        """The setting in words: ``ML-10M, LLaMA3-8B judge, 2,000 test users``."""
        return f"{self.paper_dataset}, {JUDGE}, {TEST_USERS}"

    def label(self) -> str:
        """E.g. ``accuracy 53.00% (LettinGo row; ML-10M, LLaMA3-8B judge, 2,000 test users)``."""
        return f"{self.metric} {self.text}% ({self.row}; {self.setting})"


def describe(entries: list[Published]) -> str:
    """Several entries of one table row in one line, their shared setting said once:
    ``accuracy 53.00% (LettinGo row), 53.0% (ablation: DPO); ML-10M, LLaMA3-8B judge, 2,000 test users``."""
    groups: dict[tuple[str, str], list[Published]] = {}
    for entry in entries:
        groups.setdefault((entry.metric, entry.setting), []).append(entry)
    return " · ".join(f"{metric} " + ", ".join(f"{e.text}% ({e.row})" for e in group) + f"; {setting}"
                      for (metric, setting), group in groups.items())


def _entries() -> list[Published]:
    headline = {  # dataset: (10H, LettinGo)
        "movielens": ("44.95", "53.00"), "yelp": ("37.45", "70.70"), "amazon": ("48.15", "70.75")}
    ablation = {  # dataset: (no DPO, SFT, DPO)
        "movielens": ("50.9", "51.1", "53.0"), "yelp": ("64.9", "66.2", "70.4"), "amazon": ("59.1", "63.7", "70.4")}
    out = []
    for dataset, paper_dataset in PAPER_DATASETS.items():
        none, lettingo = headline[dataset]
        out += [
            Published(dataset, paper_dataset, "none", None, "accuracy", float(none) / 100, none, "headline",
                      "10H row"),
            Published(dataset, paper_dataset, "aligned", "dpo", "accuracy", float(lettingo) / 100, lettingo,
                      "headline", "LettinGo row"),
        ]
        for (method, aligner, row), text in zip(
                (("base", "none", "ablation: no DPO"), ("aligned", "sft", "ablation: SFT"),
                 ("aligned", "dpo", "ablation: DPO")), ablation[dataset]):
            out.append(Published(dataset, paper_dataset, method, aligner, "accuracy", float(text) / 100, text,
                                 "ablation", row))
    return out


PUBLISHED: tuple[Published, ...] = tuple(_entries())


def paper_dataset(dataset_name: str, dataset_config: Mapping[str, Any] | None = None) -> str | None:
    """The paper's dataset a lettingo dataset option stands for, or ``None``.

    ``movielens`` is MovieLens of any release (the paper used ML-10M); ``yelp`` is Yelp; ``amazon``
    is Amazon Books only when the dataset config's ``path`` or ``category`` mentions books (the
    amazon loader reads any category, so without a config nothing says it is Books)."""
    if dataset_name == "amazon":
        config = dataset_config or {}
        mentions = " ".join(str(config.get(key) or "") for key in ("path", "category"))
        return PAPER_DATASETS["amazon"] if re.search(r"book", mentions, re.IGNORECASE) else None
    return PAPER_DATASETS.get(dataset_name)


def published(dataset_name: str, task_type: str, method: str, aligner: str | None, metric: str | None = None,
              *, dataset_config: Mapping[str, Any] | None = None) -> list[Published]:
    """The paper's numbers for one row of a lettingo results table.

    ``dataset_name``: lettingo's dataset option (``dataset.name``), with its config node as
    ``dataset_config`` (needed for ``amazon``: see :func:`paper_dataset`); ``task_type``: only
    ``sentiment`` matches (the paper's like / neutral / dislike judge); ``method``: lettingo's method
    key (``none`` | ``base`` | ``aligned`` | a baseline prompt's name, which matches nothing);
    ``aligner``: the run's ``aligner.name``; ``metric``: a metric key, or ``None`` for all.

    The 10H row matches ``none`` under any aligner; the headline LettinGo row matches ``aligned``
    when the aligner is ``dpo``; the ablation's SFT and DPO rows match ``aligned`` under ``sft`` /
    ``dpo``, and its no-DPO row matches ``base`` when the aligner is ``none`` (without an aligner the
    aligned row is missing or the same as base)."""
    if task_type != "sentiment":
        return []
    target = paper_dataset(dataset_name, dataset_config)
    if target is None:
        return []
    return [entry for entry in PUBLISHED
            if entry.paper_dataset == target and entry.method == method
            and (entry.aligner is None or entry.aligner == aligner)
            and (metric is None or entry.metric == metric)]
