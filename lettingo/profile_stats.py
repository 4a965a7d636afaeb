"""What profiles look like, beside what they do: length, lexical variety, variety across a user's
samples, and whether a profile talks about the user's own items.

- ``tokens``: the generator's completion tokens when it reported them, else whitespace words.
- ``distinct_1`` / ``distinct_2``: distinct n-grams over all n-grams of a set of profiles (Li et al.,
  2016): low values mean the profiles repeat themselves or each other.
- ``sample_diversity``: for users with several profiles (exploration), the mean pairwise cosine
  distance of their profiles' sentence embeddings, averaged over users: how different the
  explored profiles of one user are (the point of exploring).
- ``title_overlap``: the share of the profile window's item titles that the profile mentions
  (case-insensitive), averaged over profiles.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Callable, Iterable, Mapping

import numpy as np

from lettingo.types import Item, Profile, UserTask

MIN_TITLE_CHARS = 3  # shorter titles ("M", "24") would match by accident


def token_count(profile: Profile) -> int:
    tokens = (profile.usage or {}).get("completion_tokens")
    return int(tokens) if tokens is not None else len(profile.text.split())


def distinct_n(texts: Iterable[str], n: int) -> float:
    grams, total = set(), 0
    for text in texts:
        words = text.lower().split()
        for i in range(len(words) - n + 1):
            grams.add(tuple(words[i : i + n]))
            total += 1
    return len(grams) / total if total else math.nan


def title_overlap(text: str, titles: Iterable[str]) -> float:
    titles = [t.lower() for t in titles if len(t.strip()) >= MIN_TITLE_CHARS]
    if not titles:
        return math.nan
    lowered = text.lower()
    return sum(title in lowered for title in titles) / len(titles)


def sample_diversity(texts_by_user: Mapping[str, list[str]], embed: Callable[[list[str]], np.ndarray]) -> float:
    """Mean over users with two or more profiles of their mean pairwise cosine distance."""
    users = [texts for texts in texts_by_user.values() if len(texts) >= 2]
    if not users:
        return math.nan
    vectors = embed([text for texts in users for text in texts])  # unit rows
    distances, start = [], 0
    for texts in users:
        block = vectors[start : start + len(texts)]
        start += len(texts)
        pairs = [1.0 - float(block[i] @ block[j]) for i, j in itertools.combinations(range(len(texts)), 2)]
        distances.append(float(np.mean(pairs)))
    return float(np.mean(distances))


def profile_statistics(groups: Mapping[str, list[Profile]], tasks: Mapping[str, UserTask],
                       items: Mapping[str, Item],
                       embed: Callable[[list[str]], np.ndarray] | None = None) -> dict[str, dict[str, float]]:
    """Statistics per group of profiles (a method, or a generator's exploration)."""
    out = {}
    for name, profiles in groups.items():
        texts = [p.text for p in profiles]
        overlaps = []
        by_user = defaultdict(list)
        for p in profiles:
            task = tasks.get(p.task_id)
            if task is not None:
                titles = [items[i.item_id].title for i in task.profile_window if i.item_id in items]
                overlaps.append(title_overlap(p.text, titles))
            by_user[p.task_id].append(p.text)
        overlaps = [o for o in overlaps if not math.isnan(o)]
        row = {
            "profiles": len(profiles),
            "tokens_mean": float(np.mean([token_count(p) for p in profiles])) if profiles else math.nan,
            "distinct_1": distinct_n(texts, 1),
            "distinct_2": distinct_n(texts, 2),
            "title_overlap": float(np.mean(overlaps)) if overlaps else math.nan,
        }
        if embed is not None and any(len(v) >= 2 for v in by_user.values()):
            row["sample_diversity"] = sample_diversity(by_user, embed)
        out[name] = row
    return out
