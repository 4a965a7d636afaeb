"""The ``implicit_rerank`` recommender's options (imports nothing heavy: read when configs are composed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class ImplicitRerankSettings:
    """A collaborative-filtering judge (lettingo-implicit): an `implicit` ALS/BPR model, fitted on the
    dataset without any user's last interaction (every task's target is one), scores the candidates;
    a profile re-ranks them by its sentence-embedding similarity to each candidate.
    final = (1 - w) z(cf) + w z(cos(profile, item)), z-scored within the task; no profile: CF alone.
    score = NDCG@10 of the target; correct = target in the top 5."""

    name: str = "implicit_rerank"
    model: str = "als"                # als | bpr (implicit.cpu models)
    factors: int = 64                 # latent dimensions (bpr adds an item-bias column)
    iterations: Optional[int] = None  # null: the model's own default (als 15, bpr 100)
    regularization: float = 0.01      # L2 penalty on the factors
    alpha: float = 1.0                # als only: confidence of an observed interaction is 1 + alpha
    learning_rate: float = 0.01       # bpr only
    seed: int = 0                     # factor initialisation (and bpr's sampling): same seed, same model
    num_threads: int = 1              # implicit's threads (0: every core); >1 makes bpr non-deterministic
    profile_weight: float = 0.3       # w above, in [0, 1]
    rerank_top: Optional[int] = None  # re-rank only the CF top-N candidates (the rest follow in CF order); null: all
    embedding_model: str = "all-minilm-l6-v2"  # alias of the packaged MiniLM, or a sentence-transformers id / directory
    batch_size: int = 64              # embedding batch size
    device: str = "cpu"               # embedding device
