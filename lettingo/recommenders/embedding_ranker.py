"""A cheap ranking judge: candidates scored by sentence-embedding similarity to history and profile.

Recent items and the profile are embedded separately and mixed by ``profile_weight``: one text
holding both would let the profile's many words drown the recent items (or the reverse) inside a
single mean-pooled vector, and the weight would no longer say how much the profile counts.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from lettingo.assets import MINILM_DIR, packaged_path
from lettingo.prompts.history import item_text
from lettingo.recommenders import check_ranking_tasks, ranking_judgement
from lettingo.run_data import RunData
from lettingo.types import Item, Judgement, Profile, UserTask

PACKAGED_MODELS = {"all-minilm-l6-v2": MINILM_DIR}
PROFILE_CACHE = 4096  # profile embeddings kept across judge() calls (1.5 KB each for MiniLM)


def resolve_embedding_model(model: str) -> str:
    """The packaged MiniLM directory for its alias; any other id or directory as it is."""
    asset = PACKAGED_MODELS.get(model.lower())
    return str(packaged_path(asset)) if asset else model


def _unit(vector: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else None


@dataclass
class EmbeddingRankerSettings:
    """Ranks the task's candidates by sentence-embedding similarity to the recent window and the
    profile. score = NDCG@10 of the target; correct = target in the top 5."""

    name: str = "embedding_ranker"
    model: str = "all-minilm-l6-v2"  # alias for the packaged MiniLM; or any sentence-transformers id / directory
    profile_weight: float = 0.3      # candidate score = (1 - w) cos(candidate, recent) + w cos(candidate, profile)
    batch_size: int = 64
    device: str = "cpu"


S = EmbeddingRankerSettings


class EmbeddingRanker:
    task_type = "ranking"
    Settings = EmbeddingRankerSettings

    def __init__(self, model: str = S.model, name: str = S.name,
                 profile_weight: float = S.profile_weight, batch_size: int = S.batch_size, device: str = S.device):
        if not 0.0 <= profile_weight <= 1.0:
            raise ValueError(f"recommender {name!r}: profile_weight must be in [0, 1], got {profile_weight}")
        self.model_name = model
        self.name = name
        self.profile_weight = float(profile_weight)
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._item_vectors: dict[str, np.ndarray] = {}  # item_id -> unit embedding, kept across calls
        # profile text -> unit embedding, the latest PROFILE_CACHE kept: with several targets per user
        # (protocol.targets_per_user) one profile is judged in many calls
        self._profile_vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "EmbeddingRanker":
        return cls(model=cfg.model, name=cfg.name, profile_weight=cfg.profile_weight,
                   batch_size=cfg.batch_size, device=cfg.device)

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(resolve_embedding_model(self.model_name), device=self.device)
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.asarray(
            self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False),
            dtype=np.float32,
        )

    def embed_items(self, wheres: dict[str, str], items: Mapping[str, Item]) -> None:
        """Embed (once, kept across calls) every item in ``wheres`` (item_id -> where it is used)."""
        missing = [i for i in wheres if i not in self._item_vectors]
        if missing:
            texts = [item_text(items, i, wheres[i]) for i in missing]
            for item_id, vector in zip(missing, self.embed(texts)):
                self._item_vectors[item_id] = vector

    def judge(self, tasks: list[UserTask], profiles: list[Profile | None], data: RunData) -> list[Judgement]:
        check_ranking_tasks(self.name, tasks, profiles)
        wheres: dict[str, str] = {}
        for task in tasks:
            for item_id in task.candidates:
                wheres.setdefault(item_id, f"candidate of task {task.task_id}")
            for interaction in task.recent_window:
                wheres.setdefault(interaction.item_id, f"recent window of task {task.task_id}")
        self.embed_items(wheres, data.items)
        profile_texts = sorted({p.text.strip() for p in profiles if p is not None and p.text.strip()})
        missing = [text for text in profile_texts if text not in self._profile_vectors]
        self._profile_vectors.update(zip(missing, self.embed(missing)))
        for text in profile_texts:
            self._profile_vectors.move_to_end(text)
        while len(self._profile_vectors) > PROFILE_CACHE:
            self._profile_vectors.popitem(last=False)
        profile_vectors = {text: self._profile_vectors[text] for text in profile_texts}
        return [self._judgement(t, p, profile_vectors) for t, p in zip(tasks, profiles)]

    def scores(self, task: UserTask, profile_vector: np.ndarray | None) -> np.ndarray:
        """(1 - w) * cos(candidate, recent) + w * cos(candidate, profile); w = 0 without a profile."""
        candidates = np.stack([self._item_vectors[i] for i in task.candidates])
        recent = None
        if task.recent_window:
            recent = _unit(np.mean([self._item_vectors[x.item_id] for x in task.recent_window], axis=0))
        recent_sim = candidates @ recent if recent is not None else np.zeros(len(task.candidates))
        if profile_vector is None:
            return recent_sim
        weight = self.profile_weight
        return (1.0 - weight) * recent_sim + weight * (candidates @ profile_vector)

    def _judgement(self, task: UserTask, profile: Profile | None, profile_vectors: dict) -> Judgement:
        profile_vector = profile_vectors.get(profile.text.strip()) if profile is not None else None
        scores = self.scores(task, profile_vector)
        order = np.argsort(-scores, kind="stable")  # ties keep the (shuffled) candidate order
        ranked = [task.candidates[i] for i in order]
        return ranking_judgement(task, profile, self.name, ranked,
                                 json.dumps({task.candidates[i]: round(float(scores[i]), 6) for i in order}))
