"""RunData: the run's data as components receive it, built from a dataset config and a run directory."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from lettingo.components import Context
from lettingo.data import FileDataset
from lettingo.run_data import RunData, load_run_data
from lettingo.store import RunStore, write_atomic
from lettingo.types import Item


def test_defaults_are_the_label_rule_and_a_one_to_five_scale():
    data = RunData.of({"a": Item("a", "Alien (1979)")})
    assert (data.like_min, data.dislike_max, data.rating_scale, data.dataset) == (4.0, 2.0, (1.0, 5.0), None)
    assert [data.label(r) for r in (5, 4, 3, 2, 1)] == ["like", "like", "neutral", "dislike", "dislike"]
    with pytest.raises(dataclasses.FrozenInstanceError):  # components cannot change what others read
        data.like_min = 3.0


def test_the_dataset_config_sets_the_rule_and_the_scale():
    data = RunData.of({}, OmegaConf.create({"like_min": 8, "dislike_max": 3, "rating_scale": [1, 10]}))
    assert (data.like_min, data.dislike_max, data.rating_scale) == (8.0, 3.0, (1.0, 10.0))
    assert [data.label(r) for r in (9, 5, 3)] == ["like", "neutral", "dislike"]
    nulls = RunData.of({}, {"like_min": None, "dislike_max": None, "rating_scale": None})
    assert (nulls.like_min, nulls.dislike_max, nulls.rating_scale) == (4.0, 2.0, (1.0, 5.0))


def test_a_run_directory_gives_its_items_and_the_built_dataset(tmp_path):
    store = RunStore(tmp_path)
    write_atomic(store.path("items.jsonl"), '{"item_id": "a", "title": "Alien (1979)"}\n')
    cfg = OmegaConf.create({"dataset": {"name": "movielens", "like_min": 5}})
    data = load_run_data(Context(cache=None), cfg, store)
    assert data.items["a"].title == "Alien (1979)" and data.like_min == 5.0
    assert isinstance(data.dataset, FileDataset)  # built, not loaded: nothing read yet
