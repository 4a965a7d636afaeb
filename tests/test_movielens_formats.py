"""MovieLens in the GroupLens formats of ml-1m, ml-10m and ml-25m: layouts, exact values, bad input.

The fixtures are a few users and about ten movies each, written byte for byte in the GroupLens
formats: ``::``-separated ``.dat`` files (ml-1m's titles in Latin-1, ml-10m's in UTF-8 with half-star
ratings and ``tags.dat``) and ``.csv`` files with headers and quoted titles (ml-20m, ml-25m, ml-latest).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lettingo.data import DatasetError, InteractionData
from lettingo.data.movielens import MovieLens, detect_layout
from lettingo.data.protocol import build_tasks
from lettingo.testing import option

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
ML1M, ML10M, ML25M = FIXTURES / "ml-1m-mini", FIXTURES / "ml-10m-mini", FIXTURES / "ml-25m-mini"

ML1M_ROWS = [
    ["1", "1193", 5.0, 978300760], ["1", "2355", 5.0, 978824291], ["1", "1", 4.0, 978301968],
    ["1", "260", 4.0, 978300275], ["1", "73", 3.0, 978302109], ["2", "1193", 5.0, 978298413],
    ["2", "6", 4.0, 978299839], ["2", "10", 3.0, 978299620], ["2", "47", 2.0, 978299300],
    ["2", "2", 1.0, 978300000], ["2", "3408", 4.0, 978298700], ["3", "260", 5.0, 978297512],
    ["3", "1", 3.0, 978297039], ["3", "2355", 4.0, 978298000], ["3", "6", 2.0, 978297800],
]
ML10M_ROWS = [
    ["1", "1", 5.0, 838985046], ["1", "32", 3.5, 838983392], ["1", "260", 4.5, 838984474],
    ["1", "296", 0.5, 838983421], ["2", "1", 4.0, 868245777], ["2", "73", 2.5, 868245920],
    ["2", "110", 3.0, 868244562], ["2", "318", 5.0, 868245645], ["3", "260", 3.5, 1136075494],
    ["3", "480", 4.0, 1133571238], ["3", "8606", 1.5, 1136075800], ["5", "2", 3.0, 1163374957],
    ["5", "1", 2.0, 1163374995],
]
ML25M_ROWS = [
    ["1", "296", 5.0, 1147880044], ["1", "1", 3.5, 1147868817], ["1", "11", 4.0, 1147868828],
    ["1", "260", 2.0, 1147878820], ["1", "4973", 4.5, 1147869080], ["1", "2064", 1.0, 1147879000],
    ["2", "1", 4.0, 1141415820], ["2", "29", 3.0, 1141417000], ["2", "1196", 5.0, 1141415900],
    ["2", "171749", 2.5, 1141416000], ["2", "140956", 0.5, 1141418000], ["3", "260", 5.0, 1439472215],
    ["3", "1196", 4.5, 1439472300], ["3", "2", 3.0, 1439472100], ["3", "4973", 4.0, 1439472400],
    ["4", "1", 4.0, 1573938898], ["4", "2", 2.0, 1573939000],
]


def config(path, **overrides):
    cfg = option("dataset", "movielens")
    cfg.path = str(path)
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def load(path, **overrides) -> InteractionData:
    return MovieLens(config(path, **overrides), None).load()


def rows(data: InteractionData) -> list[list]:
    return [[str(r.user_id), str(r.item_id), float(r.rating), int(r.timestamp)]
            for r in data.interactions().itertuples()]


def bad_kinds(data: InteractionData) -> dict[str, int]:
    return data.report["bad_records"]["by_kind"]


def copy(fixture: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fixture, tmp_path / fixture.name))


def append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(text if isinstance(text, bytes) else text.encode())


# --- layouts and exact values ---------------------------------------------------------------


@pytest.mark.parametrize("fixture, layout, files", [
    (ML1M, "dat", ["ratings.dat", "movies.dat"]),  # users.dat is not read
    (ML10M, "dat", ["ratings.dat", "movies.dat", "tags.dat"]),
    (ML25M, "csv", ["ratings.csv", "movies.csv", "tags.csv"]),
])
def test_layout_is_detected_from_the_files(fixture, layout, files):
    assert detect_layout(fixture) == (layout, [fixture / name for name in files])


def test_ml1m_ratings_and_latin1_titles():
    data = load(ML1M)
    assert rows(data) == ML1M_ROWS
    assert data.report["layout"] == "ml-1m/ml-10m (.dat)"
    assert data.report["sources"] == {"items": str(ML1M / "movies.dat"), "ratings": str(ML1M / "ratings.dat")}
    assert data.report["items"] == 10 and data.report["bad_records"]["skipped"] == 0
    assert not data.has_text and data.interactions(text=True)["text"].isna().all()  # MovieLens has no reviews
    items = data.items()
    assert len(items) == 10
    assert items["73"].title == "Misérables, Les"  # byte 0xE9 in the file, decoded as Latin-1
    assert items["73"].attributes == {"year": 1995, "genres": ["Drama", "Musical"]}
    assert items["47"].title == "Seven (Se7en)"  # only the final "(year)" is split off
    assert items["260"].title == "Star Wars: Episode IV - A New Hope"  # one ":" is not a separator
    assert items["260"].attributes == {"year": 1977, "genres": ["Action", "Adventure", "Fantasy", "Sci-Fi"]}
    assert items["1"].describe() == "Toy Story; year: 1995; genres: Animation, Children's, Comedy"
    assert not any("tags" in item.attributes for item in items.values())  # ml-1m has no tags


def test_ml10m_half_stars_utf8_titles_and_tags():
    data = load(ML10M)
    assert rows(data) == ML10M_ROWS
    assert data.report["sources"] == {
        "items": str(ML10M / "movies.dat"), "ratings": str(ML10M / "ratings.dat"), "tags": str(ML10M / "tags.dat"),
    }
    items = data.items()
    assert items["73"].title == "Misérables, Les"  # UTF-8 here: read as UTF-8, not as Latin-1
    assert items["32"].title == "Twelve Monkeys (a.k.a. 12 Monkeys)"
    assert items["8606"].attributes == {"year": 1958, "genres": []}  # "(no genres listed)"
    # Tags applied by at least two distinct users, case folded, most users first, then by name.
    assert items["1"].attributes["tags"] == ["pixar", "funny"]  # "boring": one user only
    assert items["260"].attributes["tags"] == ["sci-fi"]  # "overrated": one user, twice
    assert "tags" not in items["480"].attributes  # "dinosaurs": one user
    assert items["1"].describe() == (
        "Toy Story; year: 1995; genres: Adventure, Animation, Children, Comedy, Fantasy; tags: pixar, funny"
    )


def test_max_tags_limits_the_tags_shown():
    items = load(ML10M, max_tags=1).items()
    assert items["1"].attributes["tags"] == ["pixar"]
    assert all("tags" not in item.attributes for item in load(ML10M, max_tags=0).items().values())


def test_ml25m_csv_quoted_titles_and_no_genres():
    data = load(ML25M)
    assert rows(data) == ML25M_ROWS
    assert data.report["layout"] == "ml-20m/ml-25m/ml-latest (.csv)"
    items = data.items()
    assert len(items) == 11
    assert items["11"].title == "American President, The"  # quoted, with a comma
    assert items["29"].title == "City of Lost Children, The (Cité des enfants perdus, La)"
    assert items["2064"].title == '"Great Performances" Cats'  # doubled quotes inside quotes
    assert items["2064"].attributes == {"year": 1998, "genres": ["Musical"]}
    assert items["140956"].title == "Ready Player One"
    assert items["140956"].attributes == {"year": None, "genres": ["Action", "Sci-Fi", "Thriller"]}
    assert items["171749"].title == "Death Note: Desu nôto"  # a "(2006–2007)" range: the first year
    assert items["171749"].attributes == {"year": 2006, "genres": []}
    assert items["4973"].attributes["tags"] == ["paris", "quirky, romantic"]  # a quoted tag with a comma
    assert "tags" not in items["260"].attributes  # "classic": one user
    assert items["140956"].describe() == "Ready Player One; genres: Action, Sci-Fi, Thriller"


def test_build_tasks_smoke_on_ml25m():
    data = load(ML25M)
    settings = {"profile_window": 2, "recent_window": 1, "num_candidates": 3, "train_users": 1, "test_users": 1}
    dataset_cfg = config(ML25M)
    tasks, summary = build_tasks(data, settings, dataset_cfg)
    # Per eligible user (>= 4 ratings): profile window, recent window, target (time order), label.
    expected = {
        "1": (["4973", "260"], ["2064"], ("296", 5.0, 1147880044), "like"),
        "2": (["1196", "171749"], ["29"], ("140956", 0.5, 1141418000), "dislike"),
        "3": (["2", "260"], ["1196"], ("4973", 4.0, 1439472400), "like"),
    }
    assert len(tasks) == 2 and sorted(t.split for t in tasks) == ["test", "train"]
    assert len({t.user_id for t in tasks}) == 2
    rated = {user: {item for u, item, _, _ in ML25M_ROWS if u == user} for user in expected}
    for task in tasks:
        profile, recent, target, label = expected[task.user_id]
        assert [i.item_id for i in task.profile_window] == profile
        assert [i.item_id for i in task.recent_window] == recent
        assert (task.target.item_id, task.target.rating, task.target.timestamp) == target
        assert task.label == label and task.task_id == f"{task.split}-{task.user_id}"
        assert len(task.candidates) == 3 and task.target.item_id in task.candidates
        assert not (set(task.candidates) - {task.target.item_id}) & rated[task.user_id]
    assert summary["users"]["total"] == 4 and summary["users"]["eligible"] == 3
    assert summary["users"]["skipped_reasons"]["too_few_interactions"] == 1  # user 4: two ratings
    assert summary["load"]["interactions"] == 17
    again, _ = build_tasks(load(ML25M), settings, dataset_cfg)
    assert [t.to_dict() for t in again] == [t.to_dict() for t in tasks]


# --- structure errors ---------------------------------------------------------------------------


def test_ratings_dat_with_tabs_is_a_structure_error(tmp_path):
    folder = copy(ML1M, tmp_path)
    ratings = folder / "ratings.dat"
    ratings.write_text(ratings.read_text().replace("::", "\t"))
    with pytest.raises(DatasetError) as info:
        load(folder)  # even with on_bad_record=skip
    message = str(info.value)
    assert message.startswith(f"{ratings} line 1: expected 4 fields")
    assert "UserID::MovieID::Rating::Timestamp" in message and "found 1" in message


def test_ratings_csv_with_semicolons_is_a_structure_error(tmp_path):
    folder = copy(ML25M, tmp_path)
    ratings = folder / "ratings.csv"
    ratings.write_text(ratings.read_text().replace(",", ";"))
    with pytest.raises(DatasetError, match=r"ratings\.csv line 1: expected the header .userId,movieId,rating,timestamp."):
        load(folder)


@pytest.mark.parametrize("fixture, name", [(ML1M, "movies.dat"), (ML10M, "movies.dat"), (ML25M, "movies.csv")])
def test_missing_movies_file_is_named(tmp_path, fixture, name):
    folder = copy(fixture, tmp_path)
    (folder / name).unlink()
    with pytest.raises(DatasetError) as info:
        load(folder)
    assert str(folder) in str(info.value) and f"missing {name}" in str(info.value)


@pytest.mark.parametrize("fixture, name", [(ML1M, "ratings.dat"), (ML25M, "ratings.csv")])
def test_empty_ratings_file_is_a_structure_error(tmp_path, fixture, name):
    folder = copy(fixture, tmp_path)
    (folder / name).write_bytes(b"")
    with pytest.raises(DatasetError, match="is empty") as info:
        load(folder)
    assert str(folder / name) in str(info.value)


def test_ratings_csv_with_only_its_header_has_no_usable_ratings(tmp_path):
    folder = copy(ML25M, tmp_path)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(DatasetError, match="no usable ratings"):
        load(folder)


# --- bad records ----------------------------------------------------------------------------------

BAD_RATINGS = {
    "rating_out_of_scale": (ML1M, "ratings.dat", "3::47::9::978297900\n", "rating 9 is outside the scale 0.5-5"),
    "wrong_field_count": (ML1M, "ratings.dat", "3::47::4\n", "expected 4 fields"),
    "item_without_metadata": (ML10M, "ratings.dat", "3::999999::4::1136075900\n", "item '999999' has no metadata"),
    "bad_rating": (ML25M, "ratings.csv", "3,296,five,1439472600\n", "rating 'five' is not a number"),
    "bad_timestamp": (ML25M, "ratings.csv", "3,296,4.0,yesterday\n", "timestamp 'yesterday'"),
    "not_utf8": (ML25M, "ratings.csv", b"3,296,4.0,1439472600\xff\n", "bytes that are not utf-8"),
}


@pytest.mark.parametrize("kind", sorted(BAD_RATINGS))
def test_bad_rating_line_is_skipped_and_counted(tmp_path, kind):
    fixture, name, line, _ = BAD_RATINGS[kind]
    folder = copy(fixture, tmp_path)
    append(folder / name, line)
    data = load(folder)
    good = {ML1M: ML1M_ROWS, ML10M: ML10M_ROWS, ML25M: ML25M_ROWS}[fixture]
    assert rows(data) == good
    assert bad_kinds(data) == {kind: 1}
    assert data.report["bad_records"]["skipped"] == 1


@pytest.mark.parametrize("kind", sorted(BAD_RATINGS))
def test_bad_rating_line_under_fail_names_file_and_line(tmp_path, kind):
    fixture, name, line, complaint = BAD_RATINGS[kind]
    folder = copy(fixture, tmp_path)
    append(folder / name, line)
    number = len((fixture / name).read_bytes().splitlines()) + 1
    with pytest.raises(DatasetError) as info:
        load(folder, on_bad_record="fail")
    message = str(info.value)
    assert message.startswith(f"{folder / name} line {number}: ") and complaint in message


def test_ratings_of_a_movie_with_a_bad_line_are_bad_too(tmp_path):
    folder = copy(ML25M, tmp_path)
    movies = folder / "movies.csv"
    movies.write_text(movies.read_text().replace("2064,", "2064,extra,"))
    data = load(folder)
    assert bad_kinds(data) == {"wrong_field_count": 1, "item_without_metadata": 1}
    assert rows(data) == [row for row in ML25M_ROWS if row[1] != "2064"]


def test_malformed_tag_line_is_counted(tmp_path):
    folder = copy(ML10M, tmp_path)
    append(folder / "tags.dat", "4::1::pixar\n")
    data = load(folder)
    assert bad_kinds(data) == {"wrong_field_count": 1}
    assert data.items()["1"].attributes["tags"] == ["pixar", "funny"]


def test_ratings_csv_without_its_header_is_refused_naming_file_line_and_header(tmp_path):
    # Refused, not guessed: without its header the first rating would be read as one (or lost).
    folder = copy(ML25M, tmp_path)
    ratings = folder / "ratings.csv"
    first = ratings.read_text().split("\n", 2)[1]
    ratings.write_text(ratings.read_text().split("\n", 1)[1])
    with pytest.raises(DatasetError) as error:
        load(folder)
    assert f"{ratings} line 1" in str(error.value)
    assert "expected the header 'userId,movieId,rating,timestamp'" in str(error.value)
    assert f"found '{first}'" in str(error.value)
