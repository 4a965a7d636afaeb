"""MovieLens loader: the packaged ml-100k by default, or a GroupLens ml-100k folder.

``path: null`` reads MovieLens-100K from the ``recbole==1.2.1`` wheel's RecBole atomic files
(tab-separated ``ml-100k.inter`` / ``ml-100k.item`` with typed headers), so a run works offline and
the repository never redistributes the data (GroupLens terms forbid it). ``path: <folder>`` reads an
unpacked GroupLens ml-100k folder (``u.data``, ``u.item``, ``u.genre``) or a folder of RecBole
atomic files. Files are read line by line so that a bad line is reported by its number.

An item's text is its title (the "(1995)" suffix moved into ``year``), year and genres, through
:meth:`lettingo.types.Item.describe`. MovieLens has no reviews: interaction ``text`` is None.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from lettingo.assets import ML100K_DIR, packaged_path
from lettingo.data import DatasetError, InteractionData, interactions_frame
from lettingo.types import Item

GROUPLENS_FILES = ("u.data", "u.item", "u.genre")
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")


class MovieLens:
    """The ``movielens`` dataset component: ``load()`` returns an :class:`InteractionData`."""

    def __init__(self, cfg, ctx=None):
        self.cfg = cfg
        self.ctx = ctx

    def load(self) -> InteractionData:
        path = self.cfg.get("path")
        if path is None:
            return load_atomic(packaged_path(ML100K_DIR))
        folder = Path(str(path)).expanduser()
        if not folder.is_dir():
            raise DatasetError(
                f"dataset.path {str(folder)!r} is not a folder; point it at an unpacked GroupLens "
                f"ml-100k folder ({', '.join(GROUPLENS_FILES)}) or set it to null for the packaged copy"
            )
        if any((folder / name).exists() for name in GROUPLENS_FILES):
            return load_grouplens(folder)
        if list(folder.glob("*.inter")):
            return load_atomic(folder)
        raise DatasetError(
            f"{folder} holds no MovieLens files: expected GroupLens files {', '.join(GROUPLENS_FILES)} "
            f"or RecBole atomic files <name>.inter and <name>.item; set dataset.path to null to use "
            f"the packaged ml-100k"
        )


def load_grouplens(folder: Path) -> InteractionData:
    """A GroupLens ml-100k folder: ``u.data`` (tab), ``u.item`` (pipe, Latin-1), ``u.genre`` (pipe)."""
    missing = [name for name in GROUPLENS_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetError(
            f"{folder} is missing {', '.join(missing)}; a GroupLens ml-100k folder needs "
            f"{', '.join(GROUPLENS_FILES)} (unpack ml-100k.zip there, or set dataset.path to null)"
        )
    genres = _grouplens_genres(folder / "u.genre")
    items = _grouplens_items(folder / "u.item", genres)
    columns: tuple[list, list, list, list] = ([], [], [], [])
    path = folder / "u.data"
    for line_no, fields in _lines(path, "\t"):
        _expect_fields(path, line_no, fields, 4, "user id, item id, rating, timestamp")
        user, item, rating, ts = fields
        _append(columns, path, line_no, user, item, rating, ts)
    return InteractionData("movielens", interactions_frame(*columns), items)


def load_atomic(folder: Path) -> InteractionData:
    """RecBole atomic files ``<name>.inter`` / ``<name>.item``; columns are found by header name."""
    inter_files = sorted(folder.glob("*.inter"))
    if len(inter_files) != 1:
        raise DatasetError(f"{folder} should hold exactly one RecBole .inter file, found {len(inter_files)}")
    inter_path = inter_files[0]
    item_path = inter_path.with_suffix(".item")
    if not item_path.is_file():
        raise DatasetError(
            f"{folder} has {inter_path.name} but not {item_path.name}; RecBole atomic MovieLens needs both"
        )
    items: dict[str, Item] = {}
    lines = _lines(item_path, "\t")
    positions, header = _atomic_header(item_path, lines, ("item_id", "movie_title", "release_year", "class"))
    for line_no, fields in lines:
        _expect_fields(item_path, line_no, fields, len(header), " ".join(header))
        item_id, title, year, genres = (fields[i] for i in positions)
        title, title_year = _split_title_year(title)
        items[item_id] = _movie(item_id, title, year if year.isdigit() else title_year, genres.split())

    columns: tuple[list, list, list, list] = ([], [], [], [])
    lines = _lines(inter_path, "\t")
    positions, header = _atomic_header(inter_path, lines, ("user_id", "item_id", "rating", "timestamp"))
    for line_no, fields in lines:
        _expect_fields(inter_path, line_no, fields, len(header), " ".join(header))
        user, item, rating, ts = (fields[i] for i in positions)
        _append(columns, inter_path, line_no, user, item, rating, ts)
    return InteractionData("movielens", interactions_frame(*columns), items)


def _atomic_header(path: Path, lines: Iterator, required: tuple[str, ...]) -> tuple[list[int], list[str]]:
    """Positions of ``required`` columns in a RecBole header like ``user_id:token<TAB>item_id:token``."""
    first = next(lines, None)
    if first is None:
        raise DatasetError(f"{path} is empty; expected a RecBole header line naming {', '.join(required)}")
    line_no, header = first
    names = [field.split(":")[0] for field in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise DatasetError(
            f"{path} line {line_no}: the header lacks {', '.join(missing)} (found {', '.join(header)})"
        )
    return [names.index(c) for c in required], header


def _grouplens_genres(path: Path) -> list[str]:
    """``u.genre`` lines ``name|index``, returned as names in flag order."""
    by_index: dict[int, str] = {}
    for line_no, fields in _lines(path, "|", encoding="latin-1"):
        _expect_fields(path, line_no, fields, 2, "genre name|index")
        if not fields[1].isdigit():
            raise DatasetError(f"{path} line {line_no}: genre index {fields[1]!r} is not a whole number")
        by_index[int(fields[1])] = fields[0]
    if sorted(by_index) != list(range(len(by_index))):
        raise DatasetError(f"{path}: genre indices should run 0..{len(by_index) - 1}, found {sorted(by_index)}")
    return [by_index[i] for i in range(len(by_index))]


def _grouplens_items(path: Path, genres: list[str]) -> dict[str, Item]:
    """``u.item``: id|title (year)|release date|video date|IMDb URL|one 0/1 flag per genre."""
    items: dict[str, Item] = {}
    for line_no, fields in _lines(path, "|", encoding="latin-1"):
        _expect_fields(path, line_no, fields, 5 + len(genres), f"5 fields then {len(genres)} genre flags")
        item_id, raw_title, release_date = fields[0], fields[1], fields[2]
        flags = fields[5:]
        if any(flag not in ("0", "1") for flag in flags):
            raise DatasetError(f"{path} line {line_no}: genre flags must be 0 or 1, found {'|'.join(flags)}")
        title, year = _split_title_year(raw_title)
        if year is None and release_date[-4:].isdigit():
            year = release_date[-4:]
        items[item_id] = _movie(item_id, title, year, [g for g, flag in zip(genres, flags) if flag == "1"])
    return items


def _movie(item_id: str, title: str, year: str | None, genres: list[str]) -> Item:
    return Item(item_id, title, {"year": int(year) if year else None, "genres": genres})


def _split_title_year(title: str) -> tuple[str, str | None]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", "1995")``; titles without the suffix are kept whole."""
    match = _TITLE_YEAR.match(title)
    if match and match.group("title"):
        return match.group("title"), match.group("year")
    return title.strip(), None


def _lines(path: Path, sep: str, encoding: str = "utf-8") -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for every non-blank line; undecodable bytes become a DatasetError."""
    line_no = 0
    try:
        with open(path, encoding=encoding, newline="") as handle:
            for line_no, line in enumerate(handle, 1):
                line = line.rstrip("\r\n")
                if line.strip():
                    yield line_no, line.split(sep)
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path} line {line_no + 1}: not {encoding} text ({exc.reason}); re-save the file as {encoding}"
        ) from None


def _expect_fields(path: Path, line_no: int, fields: list[str], n: int, layout: str) -> None:
    if len(fields) != n:
        raise DatasetError(
            f"{path} line {line_no}: expected {n} fields ({layout}), found {len(fields)}; fix or remove the line"
        )


def _append(columns, path: Path, line_no: int, user: str, item: str, rating: str, ts: str) -> None:
    try:
        rating_value = float(rating)
        ts_value = int(float(ts))
    except ValueError:
        raise DatasetError(
            f"{path} line {line_no}: rating {rating!r} and timestamp {ts!r} must be numbers; fix or remove the line"
        ) from None
    if not user or not item:
        raise DatasetError(f"{path} line {line_no}: empty user or item id; fix or remove the line")
    for column, value in zip(columns, (user, item, rating_value, ts_value)):
        column.append(value)
