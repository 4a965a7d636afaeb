"""Amazon Reviews (2018, 2023) and Yelp loading: exact fixture contents, release detection, the
Parquet cache, the evaluation protocol on top, and every kind of bad input.

The fixtures are tiny files in the public formats (4 users, 12 items, 20 reviews each); broken
variants are made from copies in ``tmp_path``.
"""

from __future__ import annotations

import calendar
import gzip
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest
from omegaconf import OmegaConf

from lettingo.builtins import datasets as builtin_datasets
from lettingo.data import DatasetError, InteractionData, amazon, yelp
from lettingo.data.amazon import Amazon
from lettingo.data.protocol import build_tasks
from lettingo.data.yelp import Yelp
from lettingo.testing import option

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Source:
    """One fixture and what the tests need to know about its files."""

    folder: str
    config: str
    loader: type
    module: ModuleType
    reviews: str
    meta: str
    rating_key: str
    item_key: str
    text_key: str
    overrides: dict = field(default_factory=dict)


SOURCES = {
    "amazon-2018": Source("amazon-2018", "amazon", Amazon, amazon, "Books.json.gz", "meta_Books.json.gz",
                          "overall", "asin", "reviewText"),
    "amazon-2023": Source("amazon-2023", "amazon", Amazon, amazon, "All_Beauty.jsonl.gz",
                          "meta_All_Beauty.jsonl.gz", "rating", "parent_asin", "text",
                          overrides={"category": "All_Beauty"}),
    "yelp": Source("yelp", "yelp", Yelp, yelp, "yelp_academic_dataset_review.json",
                   "yelp_academic_dataset_business.json", "stars", "business_id", "text"),
}


def load(source: Source, folder: Path | None, **overrides) -> InteractionData:
    cfg = option("dataset", source.config)
    cfg.path = None if folder is None else str(folder)
    for key, value in {**source.overrides, **overrides}.items():
        cfg[key] = value
    return source.loader(cfg, None).load()


def raw_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).splitlines()


def write_lines(path: Path, lines: list[bytes]) -> None:
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)


def edit_record(path: Path, line_no: int, change) -> None:
    lines = raw_lines(path)
    record = json.loads(lines[line_no - 1])
    change(record)
    lines[line_no - 1] = json.dumps(record).encode()
    write_lines(path, lines)


def utc(text: str) -> int:
    return calendar.timegm(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timetuple())


@pytest.fixture(params=list(SOURCES))
def source(request) -> Source:
    return SOURCES[request.param]


@pytest.fixture
def copy(source, tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURES / source.folder, tmp_path / source.folder))


# --- what each fixture loads as -----------------------------------------------------------------


def test_amazon_2018_fixture_loads_exactly():
    data = load(SOURCES["amazon-2018"], FIXTURES / "amazon-2018")
    frame = data.interactions(text=True)
    assert len(frame) == 20
    assert sorted(frame["user_id"].unique()) == ["A1RSDE90N6RSZF", "A2SUAM1J3GNN3B", "A3UH4UZ4RSVO82", "AVP0HXC9FG790"]
    assert frame["user_id"].value_counts().sort_index().tolist() == [5, 6, 4, 5]
    first = frame.iloc[0]
    assert (first.user_id, first.item_id, first.rating, first.timestamp) == (
        "A1RSDE90N6RSZF", "0060935464", 3.0, utc("2015-07-19 00:00:00"))  # unixReviewTime, reviewTime "07 19, 2015"
    assert frame["text"].iloc[0] == "Fine. Good, not great."  # summary + ". " + reviewText
    assert frame["text"].iloc[1] == "Loved it! Simple and wise."  # no period added after "!"
    assert data.texts([1, 9]) == {1: "Loved it! Simple and wise."}  # row 9 has neither summary nor reviewText
    assert frame["text"].isna().sum() == 1 and data.report["interactions_with_text"] == 19

    items = data.items()
    assert len(items) == 12 and set(frame["item_id"]) == set(items)
    assert data.report["bad_records"]["by_kind"] == {}
    assert data.report["duplicate_items_ignored"] == 1  # meta repeats 0743273567
    assert items["0743273567"].title == "The Great Gatsby"  # the first record of a duplicate is kept
    assert items["0547928211"].describe() == (
        "The Hobbit & The Lord of the Rings (Boxed Set); categories: Literature & Fiction, Genre Fiction, "
        "Fantasy; brand: J.R.R. Tolkien; description: Four volumes in one slipcase: the hobbit and the "
        "whole war of the ring."
    )  # HTML tags and entities gone, the department "Books" left out, "Visit Amazon's ... Page" unwrapped
    assert items["0316769487"].attributes["categories"] == ["Literature & Fiction", "Classics"]  # not "Books"
    assert items["0439064872"].attributes["categories"] == [
        "Children's Books", "Literature & Fiction", "Fantasy & Magic"]
    assert items["0451524934"].attributes["features"] == [
        "Signet Classics mass market paperback", "Afterword by Erich Fromm"]
    description = items["0062315005"].attributes["description"]
    assert len(description) <= 300 and description.endswith("essential wisdom…")
    assert description.startswith("Paulo Coelho's masterpiece tells") and "different—and" in description
    assert data.report["release"] == "2018" and data.report["category"] == "Books"


def test_amazon_2023_fixture_loads_exactly():
    data = load(SOURCES["amazon-2023"], FIXTURES / "amazon-2023")
    frame = data.interactions(text=True)
    assert len(frame) == 20 and frame["user_id"].nunique() == 4
    assert data.report["release"] == "2023" and data.report["bad_records"]["skipped"] == 0
    assert frame["timestamp"].iloc[:3].tolist() == [1588687728, 1588715598, 1589000000]  # ms floored: ...923, ...999
    second = frame.iloc[1]
    assert (second.user_id, second.item_id, second.rating) == ("AGKHLEW2SOWHNMFQIJGBECAF7INQ", "B076WQZGPM", 4.0)
    # ...whose review's asin is the variant B07PNNCSP9: the item is the parent_asin
    assert "B07PNNCSP9" not in set(frame["item_id"])
    assert data.texts([0, 1, 3]) == {
        1: "Works well. Leaves skin clean.\nNo smell.",  # title + ". " + text, <br /> as a line break
        3: "So easy! Looks natural.",
    }
    items = data.items(["B099DRHW5V", "B076WQZGPM", "B01CUPMQZE"])
    assert items["B099DRHW5V"].describe() == (
        "Herbivore Pink Cloud Moisture Cream; categories: Face, Creams & Moisturizers, Face Moisturizers; "
        "store: Herbivore; features: Rosewater & squalane, Vegan; description: Weightless jelly cream. For dry skin."
    )
    assert items["B076WQZGPM"].attributes["features"] == ["Cleans pores", "Paraben free", "Cruelty free"]
    assert items["B01CUPMQZE"].describe() == (
        "Howard LC0008 Leather Conditioner, 8-Ounce (4-Pack); store: Howard Products")


def test_yelp_fixture_loads_exactly():
    data = load(SOURCES["yelp"], FIXTURES / "yelp")
    frame = data.interactions(text=True)
    assert len(frame) == 20 and frame["user_id"].nunique() == 4 and data.report["bad_records"]["skipped"] == 0
    row = frame.iloc[5]
    assert (row.user_id, row.item_id, row.rating, row.timestamp) == (
        "mh_-eMZ6K5RLWhZyISBhwA", "eEOYSgkmpB90uNA7lDOMRA", 4.0, 1531001351)  # "2018-07-07 22:09:11" as UTC
    assert frame["timestamp"].iloc[0] == utc("2014-02-05 20:30:01")
    assert data.texts([0, 5]) == {5: "Tasty banh mi for a good price."}  # review 0 has empty text
    items = data.items()
    assert len(items) == 12
    assert items["Pns2l4eNsfO8kk83dixA6A"].describe() == (
        "Abby Rappoport, LAC, CMQ; categories: Doctors, Traditional Chinese Medicine, Naturopathic/Holistic, "
        "Acupuncture, Health & Medical; city: Santa Barbara, CA"
    )  # the first five of six categories
    assert items["UJsufbvfyfONHeWdvAHKjA"].describe() == "Marshalls; city: Land O' Lakes, FL"  # categories: null


def test_yelp_gzipped_copies_are_read(tmp_path):
    folder = tmp_path / "yelp"
    folder.mkdir()
    for name in (SOURCES["yelp"].reviews, SOURCES["yelp"].meta):
        (folder / f"{name}.gz").write_bytes(gzip.compress((FIXTURES / "yelp" / name).read_bytes()))
    assert len(load(SOURCES["yelp"], folder).interactions()) == 20


def test_yelp_unreadable_date_is_a_bad_record(tmp_path):
    source = SOURCES["yelp"]
    copy = Path(shutil.copytree(FIXTURES / "yelp", tmp_path / "yelp"))
    edit_record(copy / source.reviews, 3, lambda r: r.update(date="07/07/2018"))
    data = load(source, copy)
    assert data.report["bad_records"]["by_kind"] == {"bad_timestamp": 1} and len(data.interactions()) == 19
    with pytest.raises(DatasetError, match=r"line 3: date '07/07/2018' is not a date and time"):
        load(source, copy, on_bad_record="fail")


# --- Amazon release and file detection ----------------------------------------------------------


def test_explicit_release_must_match_the_files(tmp_path):
    folder = Path(shutil.copytree(FIXTURES / "amazon-2018", tmp_path / "books"))
    assert load(SOURCES["amazon-2018"], folder, version=2018).report["release"] == "2018"
    with pytest.raises(DatasetError) as info:
        load(SOURCES["amazon-2018"], folder, version=2023)
    message = str(info.value)
    assert str(folder) in message and "Books.jsonl.gz" in message and "meta_Books.jsonl.gz" in message
    with pytest.raises(DatasetError, match="dataset.version must be auto, 2018 or 2023"):
        load(SOURCES["amazon-2018"], folder, version="2014")


def test_2018_five_core_and_unpacked_files_are_read(tmp_path):
    folder = Path(shutil.copytree(FIXTURES / "amazon-2018", tmp_path / "books"))
    (folder / "Books.json.gz").rename(folder / "Books_5.json.gz")
    data = load(SOURCES["amazon-2018"], folder)
    assert data.report["sources"]["ratings"].endswith("Books_5.json.gz") and len(data.interactions()) == 20
    for path in list(folder.iterdir()):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))  # Books_5.json, meta_Books.json
        path.unlink()
    assert len(load(SOURCES["amazon-2018"], folder).interactions()) == 20


def test_both_releases_in_one_folder_ask_for_a_version(tmp_path):
    folder = Path(shutil.copytree(FIXTURES / "amazon-2018", tmp_path / "books"))
    shutil.copy(FIXTURES / "amazon-2023" / "All_Beauty.jsonl.gz", folder / "Books.jsonl.gz")
    shutil.copy(FIXTURES / "amazon-2023" / "meta_All_Beauty.jsonl.gz", folder / "meta_Books.jsonl.gz")
    both = r"Books\.json\.gz \(2018\) and Books\.jsonl\.gz \(2023\); set dataset\.version"
    with pytest.raises(DatasetError, match=both):
        load(SOURCES["amazon-2018"], folder)
    assert load(SOURCES["amazon-2018"], folder, version="2023").report["release"] == "2023"


def test_other_category_lists_expected_names_and_what_is_there():
    with pytest.raises(DatasetError) as info:
        load(SOURCES["amazon-2023"], FIXTURES / "amazon-2023", category="Books")
    message = str(info.value)
    for expected in ("Books.json.gz", "Books_5.json.gz", "meta_Books.json.gz", "Books.jsonl.gz", "meta_Books.jsonl.gz"):
        assert expected in message
    assert "metadata for All_Beauty: set dataset.category" in message


def test_a_2023_file_read_as_2018_is_a_structure_error(tmp_path):
    folder = tmp_path / "books"
    folder.mkdir()
    shutil.copy(FIXTURES / "amazon-2023" / "All_Beauty.jsonl.gz", folder / "Books.json.gz")
    shutil.copy(FIXTURES / "amazon-2018" / "meta_Books.json.gz", folder / "meta_Books.json.gz")
    with pytest.raises(DatasetError, match=r"Books\.json\.gz line 1: expected Amazon 2018 reviews with keys "
                                           r"reviewerID, asin, overall, but this record lacks reviewerID"):
        load(SOURCES["amazon-2018"], folder)


@pytest.mark.parametrize("name", ["amazon-2018", "yelp"])
def test_null_path_says_there_is_no_packaged_copy_and_where_to_download(name):
    with pytest.raises(DatasetError) as info:
        load(SOURCES[name], None)
    message = str(info.value)
    assert "dataset.path is null" in message and "no copy" in message
    urls = ["https://www.yelp.com/dataset"] if name == "yelp" else [
        "https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/", "https://amazon-reviews-2023.github.io/"]
    assert all(url in message for url in urls)


def test_path_that_is_not_a_folder_is_named(source, tmp_path):
    with pytest.raises(DatasetError, match=r"dataset\.path '.*nowhere' is not a folder"):
        load(source, tmp_path / "nowhere")


def test_config_files_match_the_registered_names():
    registered = {}
    builtin_datasets.lettingo_register_datasets(register=lambda name, factory: registered.update({name: factory}))
    for config, loader in (("amazon", Amazon), ("yelp", Yelp)):
        cfg = option("dataset", config)
        assert cfg.name == config and registered[config] is loader
        assert cfg.path is None and cfg.like_min == 4 and cfg.dislike_max == 2 and list(cfg.rating_scale) == [1, 5]
        assert cfg.on_bad_record == "skip" and cfg.max_bad_fraction == 0.2 and cfg.cache is True
    amazon_cfg = option("dataset", "amazon")
    assert (amazon_cfg.category, amazon_cfg.version, amazon_cfg.max_description_chars) == ("Books", "auto", 300)


# --- the Parquet cache --------------------------------------------------------------------------


def test_second_load_reads_the_cache_and_a_changed_file_rebuilds(source, copy, monkeypatch):
    first = load(source, copy)

    def no_raw_reads(*args, **kwargs):
        raise AssertionError("the raw files were read again")

    with monkeypatch.context() as patch:  # not monkeypatch.undo(): that would also undo the cache dir
        patch.setattr(source.module, "json_records", no_raw_reads)
        second = load(source, copy)
        assert second.folder == first.folder and len(second.interactions()) == 20
        with pytest.raises(AssertionError, match="read again"):  # the patch does stop a real build
            load(source, copy, cache=False)

    lines = raw_lines(copy / source.reviews)
    write_lines(copy / source.reviews, lines + [lines[-1]])  # one more (repeated) review
    third = load(source, copy)
    assert third.folder.parent == first.folder.parent  # still this test's cache
    assert third.folder != first.folder and len(third.interactions()) == 21
    assert len(first.interactions()) == 20  # the old entry is left as it was


# --- the protocol on top ------------------------------------------------------------------------


def test_build_tasks_gives_window_texts_but_never_the_targets(source):
    data = load(source, FIXTURES / source.folder)
    cfg = option("dataset", source.config)
    protocol = {"profile_window": 2, "recent_window": 1, "num_candidates": 3, "train_users": 1, "test_users": 1}
    tasks, summary = build_tasks(data, protocol, cfg)
    assert [t.split for t in tasks] == ["train", "test"] and summary["users"]["eligible"] == 4
    frame = data.interactions(text=True)
    items = data.items()
    for task in tasks:
        window = task.profile_window + task.recent_window
        assert len(task.profile_window) == 2 and len(task.recent_window) == 1
        assert all(interaction.text for interaction in window)
        for interaction in window:
            row = frame[(frame.user_id == task.user_id) & (frame.item_id == interaction.item_id)].iloc[-1]
            assert interaction.text == row.text and interaction.timestamp == row.timestamp
        assert task.target.text is None
        target_row = frame[(frame.user_id == task.user_id) & (frame.item_id == task.target.item_id)].iloc[-1]
        assert target_row.text  # the dataset has the target's review; the task must not carry it
        assert len(task.candidates) == 3 and set(task.candidates) <= set(items)


# --- bad input: structure errors (always stop) ---------------------------------------------------


def test_missing_metadata_file_is_named_with_the_fix(source, copy):
    (copy / source.meta).unlink()
    with pytest.raises(DatasetError) as info:
        load(source, copy)
    message = str(info.value)
    assert f"{copy / source.meta} does not exist" in message and "download" in message


def test_missing_reviews_file_lists_what_was_expected(source, copy):
    (copy / source.reviews).unlink()
    with pytest.raises(DatasetError) as info:
        load(source, copy)
    message = str(info.value)
    assert str(copy) in message and source.reviews in message and "download" in message


def gzipped_reviews(source: Source, folder: Path) -> Path:
    """The reviews file as gzip (Yelp's is plain: it is replaced by a ``.gz`` copy)."""
    path = folder / source.reviews
    if path.name.endswith(".gz"):
        return path
    gz_path = path.with_name(path.name + ".gz")
    gz_path.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    return gz_path


def test_truncated_gzip_says_the_download_was_cut_short(source, copy):
    path = gzipped_reviews(source, copy)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError) as info:
        load(source, copy)
    message = str(info.value)
    assert str(path) in message and "truncated or corrupt" in message and "download the file again" in message


@pytest.mark.parametrize("compressed", [False, True], ids=["zero-bytes", "gzip-of-nothing"])
def test_empty_file_is_a_structure_error(source, copy, compressed):
    path = copy / source.reviews
    path.write_bytes(gzip.compress(b"") if compressed else b"")
    with pytest.raises(DatasetError, match="is empty") as info:
        load(source, copy)
    assert str(path) in str(info.value)


def test_csv_in_place_of_json_lines_is_a_structure_error(source, copy):
    path = copy / source.reviews
    write_lines(path, [b"user_id,item_id,rating,timestamp", b"u1,i1,5,1588687728"])
    with pytest.raises(DatasetError) as info:
        load(source, copy)
    message = str(info.value)
    assert f"{path} line 1: expected one JSON object per line" in message and "right file" in message


def test_metadata_in_place_of_reviews_is_a_structure_error(source, copy):
    shutil.copy(copy / source.meta, copy / source.reviews)
    with pytest.raises(DatasetError, match=rf"{source.reviews} line 1: expected .*reviews with keys") as info:
        load(source, copy)
    assert "right file" in str(info.value)


# --- bad input: single bad records (skipped and counted, or raised) -------------------------------

LINE = 3  # the line broken in the reviews file; any line but the first


def break_json(source, path):
    lines = raw_lines(path)
    lines[LINE - 1] = lines[LINE - 1][: len(lines[LINE - 1]) // 2]
    write_lines(path, lines)


def latin1_text(source, path):
    lines = raw_lines(path)
    record = json.loads(lines[LINE - 1])
    record[source.text_key] = "Café au lait, très bien"
    lines[LINE - 1] = json.dumps(record, ensure_ascii=False).encode("latin-1")
    write_lines(path, lines)


BAD_RECORDS = {
    "malformed_json": (break_json, "not valid JSON"),
    "rating_out_of_scale": (lambda s, p: edit_record(p, LINE, lambda r: r.update({s.rating_key: 7})),
                            "rating 7 is outside the scale 1-5"),
    "not_utf8": (latin1_text, "bytes that are not utf-8"),
    "item_without_metadata": (lambda s, p: edit_record(p, LINE, lambda r: r.update({s.item_key: "B0NOMETA00"})),
                              "item 'B0NOMETA00' has no metadata"),
}


@pytest.mark.parametrize("kind", list(BAD_RECORDS))
def test_a_bad_record_is_skipped_and_counted_by_default(source, copy, kind):
    BAD_RECORDS[kind][0](source, copy / source.reviews)
    data = load(source, copy)
    assert len(data.interactions()) == 19
    bad = data.report["bad_records"]
    assert bad["by_kind"] == {kind: 1}
    assert bad["examples"][kind][0].startswith(f"{copy / source.reviews} line {LINE}: {BAD_RECORDS[kind][1]}")


def test_duplicate_metadata_keeps_the_first_record_even_under_fail():
    source = SOURCES["amazon-2018"]
    data = load(source, FIXTURES / source.folder, on_bad_record="fail")
    assert data.report["duplicate_items_ignored"] == 1 and data.report["bad_records"]["skipped"] == 0
    assert data.items(["0743273567"])["0743273567"].title == "The Great Gatsby"


@pytest.mark.parametrize("kind", list(BAD_RECORDS))
def test_a_bad_record_stops_the_load_under_fail(source, copy, kind):
    BAD_RECORDS[kind][0](source, copy / source.reviews)
    with pytest.raises(DatasetError) as info:
        load(source, copy, on_bad_record="fail")
    message = str(info.value)
    assert message.startswith(f"{copy / source.reviews} line {LINE}: {BAD_RECORDS[kind][1]}")
    assert "on_bad_record=skip" in message


def test_too_many_bad_records_mean_the_wrong_file(source, copy):
    path = copy / source.reviews
    lines = raw_lines(path)
    write_lines(path, lines[:1] + [line.replace(b"}", b"", 1) for line in lines[1:]])  # all but one malformed
    with pytest.raises(DatasetError, match="max_bad_fraction"):
        load(source, copy)
