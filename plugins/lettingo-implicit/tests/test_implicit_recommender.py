"""implicit_rerank on the packaged MovieLens-100K: a real implicit model, real MiniLM embeddings."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import inspect
import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from lettingo import plugins
from lettingo.components import Context
from lettingo.data import InteractionData
from lettingo.data.movielens import MovieLens
from lettingo.data.protocol import build_tasks
from lettingo.errors import ComponentConfigError
from lettingo.hookspecs import hookimpl
from lettingo.metrics import ndcg_at_k
from lettingo.run_data import RunData
from lettingo.settings import defaults
from lettingo.testing import plugin_registered
from lettingo.types import Item, Profile
from lettingo_implicit.recommender import ImplicitReranker, fit_model, hold_out_last
from lettingo_implicit.settings import ImplicitRerankSettings

FAST = {"factors": 32, "iterations": 8}  # a second or so on ml-100k, one thread
DATASET = {"name": "movielens", "path": None, "like_min": 4, "dislike_max": 2}
PROTOCOL = {"profile_window": 20, "recent_window": 10, "num_candidates": 20, "train_users": 12, "test_users": 12,
            "seed": 0}


def config(**overrides):
    # plain data, not the typed node: a bad key must reach the recommender, which refuses it
    return OmegaConf.merge(OmegaConf.create(defaults(ImplicitRerankSettings)), FAST, overrides)


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # the prepared Parquet copy goes to a temporary cache
        mp.setenv("LETTINGO_CACHE_DIR", str(tmp_path_factory.mktemp("cache") / "calls"))
        data = MovieLens(OmegaConf.create({"path": None})).load()
    tasks, _ = build_tasks(data, OmegaConf.create(PROTOCOL), OmegaConf.create(DATASET))
    return data, tasks


@pytest.fixture(scope="module")
def ctx():
    return Context(cache=None)


@pytest.fixture(scope="module")
def run_data(ml100k):
    """The items the tasks name, with the dataset's label rule (no dataset component: fitted by hand)."""
    data, _ = ml100k
    return RunData.of(data.items(), OmegaConf.create(DATASET))


@pytest.fixture(scope="module")
def recommender(ml100k, ctx):
    rec = ImplicitReranker.from_config(config(), ctx)
    rec.fit(ml100k[0])
    return rec


def sibling(recommender, ml100k, ctx, **overrides):
    """Another judge with other settings, sharing the embedding model and item embeddings (loading
    MiniLM and embedding the candidates are most of these tests' time)."""
    rec = ImplicitReranker.from_config(config(**overrides), ctx)
    rec.fit(ml100k[0])
    rec.embedder, rec._item_vectors = recommender.embedder, recommender._item_vectors
    return rec


def profile_for(task, text):
    return Profile(task.task_id, "base", "lettingo", 0, text, [{"role": "user", "content": "..."}])


def rank_of_target(judgement, task):
    return judgement.prediction.index(task.target.item_id)


# -- the plugin --------------------------------------------------------------------------------------


def test_settings_match_the_registered_name_and_constructor():
    cfg = OmegaConf.structured(ImplicitRerankSettings)
    assert cfg.name == "implicit_rerank" and cfg.model == "als" and cfg.profile_weight == 0.3
    parameters = set(inspect.signature(ImplicitReranker.__init__).parameters) - {"self", "name"}
    assert set(cfg) - {"name"} == parameters


def test_entry_point_registers_the_recommender_and_its_config_option():
    found = importlib.metadata.entry_points(group="lettingo", name="implicit")
    assert [ep.value for ep in found] == ["lettingo_implicit.plugin"]
    plugins.load_entrypoints(only=["implicit"])
    assert "implicit_rerank" in plugins.components("recommender")
    assert plugins.factory("recommender", "implicit_rerank").Settings is ImplicitRerankSettings
    rec = Context(cache=None).build("recommender", config())
    assert isinstance(rec, ImplicitReranker) and rec.task_type == "ranking" and rec.fitted is None


def test_bad_config_is_refused_by_key():
    with pytest.raises(ComponentConfigError, match="unknown key.*factor"):
        ImplicitReranker.from_config(config(factor=3), None)
    with pytest.raises(ComponentConfigError, match="model must be one of als, bpr"):
        ImplicitReranker.from_config(config(model="svd"), None)
    with pytest.raises(ComponentConfigError, match=r"profile_weight must be in \[0, 1\]"):
        ImplicitReranker.from_config(config(profile_weight=1.5), None)
    with pytest.raises(ComponentConfigError, match="rerank_top"):
        ImplicitReranker.from_config(config(rerank_top=0), None)


# -- no leakage --------------------------------------------------------------------------------------


def test_hold_out_follows_the_protocol_order_and_drops_duplicates_of_the_last_item(tmp_path):
    items = [Item(i, f"Movie {i}") for i in ("a", "b", "c", "d")]
    records = [
        ("u1", "a", 5, 10), ("u1", "c", 4, 20), ("u1", "b", 3, 30), ("u1", "c", 2, 30),  # tie at 30: "c" is later
        ("u2", "d", 4, 5), ("u2", "a", 1, 7),
    ]
    data = InteractionData.from_records("tiny", records, items, folder=tmp_path / "tiny")
    train, held = hold_out_last(data.interactions())
    assert held == {"u1": "c", "u2": "a"}
    assert sorted(zip(train["user_id"].astype(str), train["item_id"].astype(str))) == [
        ("u1", "a"), ("u1", "b"), ("u2", "d")]  # both ratings of u1's "c" are gone


def test_the_training_matrix_holds_no_users_last_interaction(ml100k):
    data, _ = ml100k
    everyone = {**PROTOCOL, "train_users": 600, "test_users": 400, "profile_window": 1, "recent_window": 1}
    tasks, summary = build_tasks(data, OmegaConf.create(everyone), OmegaConf.create(DATASET))
    assert summary["users"]["kept"] == len(tasks) == summary["users"]["total"] == 943  # every user has a task
    fitted = fit_model(data.interactions(), **FAST)
    assert fitted.train_matrix.nnz == len(data.interactions()) - 943  # one interaction per user, no duplicates
    for task in tasks:
        assert fitted.held_out[task.user_id] == task.target.item_id
        row = fitted.user_index[task.user_id]
        column = fitted.item_index.get(task.target.item_id)
        assert column is None or fitted.train_matrix[row, column] == 0, task.task_id
        history = {i.item_id for i in task.profile_window + task.recent_window}
        assert all(fitted.train_matrix[row, fitted.item_index[i]] == 1 for i in history)


# -- the fitted model --------------------------------------------------------------------------------


def test_factors_have_the_configured_shape_and_own_history_scores_above_random_items(recommender):
    fitted = recommender.fitted
    n_users, n_items = fitted.train_matrix.shape
    assert fitted.user_factors.shape == (n_users, 32) and fitted.item_factors.shape == (n_items, 32)
    assert fitted.summary()["held_out"] == 943 and fitted.seconds > 0
    rng = np.random.default_rng(0)
    item_names = list(fitted.item_index)
    wins = 0
    for user in list(fitted.user_index)[:100]:
        row = fitted.train_matrix[fitted.user_index[user]]
        own = [item_names[c] for c in row.indices]
        others = [item_names[c] for c in rng.choice(len(item_names), 200, replace=False) if c not in set(row.indices)]
        wins += fitted.scores(user, own).mean() > fitted.scores(user, others).mean()
    assert wins >= 95


def test_unseen_users_and_items_score_zero(recommender):
    fitted = recommender.fitted
    user = next(iter(fitted.user_index))
    item = next(iter(fitted.item_index))
    assert fitted.scores("no-such-user", [item, "x"]).tolist() == [0.0, 0.0]
    scores = fitted.scores(user, ["no-such-item", item])
    assert scores[0] == 0.0 and scores[1] != 0.0


def test_same_seed_same_model_other_seed_other_model(ml100k):
    interactions = ml100k[0].interactions()
    first, second = fit_model(interactions, **FAST, seed=3), fit_model(interactions, **FAST, seed=3)
    assert np.array_equal(first.user_factors, second.user_factors)
    assert np.array_equal(first.item_factors, second.item_factors)
    assert not np.allclose(first.item_factors, fit_model(interactions, **FAST, seed=4).item_factors)


def test_bpr_fits_and_ranks(ml100k, ctx, run_data):
    rec = ImplicitReranker.from_config(config(model="bpr", iterations=5), ctx)
    rec.fit(ml100k[0])
    assert rec.fitted.item_factors.shape[1] == 33  # bpr adds an item bias column
    task = ml100k[1][0]
    [judgement] = rec.judge([task], [None], run_data)
    assert sorted(judgement.prediction) == sorted(task.candidates)


# -- judging -----------------------------------------------------------------------------------------


def test_judgements_are_well_formed(recommender, ml100k, run_data):
    tasks = ml100k[1][:6]  # the profiled ones are among the 8 the other tests embed
    profiles = [None, None, None] + [profile_for(t, "Loves thoughtful dramas and old westerns.") for t in tasks[3:]]
    judgements = recommender.judge(tasks, profiles, run_data)
    for task, profile, judgement in zip(tasks, profiles, judgements):
        assert judgement.recommender == "implicit_rerank" and judgement.task_id == task.task_id
        assert judgement.profile_id == (profile.profile_id if profile else f"{task.task_id}/none")
        assert sorted(judgement.prediction) == sorted(task.candidates) and len(judgement.prediction) == 20
        rank = rank_of_target(judgement, task)
        assert judgement.score == ndcg_at_k(rank, 10) and judgement.correct == (rank < 5) and judgement.valid
        raw = json.loads(judgement.raw_output)
        assert list(raw) == judgement.prediction
        assert all(set(v) == {"cf", "sim", "final"} for v in raw.values())
        assert all((v["sim"] is None) == (profile is None) for v in raw.values())
        finals = [v["final"] for v in raw.values()]
        assert finals == sorted(finals, reverse=True)
        if profile is None:  # CF alone: the ranking is the CF order
            cfs = [v["cf"] for v in raw.values()]
            assert cfs == sorted(cfs, reverse=True)


def test_judging_is_deterministic(recommender, ml100k, ctx, run_data):
    tasks = ml100k[1][:2]
    profiles = [None, profile_for(tasks[1], "Sci-fi and action fan.")]
    again = sibling(recommender, ml100k, ctx)
    again._item_vectors = {}  # embeds the candidates afresh
    assert [j.to_dict() for j in recommender.judge(tasks, profiles, run_data)] == [
        j.to_dict() for j in again.judge(tasks, profiles, run_data)]


def test_a_profile_describing_the_target_moves_it_up(recommender, ml100k, ctx, run_data):
    tasks = ml100k[1][:8]
    plain = recommender.judge(tasks, [None] * len(tasks), run_data)
    describing = [profile_for(t, run_data.items[t.target.item_id].describe()) for t in tasks]
    helped = recommender.judge(tasks, describing, run_data)
    before = [rank_of_target(j, t) for j, t in zip(plain, tasks)]
    after = [rank_of_target(j, t) for j, t in zip(helped, tasks)]
    assert all(a <= b for a, b in zip(after, before)), (before, after)
    assert sum(after) < sum(before)
    only_profile = sibling(recommender, ml100k, ctx, profile_weight=1.0)
    assert all(rank_of_target(j, t) == 0 for j, t in zip(only_profile.judge(tasks, describing, run_data), tasks))


def test_only_the_cf_top_candidates_are_reranked(recommender, ml100k, ctx, run_data):
    rec = sibling(recommender, ml100k, ctx, profile_weight=1.0, rerank_top=5)
    tasks = ml100k[1][:8]
    judgements = rec.judge(tasks, [profile_for(t, run_data.items[t.target.item_id].describe()) for t in tasks],
                           run_data)
    for task, judgement in zip(tasks, judgements):
        raw = json.loads(judgement.raw_output)
        cf_order = sorted(task.candidates, key=lambda i: -raw[i]["cf"])
        assert set(judgement.prediction[:5]) == set(cf_order[:5])  # the head is the CF top 5, re-ranked
        tail = [raw[i]["cf"] for i in judgement.prediction[5:]]
        assert tail == sorted(tail, reverse=True)  # the rest stays in CF order
        in_head = task.target.item_id in cf_order[:5]
        assert (judgement.prediction[0] == task.target.item_id) == in_head


def test_no_profile_loads_no_embedding_model(ml100k, ctx, run_data, monkeypatch):
    rec = ImplicitReranker.from_config(config(), ctx)
    rec.fit(ml100k[0])
    monkeypatch.setattr(rec.embedder, "embed", lambda texts: pytest.fail("embedded without a profile"))
    assert len(rec.judge(ml100k[1][:3], [None] * 3, run_data)) == 3


def test_fits_lazily_on_the_runs_dataset(tmp_path):
    items = [Item(f"i{k}", f"Movie {k}") for k in range(30)]
    rng = np.random.default_rng(1)
    records = [(f"u{u}", f"i{k}", 4, t) for u in range(12) for t, k in enumerate(rng.choice(30, 14, replace=False))]
    InteractionData.from_records("tiny", records, items, folder=tmp_path / "tiny")

    class TinyDataset:
        def __init__(self, cfg, ctx):
            pass

        def load(self):
            return InteractionData("tiny", tmp_path / "tiny")

    class Plugin:
        @hookimpl
        def lettingo_register_datasets(self, register):
            register("tiny-implicit", TinyDataset)

    with plugin_registered(Plugin(), "tiny-implicit-data"):
        context = Context(cache=None)
        dataset_cfg = OmegaConf.create({"name": "tiny-implicit"})
        catalog = {i.item_id: i for i in items}
        data = RunData.of(catalog, dataset_cfg, dataset=context.build("dataset", dataset_cfg))
        tasks, _ = build_tasks(InteractionData("tiny", tmp_path / "tiny"),
                               OmegaConf.create({"profile_window": 3, "recent_window": 5, "num_candidates": 10,
                                                 "train_users": 6, "test_users": 6}),
                               OmegaConf.create({"like_min": 4, "dislike_max": 2}))
        rec = ImplicitReranker.from_config(config(factors=4, iterations=3), context)
        judgements = rec.judge(tasks, [None] * len(tasks), data)
    assert rec.fitted is not None and rec.fitted.summary()["held_out"] == 12
    assert len(judgements) == 12 and all(j.valid for j in judgements)
    with pytest.raises(ComponentConfigError, match="has not been fitted"):  # run data naming no dataset
        ImplicitReranker.from_config(config(), Context(cache=None)).judge(tasks[:1], [None], RunData.of(catalog))
