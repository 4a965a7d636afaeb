"""``implicit_rerank``: a collaborative-filtering ranking judge whose ranking a profile can move.

An implicit-feedback model (``implicit.cpu`` ALS or BPR) is fitted, on the first ``judge()``, on
the run's dataset with **every user's last interaction removed**. The protocol makes each task's
target its user's last interaction (``lettingo.data.protocol``: time order ``(timestamp,
item_id)``, a re-rated item counted at its latest rating), so removing the last interaction of
every user removes every target, whoever is in the train or test split, and the matrix never says
which candidate a user picked. Removing it for users without a task too keeps one rule for all;
they lose one interaction each. Every rating counts as a positive, whatever its value (implicit
feedback: the user chose to watch / buy / review the item).

Each task's candidates are scored by the dot product of the user's and the item's factors (0 for
a user or an item the model has not seen), z-scored within the task. With a profile, the cosine
similarity of the profile's sentence embedding to each candidate's item text, also z-scored, is
mixed in: ``final = (1 - w) z(cf) + w z(sim)``. Without a profile (the paper's 10H row) the CF
score alone ranks. Only the CF top ``rerank_top`` candidates are re-ranked (all by default); the
rest follow in CF order, as a two-stage recommender's retrieval stage would leave them.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from lettingo.cache import digest
from lettingo.data.protocol import ordered_histories
from lettingo.errors import ComponentConfigError, LettingoError
from lettingo.prompts.history import item_text
from lettingo.recommenders import check_ranking_tasks, ranking_judgement
from lettingo.recommenders.embedding_ranker import EmbeddingRanker
from lettingo.settings import options
from lettingo.run_data import RunData
from lettingo.types import Item, Judgement, Profile, UserTask
from lettingo_implicit.settings import ImplicitRerankSettings as S

MODELS = ("als", "bpr")
DEFAULT_ITERATIONS = {"als": 15, "bpr": 100}  # the implicit library's own defaults
FIT_KEYS = ("model", "factors", "iterations", "regularization", "alpha", "learning_rate", "seed")
_FIT_CACHE: "OrderedDict[str, FittedModel]" = OrderedDict()  # the pipeline builds a judge per stage
_FIT_CACHE_SIZE = 2


def hold_out_last(interactions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The interactions without each user's last one, and ``{user_id: item_id}`` of what was removed.

    "Last" is the protocol's own (``lettingo.data.protocol.ordered_histories``), so the removed
    interactions are exactly the targets. Every rating of a removed (user, item) pair goes, so an
    earlier rating of the same item (which the protocol drops as a duplicate) cannot give the
    target away either. ``interactions`` is a prepared dataset's frame (``InteractionData.interactions()``).
    """
    if len(interactions) == 0:
        raise LettingoError("recommender 'implicit_rerank': the dataset has no interactions to fit on")
    history, _ = ordered_histories(interactions)
    last_items = history.items[history.ends - 1]  # item codes of each user's target
    held_item = np.full(len(interactions["user_id"].cat.categories), -1)
    held_item[interactions["user_id"].cat.categories.get_indexer(history.user_names)] = last_items
    keep = held_item[interactions["user_id"].cat.codes.to_numpy()] != interactions["item_id"].cat.codes.to_numpy()
    held = {str(user): str(history.item_names[item]) for user, item in zip(history.user_names, last_items)}
    return interactions[keep], held


@dataclass
class FittedModel:
    """A fitted CF model: factors plus the id maps and the exact matrix it was trained on."""

    user_index: dict[str, int]
    item_index: dict[str, int]
    user_factors: np.ndarray
    item_factors: np.ndarray
    train_matrix: Any  # scipy.sparse.csr_matrix, users x items, 1.0 where the user rated the item
    held_out: dict[str, str]  # user_id -> item_id of the interaction removed (their last)
    seconds: float

    def scores(self, user_id: str, item_ids: Sequence[str]) -> np.ndarray:
        """Dot products of the user's and the items' factors; 0 for an unseen user or item."""
        out = np.zeros(len(item_ids), dtype=np.float64)
        row = self.user_index.get(str(user_id))
        if row is None:
            return out
        known = [(k, self.item_index[i]) for k, i in enumerate(item_ids) if i in self.item_index]
        if known:
            positions, columns = zip(*known)
            out[list(positions)] = self.item_factors[list(columns)] @ self.user_factors[row]
        return out

    def summary(self) -> dict[str, Any]:
        return {"users": len(self.user_index), "items": len(self.item_index),
                "interactions": int(self.train_matrix.nnz), "held_out": len(self.held_out),
                "seconds": round(self.seconds, 3)}


def fit_model(interactions: pd.DataFrame, model: str = "als", factors: int = 64, iterations: int | None = None,
              regularization: float = 0.01, alpha: float = 1.0, learning_rate: float = 0.01, seed: int = 0,
              num_threads: int = 1) -> FittedModel:
    """Fit an ``implicit.cpu`` model on ``interactions`` without each user's last interaction."""
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    started = time.monotonic()
    train, held = hold_out_last(interactions)
    user_names, rows = np.unique(train["user_id"].astype(str).to_numpy(), return_inverse=True)
    item_names, columns = np.unique(train["item_id"].astype(str).to_numpy(), return_inverse=True)
    matrix = sp.csr_matrix((np.ones(len(train), dtype=np.float32), (rows, columns)),
                           shape=(len(user_names), len(item_names)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # a re-rated item is one positive
    iterations = int(iterations or DEFAULT_ITERATIONS[model])
    from implicit.cpu.als import AlternatingLeastSquares  # imported before the limit: loading it loads BLAS
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    # implicit's own threads do the work; a BLAS thread pool inside each would only oversubscribe.
    with threadpool_limits(1, "blas"):
        if model == "als":
            estimator = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                                iterations=iterations, random_state=seed, num_threads=num_threads)
        else:
            estimator = BayesianPersonalizedRanking(factors=factors, learning_rate=learning_rate,
                                                    regularization=regularization, iterations=iterations,
                                                    random_state=seed, num_threads=num_threads)
        estimator.fit(matrix, show_progress=False)
    return FittedModel(
        user_index={str(u): k for k, u in enumerate(user_names)},
        item_index={str(i): k for k, i in enumerate(item_names)},
        user_factors=np.asarray(estimator.user_factors, dtype=np.float64),
        item_factors=np.asarray(estimator.item_factors, dtype=np.float64),
        train_matrix=matrix, held_out=held, seconds=time.monotonic() - started,
    )


def zscore(values: np.ndarray) -> np.ndarray:
    """Standardised within the task; all zeros when the values do not vary."""
    std = float(values.std())
    return (values - values.mean()) / std if std > 1e-12 else np.zeros_like(values, dtype=np.float64)


class ImplicitReranker:
    task_type = "ranking"
    Settings = S

    def __init__(self, name: str = S.name, model: str = S.model, factors: int = S.factors,
                 iterations: int | None = None, regularization: float = S.regularization, alpha: float = S.alpha,
                 learning_rate: float = S.learning_rate, seed: int = S.seed, num_threads: int = S.num_threads,
                 profile_weight: float = S.profile_weight, rerank_top: int | None = None,
                 embedding_model: str = S.embedding_model, batch_size: int = S.batch_size, device: str = S.device):
        self.name = name
        self.fit_settings = {
            "model": str(model).lower(), "factors": int(factors),
            "iterations": None if iterations is None else int(iterations),
            "regularization": float(regularization), "alpha": float(alpha),
            "learning_rate": float(learning_rate), "seed": int(seed),
        }
        self.num_threads = int(num_threads)
        self.profile_weight = float(profile_weight)
        self.rerank_top = None if rerank_top is None else int(rerank_top)
        self._check()
        self.embedder = EmbeddingRanker(model=embedding_model, name=name, profile_weight=self.profile_weight,
                                        batch_size=int(batch_size), device=device)  # loads nothing until used
        self.fitted: FittedModel | None = None
        self._item_vectors: dict[str, np.ndarray] = {}

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "ImplicitReranker":
        return cls(name=cfg.name, **options("recommender", cfg, S))

    def _check(self) -> None:
        s = self.fit_settings
        problems = [
            ("model", s["model"] in MODELS, f"one of {', '.join(MODELS)}"),
            ("factors", s["factors"] >= 1, ">= 1"),
            ("iterations", s["iterations"] is None or s["iterations"] >= 1, ">= 1 (or null: the model's default)"),
            ("regularization", s["regularization"] >= 0, ">= 0"),
            ("alpha", s["alpha"] > 0, "> 0"),
            ("learning_rate", s["learning_rate"] > 0, "> 0"),
            ("num_threads", self.num_threads >= 0, ">= 0 (0: every core)"),
            ("profile_weight", 0.0 <= self.profile_weight <= 1.0, "in [0, 1]"),
            ("rerank_top", self.rerank_top is None or self.rerank_top >= 1, ">= 1 (or null: every candidate)"),
        ]
        for key, ok, want in problems:
            if not ok:
                value = self.num_threads if key == "num_threads" else getattr(self, key, s.get(key))
                raise ComponentConfigError(
                    f"recommender {self.name!r} (ImplicitRerankSettings): {key} must be {want}, "
                    f"got {value!r}"
                )

    # -- the CF model ------------------------------------------------------------------------------

    def fit(self, prepared: Any = None) -> FittedModel:
        """The fitted model: kept in the instance, and shared within the process by every judge of the
        same dataset and settings (the pipeline builds one per stage). ``prepared``: an
        ``InteractionData`` (in a run, the run's dataset: ``RunData.dataset.load()``); None: the model
        fitted before."""
        if prepared is None:
            if self.fitted is None:
                raise ComponentConfigError(
                    f"recommender {self.name!r} has not been fitted: call fit(prepared) with an "
                    f"InteractionData, or judge with run data that names the dataset (RunData.dataset)")
            return self.fitted
        data = prepared
        key = digest({"folder": str(data.folder.resolve()), "report": data.report, **self.fit_settings})
        fitted = _FIT_CACHE.get(key)
        if fitted is None:
            fitted = fit_model(data.interactions(), num_threads=self.num_threads, **self.fit_settings)
            _FIT_CACHE[key] = fitted
            while len(_FIT_CACHE) > _FIT_CACHE_SIZE:
                _FIT_CACHE.popitem(last=False)
        self.fitted = fitted
        return fitted

    # -- judging -----------------------------------------------------------------------------------

    def judge(self, tasks: list[UserTask], profiles: list[Profile | None], data: RunData) -> list[Judgement]:
        check_ranking_tasks(self.name, tasks, profiles)
        extra = next((t.task_id for t in tasks if getattr(t, "profile_task", None)), None)
        if extra is not None:  # its matrix would still hold the user's earlier targets
            raise LettingoError(
                f"recommender {self.name!r} holds out only each user's last interaction, but task {extra!r} "
                f"targets an earlier one (protocol.targets_per_user > 1); set protocol.targets_per_user=1")
        # fitted once, on the run's dataset (every user's last interaction removed: fit_model)
        fitted = self.fit(data.dataset.load() if self.fitted is None and data.dataset is not None else None)
        profile_texts = sorted({p.text.strip() for p in profiles if p is not None and p.text.strip()})
        profile_vectors: dict[str, np.ndarray] = {}
        if profile_texts and self.profile_weight > 0:  # no profile, no embedding model loaded at all
            profile_vectors = dict(zip(profile_texts, self.embedder.embed(profile_texts)))
            wheres = {}
            for task, profile in zip(tasks, profiles):
                if profile is not None and profile.text.strip():
                    for item_id in task.candidates:
                        wheres.setdefault(item_id, f"candidate of task {task.task_id}")
            self._embed_items(wheres, data.items)
        return [self._judgement(fitted, task, profile, profile_vectors) for task, profile in zip(tasks, profiles)]

    def _embed_items(self, wheres: dict[str, str], items: Mapping[str, Item]) -> None:
        missing = [i for i in wheres if i not in self._item_vectors]
        if missing:
            texts = [item_text(items, i, wheres[i]) for i in missing]
            self._item_vectors.update(zip(missing, self.embedder.embed(texts)))

    def scores(self, fitted: FittedModel, task: UserTask, profile_vector: np.ndarray | None):
        """``(cf, sim or None, final)`` per candidate, in the task's candidate order."""
        cf = fitted.scores(task.user_id, task.candidates)
        if profile_vector is None:
            return cf, None, zscore(cf)
        sim = np.stack([self._item_vectors[i] for i in task.candidates]).astype(np.float64) @ profile_vector
        weight = self.profile_weight
        return cf, sim, (1.0 - weight) * zscore(cf) + weight * zscore(sim)

    def ranking(self, cf: np.ndarray, final: np.ndarray) -> np.ndarray:
        """Candidate positions, best first: the CF top ``rerank_top`` by the final score, the rest in
        CF order. Ties keep the (shuffled) candidate order."""
        by_cf = np.argsort(-cf, kind="stable")
        top = len(cf) if self.rerank_top is None else min(self.rerank_top, len(cf))
        head = np.sort(by_cf[:top])  # candidate order among the head, so that ties break as without re-ranking
        head = head[np.argsort(-final[head], kind="stable")]
        return np.concatenate([head, by_cf[top:]])

    def _judgement(self, fitted: FittedModel, task: UserTask, profile: Profile | None,
                   profile_vectors: dict[str, np.ndarray]) -> Judgement:
        vector = profile_vectors.get(profile.text.strip()) if profile is not None else None
        cf, sim, final = self.scores(fitted, task, vector)
        order = self.ranking(cf, final)
        ranked = [task.candidates[i] for i in order]
        raw = {
            task.candidates[i]: {"cf": round(float(cf[i]), 6),
                                 "sim": None if sim is None else round(float(sim[i]), 6),
                                 "final": round(float(final[i]), 6)}
            for i in order
        }
        return ranking_judgement(task, profile, self.name, ranked, json.dumps(raw))
