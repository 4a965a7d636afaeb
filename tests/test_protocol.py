"""The evaluation protocol: windows, time order, labels, candidates, splits, skips and leakage guards."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from omegaconf import OmegaConf

from lettingo.data import DatasetError, InteractionData
from lettingo.data.movielens import MovieLens
from lettingo.data.protocol import LeakageError, build_tasks, check_task, derive_seed, label_for
from lettingo.types import Interaction, Item, UserTask

THRESHOLDS = {"like_min": 4, "dislike_max": 2}
SMALL = {"profile_window": 3, "recent_window": 2, "num_candidates": 20, "train_users": 6, "test_users": 4, "seed": 7}


def synthetic(history_lengths: dict[str, int], n_items: int = 60, seed: int = 0) -> InteractionData:
    """Users with the given history lengths; timestamps drawn from a narrow range so ties happen."""
    rng = np.random.default_rng(seed)
    rows = []
    for user, length in history_lengths.items():
        for item in rng.choice(n_items, size=length, replace=False):
            rows.append((user, str(item), float(rng.integers(1, 6)), int(rng.integers(1000, 1000 + length))))
    catalogue = [Item(str(i), f"movie {i}") for i in range(n_items)]
    return InteractionData.from_records("synthetic", rows, catalogue)


@pytest.fixture(scope="module")
def data() -> InteractionData:
    lengths = {f"u{i}": 6 + i for i in range(12)}  # all eligible for N=3, K=2 (6 needed)
    lengths.update({"short1": 5, "short2": 1})  # one short of eligible, and far short
    return synthetic(lengths)


@pytest.fixture(scope="module")
def built(data):
    return build_tasks(data, SMALL, THRESHOLDS)


def order_key(interaction: Interaction) -> tuple[int, str]:
    return interaction.timestamp, interaction.item_id


def test_windows_have_the_configured_sizes_and_come_from_the_latest_interactions(data, built):
    tasks, _ = built
    frame = data.interactions()
    for task in tasks:
        assert len(task.profile_window) == 3 and len(task.recent_window) == 2
        history = frame[frame["user_id"] == task.user_id]
        latest = sorted(zip(history["timestamp"], history["item_id"]))[-6:]
        used = [order_key(i) for i in task.profile_window + task.recent_window + [task.target]]
        assert used == latest


def test_every_window_interaction_strictly_precedes_its_target(built):
    tasks, _ = built
    for task in tasks:
        keys = [order_key(i) for i in task.profile_window + task.recent_window]
        assert keys == sorted(keys)
        assert all(key < order_key(task.target) for key in keys)
        assert all(i.user_id == task.user_id for i in task.profile_window + task.recent_window)


def test_equal_timestamps_are_ordered_by_item_id_as_strings():
    history = [("a", 3.0, 1), ("b", 3.0, 2), ("c", 3.0, 3), ("9", 5.0, 10), ("10", 1.0, 10)]
    rows = [(user, *row) for user in ("u", "v") for row in history]
    items = {str(i): Item(str(i), "x") for i in range(30)} | {k: Item(k, k) for k in "abc"}
    data = InteractionData.from_records("ties", rows, items.values())
    cfg = dict(SMALL, profile_window=2, recent_window=2, num_candidates=3, train_users=1, test_users=1)
    tasks, _ = build_tasks(data, cfg, THRESHOLDS)
    for task in tasks:  # "10" < "9" as strings, so at timestamp 10 item "9" is the later one: the target
        assert task.target.item_id == "9" and task.label == "like"
        assert task.recent_window[-1].item_id == "10"


def test_labels_follow_the_dataset_thresholds(built):
    tasks, _ = built
    for task in tasks:
        assert task.label == {5: "like", 4: "like", 3: "neutral", 2: "dislike", 1: "dislike"}[int(task.target.rating)]
    assert [label_for(r, like_min=5, dislike_max=1) for r in (5, 4, 2, 1)] == ["like", "neutral", "neutral", "dislike"]
    assert label_for(3.5, like_min=3.5, dislike_max=2.5) == "like"


def test_candidates_are_the_target_and_items_the_user_never_rated(data, built):
    tasks, _ = built
    frame = data.interactions()
    for task in tasks:
        rated = set(frame.loc[frame["user_id"] == task.user_id, "item_id"])
        assert len(task.candidates) == 20 == len(set(task.candidates))
        assert task.target.item_id in task.candidates
        negatives = set(task.candidates) - {task.target.item_id}
        assert not negatives & rated
        assert negatives <= set(data.items())
        assert task.candidate_seed == derive_seed(SMALL["seed"], task.user_id)
    positions = Counter(task.candidates.index(task.target.item_id) for task in tasks)
    assert len(positions) > 1  # shuffled, not always first


def test_same_seed_same_tasks_other_seed_other_tasks(data, built):
    tasks, summary = built
    again, summary_again = build_tasks(data, SMALL, THRESHOLDS)
    assert [t.to_dict() for t in again] == [t.to_dict() for t in tasks] and summary_again == summary
    other, _ = build_tasks(data, dict(SMALL, seed=8), THRESHOLDS)
    assert [t.task_id for t in other] != [t.task_id for t in tasks]
    same_user = {t.user_id: t for t in other}
    assert any(same_user[t.user_id].candidates != t.candidates for t in tasks if t.user_id in same_user)


def test_splits_are_disjoint_sized_as_asked_and_named_in_task_ids(built):
    tasks, summary = built
    train = {t.user_id for t in tasks if t.split == "train"}
    test = {t.user_id for t in tasks if t.split == "test"}
    assert (len(train), len(test)) == (6, 4) and not train & test
    assert all(t.task_id == f"{t.split}-{t.user_id}" for t in tasks)
    assert summary["splits"]["train"]["users"] == 6 and summary["splits"]["test"]["users"] == 4
    for split in ("train", "test"):
        counts = Counter(t.label for t in tasks if t.split == split)
        assert summary["splits"][split]["labels"] == {k: counts.get(k, 0) for k in ("like", "neutral", "dislike")}


def test_short_histories_are_skipped_and_counted(built):
    tasks, summary = built
    assert not {"short1", "short2"} & {t.user_id for t in tasks}
    assert summary["users"] == {
        "total": 14,
        "eligible": 12,
        "kept": 10,
        "skipped": 2,
        "skipped_reasons": {"too_few_interactions": 2, "too_few_unrated_items": 0},
        "eligible_unused": 2,
    }
    assert summary["history_length"]["all"] == {"min": 1, "median": 10.5, "max": 17}
    assert summary["seed"] == 7 and summary["shortfall"] is None


def test_users_without_enough_unrated_items_are_skipped_for_that_reason():
    data = synthetic({"a": 6, "b": 6, "c": 7, "d": 8}, n_items=25)  # c and d leave 18 and 17 unrated < 19
    tasks, summary = build_tasks(data, dict(SMALL, train_users=1, test_users=1), THRESHOLDS)
    assert summary["users"]["skipped_reasons"] == {"too_few_interactions": 0, "too_few_unrated_items": 2}
    assert sorted(t.user_id for t in tasks) == ["a", "b"]


def test_fewer_eligible_users_than_asked_shrinks_both_splits_and_says_so(data):
    tasks, summary = build_tasks(data, dict(SMALL, train_users=30, test_users=20), THRESHOLDS)
    assert (summary["splits"]["train"]["users"], summary["splits"]["test"]["users"]) == (7, 5)
    assert len(tasks) == 12 and "only 12 qualify" in summary["shortfall"]
    tiny = synthetic({"a": 6, "b": 3})
    with pytest.raises(DatasetError, match="only 1 of 2 users qualify"):
        build_tasks(tiny, SMALL, THRESHOLDS)


def test_duplicate_ratings_keep_the_latest():
    rows = [("u", str(i), 3.0, 100 + i) for i in range(6)] + [("u", "2", 5.0, 200)]
    rows += [("v", str(i), 2.0, 10 + i) for i in range(6)]
    data = InteractionData.from_records("dups", rows, [Item(str(i), "x") for i in range(40)])
    cfg = dict(SMALL, profile_window=2, recent_window=2, train_users=1, test_users=1)
    tasks, summary = build_tasks(data, cfg, THRESHOLDS)
    task = next(t for t in tasks if t.user_id == "u")
    assert summary["duplicates_dropped"] == 1
    assert (task.target.item_id, task.target.rating, task.label) == ("2", 5.0, "like")
    assert "2" not in [i.item_id for i in task.profile_window + task.recent_window]


def test_tasks_round_trip_through_json(built):
    tasks, summary = built
    for task in tasks:
        assert UserTask.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    json.dumps(summary)


def hand_made_task(**changes) -> UserTask:
    def at(item, ts):
        return Interaction("u", item, 4.0, ts)

    fields = dict(
        task_id="test-u",
        user_id="u",
        split="test",
        profile_window=[at("1", 10), at("2", 20)],
        recent_window=[at("3", 30), at("4", 40)],
        target=at("5", 50),
        label="like",
        candidates=["9", "5", "8"],
        candidate_seed=1,
    )
    return UserTask(**{**fields, **changes})


def test_check_task_accepts_a_clean_task():
    check_task(hand_made_task())


@pytest.mark.parametrize(
    "changes, offending",
    [
        ({"recent_window": [Interaction("u", "3", 4.0, 30), Interaction("u", "6", 4.0, 60)]}, "'6'"),
        ({"profile_window": [Interaction("u", "7", 4.0, 51)]}, "'7'"),
        ({"recent_window": [Interaction("u", "6", 4.0, 50)]}, "'6'"),  # same second, later by item id
        ({"profile_window": [Interaction("u", "5", 4.0, 5)]}, "'5'"),  # the target itself in a window
        ({"candidates": ["9", "8"]}, "'5'"),
    ],
)
def test_check_task_raises_on_leaks(changes, offending):
    with pytest.raises(LeakageError, match="test-u") as info:
        check_task(hand_made_task(**changes))
    assert offending in str(info.value)
    assert isinstance(info.value, ValueError)


def test_packaged_movielens_with_the_default_windows():
    data = MovieLens(OmegaConf.create({"name": "movielens", "path": None}), None).load()
    tasks, summary = build_tasks(data, {"train_users": 300, "test_users": 200, "seed": 0}, THRESHOLDS)
    frame = data.interactions()
    counts = frame.groupby("user_id", observed=True).size()
    assert summary["users"]["total"] == 943
    assert summary["users"]["skipped_reasons"]["too_few_interactions"] == int((counts < 41).sum())
    assert len(tasks) == 500 and summary["history_length"]["kept"]["min"] >= 41
    for task in tasks[:50]:
        history = frame[frame["user_id"] == task.user_id]
        last = max(zip(history["timestamp"], history["item_id"]))
        assert order_key(task.target) == last
        assert len(task.profile_window) == 30 and len(task.recent_window) == 10


def test_build_tasks_checks_every_task_it_builds(data, monkeypatch):
    from lettingo.data import protocol

    checked = []
    monkeypatch.setattr(protocol, "check_task", lambda task: checked.append(task.task_id))
    tasks, _ = build_tasks(data, SMALL, THRESHOLDS)
    assert checked == [t.task_id for t in tasks]


def test_thresholds_that_overlap_are_refused(data):
    with pytest.raises(DatasetError, match="like_min"):
        build_tasks(data, SMALL, {"like_min": 3, "dislike_max": 3})


def test_protocol_errors_are_user_errors_the_command_line_reports_plainly():
    from lettingo.errors import LettingoError

    assert issubclass(LeakageError, LettingoError) and issubclass(DatasetError, LettingoError)


def test_paper_train_groups_get_their_own_profile_windows(data):
    cfg = dict(SMALL, profile_window=3, train_profile_windows=[1, 2, 3], train_users=6, test_users=4)
    tasks, summary = build_tasks(data, cfg, THRESHOLDS)
    train = [t for t in tasks if t.split == "train"]
    assert [len(t.profile_window) for t in train] == [1, 1, 2, 2, 3, 3]
    assert all(len(t.profile_window) == 3 for t in tasks if t.split == "test")
    assert summary["train_groups"] == [{"profile_window": w, "users": 2} for w in (1, 2, 3)]
    assert summary["settings"]["min_interactions"] == 6  # the largest window + K + 1, for every user


def test_a_fixed_min_interactions_keeps_the_same_users_across_window_sweeps(data):
    users = []
    for window in (1, 2, 3):
        tasks, summary = build_tasks(data, dict(SMALL, profile_window=window, min_interactions=6), THRESHOLDS)
        users.append([(t.split, t.user_id) for t in tasks])
        assert summary["users"]["skipped_reasons"]["too_few_interactions"] == 2
    assert users[0] == users[1] == users[2]
    with pytest.raises(DatasetError, match="min_interactions=4 is below"):
        build_tasks(data, dict(SMALL, min_interactions=4), THRESHOLDS)


def test_popularity_sampling_draws_popular_items_more_often_and_is_seeded():
    rng = np.random.default_rng(3)
    rows = [(f"u{u}", str(i), 4.0, 100 + i) for u in range(30) for i in rng.choice(50, size=8, replace=False)]
    rows += [(f"fan{u}", "hit", 4.0, 10) for u in range(30)]  # one item everyone rated
    rows += [(f"fan{u}", f"x{u}-{k}", 3.0, 11 + k) for u in range(30) for k in range(5)]
    items = [Item(str(i), "x") for i in range(50)] + [Item("hit", "hit")]
    items += [Item(f"x{u}-{k}", "x") for u in range(30) for k in range(5)] + [Item("never", "never rated")]
    data = InteractionData.from_records("pop", rows, items)
    cfg = dict(SMALL, profile_window=2, recent_window=2, num_candidates=10, train_users=15, test_users=15)
    uniform, _ = build_tasks(data, cfg, THRESHOLDS)
    popular, summary = build_tasks(data, dict(cfg, candidate_sampling="popularity"), THRESHOLDS)
    again, _ = build_tasks(data, dict(cfg, candidate_sampling="popularity"), THRESHOLDS)
    assert [t.candidates for t in again] == [t.candidates for t in popular]
    assert summary["settings"]["candidate_sampling"] == "popularity"

    def share_of_hit(tasks):  # among users who never rated it
        eligible = [t for t in tasks if t.user_id.startswith("u")]
        return sum("hit" in t.candidates for t in eligible) / len(eligible)

    # "hit" holds 30 of 420 ratings (1 of 231 items): ~48% of 9 popularity draws, ~4% of uniform ones
    assert share_of_hit(popular) > 0.3 > 0.15 > share_of_hit(uniform)
    assert "never" not in {c for t in popular for c in t.candidates}
    with pytest.raises(DatasetError, match="candidate_sampling must be one of uniform, popularity"):
        build_tasks(data, dict(cfg, candidate_sampling="zipf"), THRESHOLDS)


def test_window_interactions_carry_review_text_and_the_target_never_does():
    rows = [(u, str(i), 4.0, 100 + i, f"review of {i} by {u}") for u in ("a", "b") for i in range(6)]
    data = InteractionData.from_records("reviews", rows, [Item(str(i), "x") for i in range(40)])
    cfg = dict(SMALL, profile_window=2, recent_window=2, train_users=1, test_users=1)
    tasks, _ = build_tasks(data, cfg, THRESHOLDS)
    for task in tasks:
        assert [i.text for i in task.profile_window + task.recent_window] == [
            f"review of {i} by {task.user_id}" for i in range(1, 5)]
        assert task.target.text is None
        assert "review of 5" not in json.dumps(task.to_dict())
    with pytest.raises(LeakageError, match="review text"):
        check_task(hand_made_task(target=Interaction("u", "5", 4.0, 50, text="loved it")))


def test_validation_users_come_after_train_and_test_and_leave_them_as_they_were(data, built):
    tasks, _ = built
    with_validation, summary = build_tasks(data, dict(SMALL, validation_users=2), THRESHOLDS)
    by_split = {s: [t.task_id for t in with_validation if t.split == s] for s in ("train", "test", "validation")}
    assert by_split["train"] == [t.task_id for t in tasks if t.split == "train"]
    assert by_split["test"] == [t.task_id for t in tasks if t.split == "test"]
    assert len(by_split["validation"]) == 2 and all(i.startswith("validation-") for i in by_split["validation"])
    users = {s: {i.split("-", 1)[1] for i in ids} for s, ids in by_split.items()}
    assert not users["validation"] & (users["train"] | users["test"])
    assert summary["splits"]["validation"]["users"] == 2
    assert "validation" not in build_tasks(data, SMALL, THRESHOLDS)[1]["splits"]
    # 12 eligible users: 6 train + 4 test leave 2; asking for more takes what is left, none is an error
    assert len([t for t in build_tasks(data, dict(SMALL, validation_users=5), THRESHOLDS)[0]
                if t.split == "validation"]) == 2
    with pytest.raises(DatasetError, match="protocol.validation_users"):
        build_tasks(data, dict(SMALL, train_users=8, validation_users=1), THRESHOLDS)
