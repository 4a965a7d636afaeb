"""MovieLens loading: the packaged ml-100k, GroupLens folders, RecBole folders, and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lettingo.builtins import datasets as builtin_datasets
from lettingo.data import DatasetError, InteractionData
from lettingo.data.movielens import MovieLens

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "ml-100k-mini"
CONFIG = ROOT / "conf" / "dataset" / "movielens.yaml"


def load(path) -> InteractionData:
    cfg = OmegaConf.load(CONFIG)
    cfg.path = None if path is None else str(path)
    return MovieLens(cfg, None).load()


@pytest.fixture(scope="module")
def ml100k() -> InteractionData:
    return load(None)


@pytest.fixture
def grouplens_copy(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "ml-100k"))


def test_packaged_ml100k_has_the_published_counts(ml100k):
    frame = ml100k.interactions
    assert len(frame) == 100_000
    assert frame["user_id"].nunique() == 943
    assert len(ml100k.items) == 1682
    assert set(frame["item_id"]) <= set(ml100k.items)
    assert frame["rating"].between(1, 5).all()
    assert str(frame["timestamp"].dtype) == "int64"
    assert frame["text"].isna().all()  # MovieLens has no reviews
    assert isinstance(frame["user_id"].iloc[0], str) and isinstance(frame["item_id"].iloc[0], str)


def test_packaged_item_text_has_title_year_and_genres(ml100k):
    toy_story = ml100k.items["1"]
    assert toy_story.title == "Toy Story"
    assert toy_story.attributes == {"year": 1995, "genres": ["Animation", "Children's", "Comedy"]}
    assert toy_story.describe() == "Toy Story; year: 1995; genres: Animation, Children's, Comedy"


def test_config_file_matches_the_registered_name():
    cfg = OmegaConf.load(CONFIG)
    registered = {}
    builtin_datasets.lettingo_register_datasets(register=lambda name, factory: registered.update({name: factory}))
    assert CONFIG.stem == cfg.name == "movielens"
    assert registered == {"movielens": MovieLens}
    assert cfg.path is None and cfg.like_min == 4 and cfg.dislike_max == 2


def test_grouplens_folder_reads_latin1_titles_and_genre_flags():
    data = load(FIXTURE)
    assert len(data.interactions) == 10
    assert sorted(data.interactions["user_id"].unique()) == ["1", "2", "3"]
    french = data.items["3"]
    assert french.title == "Cité des enfants perdus, La"  # Latin-1 byte 0xE9 decoded, year suffix removed
    assert french.attributes == {"year": 1995, "genres": ["Adventure", "Sci-Fi"]}
    assert data.items["1"].describe() == "Toy Story; year: 1995; genres: Animation, Children's, Comedy"
    assert data.items["4"].attributes["year"] == 1986  # no "(year)" in the title: taken from the release date
    assert data.items["5"].attributes == {"year": None, "genres": ["unknown"]}
    row = data.interactions.iloc[4]
    assert (row.user_id, row.item_id, row.rating, row.timestamp) == ("2", "4", 1.0, 888551094)


def test_missing_folder_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match="nowhere") as info:
        load(missing)
    assert "u.data" in str(info.value) and "null" in str(info.value)


def test_missing_grouplens_file_is_named(grouplens_copy):
    (grouplens_copy / "u.genre").unlink()
    with pytest.raises(DatasetError) as info:
        load(grouplens_copy)
    message = str(info.value)
    assert str(grouplens_copy) in message and "missing u.genre" in message


def test_folder_without_movielens_files_lists_what_was_expected(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"u\.data, u\.item, u\.genre"):
        load(tmp_path)


@pytest.mark.parametrize(
    "bad_line, complaint",
    [("7\t1\t4\n", "expected 4 fields"), ("7\t1\tfive\t881250949\n", "must be numbers")],
)
def test_malformed_rating_line_is_reported_by_number(grouplens_copy, bad_line, complaint):
    with open(grouplens_copy / "u.data", "a") as handle:
        handle.write(bad_line)
    with pytest.raises(DatasetError, match=complaint) as info:
        load(grouplens_copy)
    assert f"{grouplens_copy / 'u.data'} line 11:" in str(info.value)


def test_malformed_item_line_is_reported_by_number(grouplens_copy):
    lines = (grouplens_copy / "u.item").read_bytes().split(b"\n")
    lines[1] = lines[1].rsplit(b"|", 1)[0]  # drop the last genre flag of item 2
    (grouplens_copy / "u.item").write_bytes(b"\n".join(lines))
    with pytest.raises(DatasetError, match=r"u\.item line 2: expected 24 fields"):
        load(grouplens_copy)


def test_recbole_atomic_folder_is_read_by_header_names(tmp_path):
    (tmp_path / "mini.inter").write_text(
        "timestamp:float\trating:float\titem_id:token\tuser_id:token\n"
        "881250949\t3\t7\tu1\n881250950\t5\t8\tu1\n"
    )
    (tmp_path / "mini.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "7\tHeat\t1995\tAction Crime Thriller\n8\tunkonwn\tunkonwn\tunknown\n"
    )
    data = load(tmp_path)
    assert data.interactions[["user_id", "item_id", "rating", "timestamp"]].values.tolist() == [
        ["u1", "7", 3.0, 881250949],
        ["u1", "8", 5.0, 881250950],
    ]
    assert data.items["7"].describe() == "Heat; year: 1995; genres: Action, Crime, Thriller"
    assert data.items["8"].attributes["year"] is None


def test_interaction_data_rejects_a_table_without_the_required_columns():
    import pandas as pd

    with pytest.raises(DatasetError, match=r"lacks columns \['timestamp', 'text'\]"):
        InteractionData("broken", pd.DataFrame({"user_id": [], "item_id": [], "rating": []}))
