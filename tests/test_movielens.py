"""MovieLens loading: the packaged ml-100k, GroupLens folders, RecBole folders, and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lettingo.builtins import datasets as builtin_datasets
from lettingo.data import DatasetError, InteractionData
from lettingo.data.movielens import MovieLens
from lettingo.testing import option

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "ml-100k-mini"


def load(path, **overrides) -> InteractionData:
    cfg = option("dataset", "movielens")
    cfg.path = None if path is None else str(path)
    cfg.update(overrides)
    return MovieLens(cfg, None).load()


@pytest.fixture(scope="module")
def ml100k() -> InteractionData:
    return load(None)


@pytest.fixture
def grouplens_copy(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "ml-100k"))


def test_packaged_ml100k_has_the_published_counts(ml100k):
    frame = ml100k.interactions(text=True)
    assert len(frame) == 100_000
    assert frame["user_id"].nunique() == 943
    assert len(ml100k.items()) == len(ml100k.item_ids()) == 1682
    assert set(frame["item_id"]) <= set(ml100k.item_ids())
    assert frame["rating"].between(1, 5).all()
    assert str(frame["timestamp"].dtype) == "int64"
    assert frame["text"].isna().all() and not ml100k.has_text  # MovieLens has no reviews
    assert isinstance(frame["user_id"].iloc[0], str) and isinstance(frame["item_id"].iloc[0], str)
    assert ml100k.report["bad_records"]["skipped"] == 0


def test_packaged_item_text_has_title_year_and_genres(ml100k):
    toy_story = ml100k.items(["1"])["1"]
    assert toy_story.title == "Toy Story"
    assert toy_story.attributes == {"year": 1995, "genres": ["Animation", "Children's", "Comedy"]}
    assert toy_story.describe() == "Toy Story; year: 1995; genres: Animation, Children's, Comedy"


def test_config_file_matches_the_registered_name():
    cfg = option("dataset", "movielens")
    registered = {}
    builtin_datasets.lettingo_register_datasets(register=lambda name, factory: registered.update({name: factory}))
    assert cfg.name == "movielens"
    assert registered["movielens"] is MovieLens
    assert cfg.path is None and cfg.like_min == 4 and cfg.dislike_max == 2


def test_grouplens_folder_reads_latin1_titles_and_genre_flags():
    data = load(FIXTURE)
    frame, items = data.interactions(), data.items()
    assert len(frame) == 10
    assert sorted(frame["user_id"].unique()) == ["1", "2", "3"]
    french = items["3"]
    assert french.title == "Cité des enfants perdus, La"  # Latin-1 byte 0xE9 decoded, year suffix removed
    assert french.attributes == {"year": 1995, "genres": ["Adventure", "Sci-Fi"]}
    assert items["1"].describe() == "Toy Story; year: 1995; genres: Animation, Children's, Comedy"
    assert items["4"].attributes["year"] == 1986  # no "(year)" in the title: taken from the release date
    assert items["5"].attributes == {"year": None, "genres": ["unknown"]}
    row = frame.iloc[4]
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
    with pytest.raises(DatasetError, match=r"u\.data \+ u\.item \+ u\.genre"):
        load(tmp_path)


@pytest.mark.parametrize(
    "bad_line, kind, complaint",
    [("7\t1\t4\n", "wrong_field_count", "expected 4 fields"),
     ("7\t1\tfive\t881250949\n", "bad_rating", "rating 'five' is not a number"),
     ("7\t1\t6\t881250949\n", "rating_out_of_scale", "outside the scale 1-5")],
)
def test_a_malformed_rating_line_is_skipped_and_counted_or_reported_by_number(grouplens_copy, bad_line, kind,
                                                                              complaint):
    with open(grouplens_copy / "u.data", "a") as handle:
        handle.write(bad_line)
    data = load(grouplens_copy)
    assert len(data.interactions()) == 10
    bad = data.report["bad_records"]
    assert bad["by_kind"] == {kind: 1} and bad["examples"][kind][0].startswith(f"{grouplens_copy / 'u.data'} line 11:")
    with pytest.raises(DatasetError, match=complaint) as info:
        load(grouplens_copy, on_bad_record="fail")
    assert f"{grouplens_copy / 'u.data'} line 11:" in str(info.value)
    assert "on_bad_record=skip" in str(info.value)


def test_a_wrong_separator_is_a_structure_error_on_the_first_line(grouplens_copy):
    data_file = grouplens_copy / "u.data"
    data_file.write_text(data_file.read_text().replace("\t", ","))
    with pytest.raises(DatasetError, match=r"u\.data line 1: expected 4 fields .* found 1") as info:
        load(grouplens_copy)
    assert "separated differently" in str(info.value)


def test_too_many_bad_records_mean_the_wrong_file(grouplens_copy):
    with open(grouplens_copy / "u.data", "a") as handle:
        handle.write("".join(f"7\t1\t{9 + i}\t881250949\n" for i in range(5)))
    with pytest.raises(DatasetError, match=r"5 records were bad against 10 usable ratings"):
        load(grouplens_copy)


def test_the_prepared_dataset_is_cached_and_rebuilt_when_a_file_changes(grouplens_copy):
    first = load(grouplens_copy)
    assert load(grouplens_copy).folder == first.folder
    with open(grouplens_copy / "u.data", "a") as handle:
        handle.write("3\t1\t2\t881250999\n")
    changed = load(grouplens_copy)
    assert changed.folder != first.folder and len(changed.interactions()) == 11
    rebuilt = load(grouplens_copy, cache=False)
    assert rebuilt.folder == changed.folder and len(rebuilt.interactions()) == 11


def test_malformed_item_line_is_reported_by_number(grouplens_copy):
    lines = (grouplens_copy / "u.item").read_bytes().split(b"\n")
    lines[1] = lines[1].rsplit(b"|", 1)[0]  # drop the last genre flag of item 2
    (grouplens_copy / "u.item").write_bytes(b"\n".join(lines))
    with pytest.raises(DatasetError, match=r"u\.item line 2: expected 24 fields"):
        load(grouplens_copy, on_bad_record="fail")
    data = load(grouplens_copy)  # skipped: item 2 has no metadata now, so its ratings are skipped too
    assert "2" not in data.item_ids() and "2" not in set(data.interactions()["item_id"])
    assert data.report["bad_records"]["by_kind"] == {"wrong_field_count": 1, "item_without_metadata": 2}


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
    assert data.interactions().astype({"user_id": str, "item_id": str}).values.tolist() == [
        ["u1", "7", 3.0, 881250949],
        ["u1", "8", 5.0, 881250950],
    ]
    assert data.items()["7"].describe() == "Heat; year: 1995; genres: Action, Crime, Thriller"
    assert data.items()["8"].attributes["year"] is None


def test_a_killed_build_leaves_no_cache_entry_and_its_leftovers_are_cleared(grouplens_copy, monkeypatch):
    import os

    from lettingo.data import prepared

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(prepared.DatasetBuilder, "finish", killed)
        with pytest.raises(KeyboardInterrupt):
            load(grouplens_copy)
    root = prepared.datasets_cache_dir()
    assert not list(root.iterdir())  # neither an entry nor the half-built folder
    data = load(grouplens_copy)
    leftover = root / f".{data.folder.name}-x"  # what a kill -9 during a rebuild leaves behind
    leftover.mkdir()
    os.utime(leftover, (0, 0))
    assert load(grouplens_copy, cache=False).folder == data.folder
    assert [p.name for p in root.iterdir()] == [data.folder.name]
