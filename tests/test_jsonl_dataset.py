"""The generic ``jsonl`` dataset: both interaction layouts, timestamps, texts, attributes, bad input."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lettingo.builtins import datasets as builtin_datasets
from lettingo.data import DatasetError, InteractionData
from lettingo.data.jsonl import JsonLines, parse_timestamp
from lettingo.testing import option

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "jsonl" / "books"

# The fixture's interactions in file order (history entries in list order), user ids as strings.
EXPECTED_ROWS = [
    ["u1", "b1", 5.0, 1700000000],
    ["u1", "b2", 4.5, 1700006400],  # "2023-11-15T00:00:00Z"
    ["u2", "b3", 2.0, 1682942400],  # "2023-05-01 12:00:00": no offset, so UTC
    ["u2", "b4", 4.0, 1683009000],  # "2023-05-02T08:30:00+02:00"
    ["u2", "b1", 3.0, 1683100000],
    ["u2", "6", 1.0, 1683158400],  # item id 6 written as a JSON integer; "2023-05-04"
    ["u1", "b3", 3.0, 1700100000],
    ["7", "b5", 4.0, 1600000000],  # user id 7 written as a JSON integer
    ["7", "b2", 5.0, 1600000100],
    ["u1", "b4", 1.0, 1700200000],
]
FIXTURE_INTERACTION_LINES = 7  # non-blank lines of interactions.jsonl (line 6 is blank)


def config(path, **overrides):
    cfg = option("dataset", "jsonl")
    cfg.path = None if path is None else str(path)
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def load(path, **overrides) -> InteractionData:
    return JsonLines(config(path, **overrides), None).load()


def rows(data: InteractionData) -> list[list]:
    frame = data.interactions()
    return [[str(r.user_id), str(r.item_id), float(r.rating), int(r.timestamp)] for r in frame.itertuples()]


def bad_kinds(data: InteractionData) -> dict[str, int]:
    return data.report["bad_records"]["by_kind"]


@pytest.fixture
def folder(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "books"))


def append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(text if isinstance(text, bytes) else text.encode())


# --- the format -------------------------------------------------------------------------------


def test_config_file_matches_the_registered_name():
    cfg = option("dataset", "jsonl")
    registered = {}
    builtin_datasets.lettingo_register_datasets(register=lambda name, factory: registered.update({name: factory}))
    assert cfg.name == "jsonl"
    assert registered["jsonl"] is JsonLines
    assert cfg.path is None and cfg.like_min == 4 and cfg.dislike_max == 2
    assert list(cfg.rating_scale) == [1, 5] and cfg.on_bad_record == "skip"
    assert cfg.max_bad_fraction == 0.2 and cfg.cache is True


def test_fixture_loads_with_exact_rows_from_both_layouts():
    data = load(FIXTURE)
    assert rows(data) == EXPECTED_ROWS
    assert data.report["interactions"] == 10 and data.report["items"] == 6
    assert data.report["interaction_lines"] == {"flat": 5, "history": 2}
    assert data.report["bad_records"]["skipped"] == 0
    assert data.report["sources"] == {
        "items": str(FIXTURE / "items.jsonl"), "interactions": str(FIXTURE / "interactions.jsonl"),
    }
    frame = data.interactions()
    assert str(frame["timestamp"].dtype) == "int64"
    assert sorted(frame["user_id"].cat.categories) == ["7", "u1", "u2"]
    assert sorted(data.item_ids()) == ["6", "b1", "b2", "b3", "b4", "b5"]


def test_review_texts_round_trip():
    data = load(FIXTURE)
    assert data.has_text and data.report["interactions_with_text"] == 4
    assert data.texts(range(10)) == {
        0: "Changed how I think about gender.",
        2: "Too long.",
        6: "Wise, but slow.",
        7: "Mágico.",
    }
    frame = data.interactions(text=True)
    assert frame["text"].isna().sum() == 6  # absent and null texts are both missing


def test_item_attributes_are_kept_and_described():
    items = load(FIXTURE).items()
    assert items["b1"].describe() == (
        "The Left Hand of Darkness; author: Ursula K. Le Guin; year: 1969; genres: science fiction, classic"
    )
    assert items["b4"].describe() == "Dune; author: Frank Herbert; year: 1965; awards: Hugo, Nebula"  # null left out
    assert items["b3"].attributes == {} and items["b3"].describe() == "Middlemarch"
    assert items["b5"].attributes == {
        "author": "Gabriel García Márquez", "language": "es",
        "publisher": {"name": "Sudamericana", "city": "Buenos Aires"},
    }
    assert items["6"].attributes == {"author": "Toni Morrison", "pages": 324, "in_print": True}
    assert set(load(FIXTURE).items(["b2", "6"])) == {"b2", "6"}


@pytest.mark.parametrize("value, seconds", [
    (1700000000, 1700000000),
    (1700000000.75, 1700000000),
    ("1700000000", 1700000000),
    ("2023-05-01T12:00:00Z", 1682942400),
    ("2023-05-01T12:00:00z", 1682942400),
    ("2023-05-01 12:00:00", 1682942400),
    ("2023-05-01T12:00:00", 1682942400),
    ("2023-05-01T14:00:00+02:00", 1682942400),
    ("2023-05-01", 1682899200),
])
def test_timestamps_in_seconds_or_iso_8601(value, seconds):
    assert parse_timestamp(value) == seconds


@pytest.mark.parametrize("value", ["yesterday", "", "2023-13-01", True, None, [1], float("nan")])
def test_unreadable_timestamps_are_none(value):
    assert parse_timestamp(value) is None


def test_gzipped_files_load_the_same(tmp_path):
    folder = tmp_path / "gz"
    folder.mkdir()
    for name in ("items.jsonl", "interactions.jsonl"):
        (folder / f"{name}.gz").write_bytes(gzip.compress((FIXTURE / name).read_bytes()))
    data = load(folder)
    assert rows(data) == EXPECTED_ROWS
    assert data.texts([7]) == {7: "Mágico."}


def test_one_file_gzipped_the_other_plain(folder):
    items = folder / "items.jsonl"
    (folder / "items.jsonl.gz").write_bytes(gzip.compress(items.read_bytes()))
    items.unlink()
    assert rows(load(folder)) == EXPECTED_ROWS


def test_second_load_reads_the_cache(folder):
    first = load(folder)
    assert load(folder).folder == first.folder
    append(folder / "interactions.jsonl", '{"user_id": "u3", "item_id": "b1", "rating": 4, "timestamp": 5}\n')
    changed = load(folder)
    assert changed.folder != first.folder and len(changed.interactions()) == 11


# --- structure errors -------------------------------------------------------------------------


def test_null_path_says_there_is_no_packaged_data():
    with pytest.raises(DatasetError, match="no packaged data") as info:
        load(None)
    assert "dataset.path" in str(info.value) and "interactions.jsonl" in str(info.value)


def test_path_that_is_not_a_folder(tmp_path):
    with pytest.raises(DatasetError, match="nowhere.*is not a folder"):
        load(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["items.jsonl", "interactions.jsonl"])
def test_missing_file_is_named(folder, name):
    (folder / name).unlink()
    with pytest.raises(DatasetError) as info:
        load(folder)
    message = str(info.value)
    assert f"{folder / name} does not exist" in message and f"{name}.gz" in message


def test_plain_and_gzipped_copies_of_one_file_are_ambiguous(folder):
    shutil.copy(folder / "items.jsonl", folder / "items.jsonl.gz")
    with pytest.raises(DatasetError, match=r"both items\.jsonl and items\.jsonl\.gz"):
        load(folder)


@pytest.mark.parametrize("content", [b"", b"\n  \n"])
def test_empty_file_is_a_structure_error(folder, content):
    (folder / "interactions.jsonl").write_bytes(content)
    with pytest.raises(DatasetError, match="is empty") as info:
        load(folder)
    assert str(folder / "interactions.jsonl") in str(info.value)


@pytest.mark.parametrize("first_line", ["user_id,item_id,rating,timestamp", '["u1", "b1", 4, 1]'])
def test_first_line_not_a_json_object_is_a_structure_error(folder, first_line):
    path = folder / "interactions.jsonl"
    path.write_text(first_line + "\n" + path.read_text())
    with pytest.raises(DatasetError, match="line 1: expected one JSON object per line") as info:
        load(folder)  # even with on_bad_record=skip
    assert str(path) in str(info.value)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    folder = tmp_path / "gz"
    folder.mkdir()
    shutil.copy(FIXTURE / "items.jsonl", folder / "items.jsonl")
    packed = gzip.compress((FIXTURE / "interactions.jsonl").read_bytes() * 20)
    (folder / "interactions.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        load(folder)
    assert str(folder / "interactions.jsonl.gz") in str(info.value) and "download" in str(info.value)


# --- bad records: skipped and counted, or raised with file and line ----------------------------

BAD_LINES = {
    "malformed_json": ('{"user_id": "u9", "item_id": "b1", "rating": 4,\n', "not valid JSON"),
    "rating_out_of_scale": ('{"user_id": "u9", "item_id": "b1", "rating": 9, "timestamp": 1}\n',
                            "rating 9 is outside the scale 1-5"),
    "not_utf8": (b'{"user_id": "u9", "item_id": "b1", "rating": 4, "timestamp": 1, "text": "caf\xe9"}\n',
                 "bytes that are not utf-8"),
    "user_without_interactions": ('{"user_id": "u9", "history": []}\n', "user 'u9' has an empty history"),
    "item_without_metadata": ('{"user_id": "u9", "item_id": "b99", "rating": 4, "timestamp": 1}\n',
                              "item 'b99' has no metadata"),
    "missing_field": ('{"user_id": "u9", "item_id": "b1", "timestamp": 1}\n', "no rating"),
    "bad_rating": ('{"user_id": "u9", "item_id": "b1", "rating": "great", "timestamp": 1}\n',
                   "rating 'great' is not a JSON number"),
    "bad_timestamp": ('{"user_id": "u9", "item_id": "b1", "rating": 4, "timestamp": "last week"}\n',
                      "timestamp 'last week' is neither"),
    "bad_text": ('{"user_id": "u9", "item_id": "b1", "rating": 4, "timestamp": 1, "text": 5}\n',
                 "text must be a string or null"),
    "bad_id": ('{"user_id": ["u9"], "item_id": "b1", "rating": 4, "timestamp": 1}\n', "is not a string or an integer"),
    "mixed_layout": ('{"user_id": "u9", "item_id": "b1", "history": []}\n', "both history and item_id"),
    "bad_history": ('{"user_id": "u9", "history": {"item_id": "b1"}}\n', "history must be a JSON list"),
}


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_bad_interaction_is_skipped_and_counted(folder, kind):
    append(folder / "interactions.jsonl", BAD_LINES[kind][0])
    data = load(folder)
    assert rows(data) == EXPECTED_ROWS  # the good records all load; the bad one is not among them
    assert bad_kinds(data) == {kind: 1}
    example = data.report["bad_records"]["examples"][kind][0]
    assert example.startswith(f"{folder / 'interactions.jsonl'} line 9: ")


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_bad_interaction_under_fail_names_file_and_line(folder, kind):
    line, complaint = BAD_LINES[kind]
    append(folder / "interactions.jsonl", line)
    with pytest.raises(DatasetError) as info:
        load(folder, on_bad_record="fail")
    message = str(info.value)
    assert message.startswith(f"{folder / 'interactions.jsonl'} line 9: ")
    assert complaint in message and "on_bad_record=skip" in message


def test_bad_history_entries_are_skipped_one_by_one(folder):
    append(folder / "interactions.jsonl", (
        '{"user_id": "u9", "history": ['
        '{"item_id": "b1", "rating": 4, "timestamp": 10}, '
        '{"item_id": "b2", "timestamp": 11}, '
        '"b3", '
        '{"user_id": "u8", "item_id": "b4", "rating": 4, "timestamp": 12}, '
        '{"item_id": "b5", "rating": 0, "timestamp": 13}, '
        '{"item_id": "b6", "rating": 4, "timestamp": 14}, '
        '{"user_id": "u9", "item_id": "b2", "rating": 3, "timestamp": "1970-01-01T00:00:15Z"}]}\n'
    ))
    data = load(folder, max_bad_fraction=0.5)  # 5 bad records in one line: more than the default share
    assert rows(data)[len(EXPECTED_ROWS):] == [["u9", "b1", 4.0, 10], ["u9", "b2", 3.0, 15]]
    assert bad_kinds(data) == {
        "missing_field": 1, "bad_history": 1, "user_mismatch": 1, "rating_out_of_scale": 1,
        "item_without_metadata": 1,
    }
    examples = data.report["bad_records"]["examples"]
    assert examples["missing_field"] == [f"{folder / 'interactions.jsonl'} line 9: history entry 2: no rating"]
    assert "history entry 4: user_id 'u8' differs" in examples["user_mismatch"][0]


def test_history_without_user_id_is_a_bad_record(folder):
    append(folder / "interactions.jsonl", '{"history": [{"item_id": "b1", "rating": 4, "timestamp": 1}]}\n')
    data = load(folder)
    assert bad_kinds(data) == {"missing_field": 1}
    assert data.report["bad_records"]["examples"]["missing_field"][0].endswith("line 9: no user_id")


def test_non_utf8_first_line_is_counted_not_fatal(folder):
    path = folder / "interactions.jsonl"
    path.write_bytes(b'{"user_id": "u9", "item_id": "b1", "rating": 4, "timestamp": 1, "text": "\xff"}\n'
                     + path.read_bytes())
    data = load(folder)
    assert rows(data) == EXPECTED_ROWS and bad_kinds(data) == {"not_utf8": 1}


ITEM_LINES = {
    "malformed_json": '{"item_id": "b7", "title": \n',
    "item_without_title": '{"item_id": "b7", "attributes": {"year": 2001}}\n',
    "item_without_id": '{"title": "Untitled"}\n',
    "bad_attributes": '{"item_id": "b7", "title": "Solaris", "attributes": ["sci-fi"]}\n',
    "bad_id": '{"item_id": 1.5, "title": "Solaris"}\n',
}


@pytest.mark.parametrize("kind", sorted(ITEM_LINES))
def test_bad_item_is_skipped_and_counted(folder, kind):
    append(folder / "items.jsonl", ITEM_LINES[kind])
    data = load(folder)
    assert bad_kinds(data) == {kind: 1}
    assert rows(data) == EXPECTED_ROWS
    assert len(data.items()) == 6 and data.items()["b1"].title == "The Left Hand of Darkness"  # first kept
    with pytest.raises(DatasetError, match=rf"items\.jsonl line 7: "):
        load(folder, on_bad_record="fail")


def test_an_item_described_twice_keeps_its_first_record_and_is_counted(folder):
    append(folder / "items.jsonl", '{"item_id": "b1", "title": "The Left Hand of Darkness (second copy)"}\n')
    data = load(folder, on_bad_record="fail")
    assert data.items()["b1"].title == "The Left Hand of Darkness" and data.report["duplicate_items_ignored"] == 1
    assert bad_kinds(data) == {}


def test_ratings_of_an_item_with_a_bad_record_are_bad_too(folder):
    append(folder / "items.jsonl", ITEM_LINES["item_without_title"])
    append(folder / "interactions.jsonl", '{"user_id": "u1", "item_id": "b7", "rating": 4, "timestamp": 1}\n')
    assert bad_kinds(load(folder)) == {"item_without_title": 1, "item_without_metadata": 1}


def test_mostly_bad_file_is_refused_as_the_wrong_format(folder):
    append(folder / "interactions.jsonl", '{"user_id": "u9", "item_id": "b1", "rating": 40, "timestamp": 1}\n' * 5)
    with pytest.raises(DatasetError, match="max_bad_fraction"):
        load(folder)
    assert rows(load(folder, rating_scale=[1, 50])) == EXPECTED_ROWS + [["u9", "b1", 40.0, 1]] * 5


def test_file_whose_every_line_is_not_utf8_says_so(folder):
    (folder / "items.jsonl").write_bytes('{"item_id": "b1", "title": "Café"}\n'.encode("latin-1"))
    with pytest.raises(DatasetError) as info:
        load(folder)
    assert "is empty" not in str(info.value) and "utf-8" in str(info.value).lower()
