"""MovieLens loader: every GroupLens format, and the packaged ml-100k as the offline default.

``dataset.path`` is an unpacked GroupLens folder; the layout is found from the files in it:

======================  ==========================================================================
ml-100k                 ``u.data`` (tab: user, item, rating, timestamp), ``u.item`` (pipe, Latin-1),
                        ``u.genre``
ml-1m, ml-10m           ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``), ``movies.dat``
                        (``MovieID::Title::Genres``, Latin-1 in ml-1m), ml-10m's ``tags.dat``
ml-20m, ml-25m,         ``ratings.csv`` (``userId,movieId,rating,timestamp`` with a header),
ml-latest(-small)       ``movies.csv`` (quoted titles), ``tags.csv``
RecBole atomic files    ``<name>.inter`` + ``<name>.item`` (typed headers)
======================  ==========================================================================

``path: null`` reads ml-100k from the ``recbole==1.2.1`` wheel's atomic files, so a run works
offline and the repository never redistributes the data (GroupLens terms forbid it).

An item's text is its title (the "(1995)" suffix moved into ``year``), year and genres; where the
dataset has tags (ml-10m and later), the ``max_tags`` tags the most users applied to the movie
(at least two users, so that no single user's tag, perhaps on their own target, describes an item).
MovieLens has no reviews: interaction ``text`` is empty. Files are read line by line; the
``.dat`` title files are decoded as UTF-8 with a Latin-1 fallback per line (ml-1m ships Latin-1).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional

from lettingo.assets import ML100K_DIR, packaged_path
from lettingo.data import DatasetBuilder, DatasetError, DatasetSettings, FileDataset, InteractionData, cached_dataset
from lettingo.data.reading import BadRecords, read_lines

_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$")
LAYOUTS = {
    "ml-100k": ("u.data", "u.item", "u.genre"),
    "dat": ("ratings.dat", "movies.dat"),
    "csv": ("ratings.csv", "movies.csv"),
}
OPTIONAL = {"dat": ("tags.dat",), "csv": ("tags.csv",)}
# Whole stars up to ml-1m; half stars from ml-10m on (ml-1m's .dat shares ml-10m's wider check).
RATING_SCALES = {"ml-100k": (1, 5), "atomic": (1, 5), "dat": (0.5, 5), "csv": (0.5, 5)}


@dataclass
class MovieLensSettings(DatasetSettings):
    """MovieLens in any GroupLens format (the module docstring has the list): ml-100k, ml-1m, ml-10m,
    ml-20m, ml-25m, ml-latest(-small), or RecBole atomic files. path: null reads the ml-100k copy
    packaged in the recbole==1.2.1 wheel (offline); a folder path reads an unpacked GroupLens zip.
    ``rating_scale`` null: the release's own (1-5 for ml-100k, 0.5-5 for the .dat and .csv releases;
    set [1, 5] for ml-1m rating prediction). ml-10m's half stars 2.5 and 3.5 are neutral."""

    name: str = "movielens"
    rating_scale: Optional[List[float]] = None
    max_tags: int = 5  # tags shown with a movie (ml-10m and later): the ones the most users applied, at least two users


class MovieLens(FileDataset):
    """The ``movielens`` dataset component: ``load()`` returns an :class:`InteractionData`."""

    Settings = MovieLensSettings

    def load(self) -> InteractionData:
        path = self.cfg.path
        folder = packaged_path(ML100K_DIR) if path is None else Path(str(path)).expanduser()
        layout, sources = detect_layout(folder)
        max_tags = self.cfg.max_tags
        build: Callable[[DatasetBuilder], dict] = {
            "ml-100k": lambda b: load_ml100k(folder, b),
            "dat": lambda b: load_grouplens(folder, b, "dat", max_tags),
            "csv": lambda b: load_grouplens(folder, b, "csv", max_tags),
            "atomic": lambda b: load_atomic(sources[0], sources[1], b),
        }[layout]
        return cached_dataset("movielens", sources, {"layout": layout, "max_tags": max_tags}, self.cfg, build,
                              default_rating_scale=RATING_SCALES[layout])


def detect_layout(folder: Path) -> tuple[str, list[Path]]:
    """Which GroupLens layout ``folder`` holds, and the files it will read."""
    expected = "; ".join(f"{' + '.join(files)}" for files in LAYOUTS.values())
    if not folder.is_dir():
        raise DatasetError(
            f"dataset.path {str(folder)!r} is not a folder; point it at an unpacked GroupLens MovieLens "
            f"folder (one of: {expected}) or set it to null for the packaged ml-100k"
        )
    for layout, files in LAYOUTS.items():
        if (folder / files[0]).exists():
            missing = [name for name in files if not (folder / name).is_file()]
            if missing:
                raise DatasetError(
                    f"{folder} is missing {', '.join(missing)}; a GroupLens folder with {files[0]} needs "
                    f"{', '.join(files)} (unpack the whole zip there, or set dataset.path to null)"
                )
            extra = [folder / name for name in OPTIONAL.get(layout, ()) if (folder / name).is_file()]
            return layout, [folder / name for name in files] + extra
    inter_files = sorted(folder.glob("*.inter"))
    if len(inter_files) == 1:
        item_file = inter_files[0].with_suffix(".item")
        if not item_file.is_file():
            raise DatasetError(
                f"{folder} has {inter_files[0].name} but not {item_file.name}; RecBole atomic MovieLens needs both"
            )
        return "atomic", [inter_files[0], item_file]
    if len(inter_files) > 1:
        raise DatasetError(f"{folder} should hold exactly one RecBole .inter file, found {len(inter_files)}")
    raise DatasetError(
        f"{folder} holds no MovieLens files: expected GroupLens files ({expected}) or RecBole atomic files "
        f"<name>.inter and <name>.item; set dataset.path to null to use the packaged ml-100k"
    )


def rows(path: Path, records: BadRecords, split: Callable[[str], list[str]], n: int, layout: str,
         header: bool = False, encoding: str = "utf-8", fallback: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of a delimited file. The first data line decides the layout: if it
    has the wrong number of fields the file is in another format (a structure error); later lines
    with the wrong number of fields are bad records."""
    lines = read_lines(path, records, encoding=encoding, fallback=fallback)
    if header:  # the header names the columns: a file without it would lose its first row unseen
        line_no, line = next(lines)
        if [name.strip() for name in split(line)] != layout.split(","):
            raise DatasetError(
                f"{path} line {line_no}: expected the header {layout!r}, found {line[:80]!r}; "
                f"is this a GroupLens file, with its header line?"
            )
    first = True
    for line_no, line in lines:
        fields = split(line)
        if len(fields) != n:
            if first:
                raise DatasetError(
                    f"{path} line {line_no}: expected {n} fields ({layout}), found {len(fields)} in "
                    f"{line[:80]!r}; is this file in another format or separated differently?"
                )
            records.bad(path, line_no, "wrong_field_count", f"expected {n} fields ({layout}), found {len(fields)}",
                        "fix or remove the line")
            continue
        first = False
        yield line_no, fields


def _csv_split(line: str) -> list[str]:
    return next(csv.reader([line]))


def load_ml100k(folder: Path, builder: DatasetBuilder) -> dict:
    """ml-100k: ``u.genre`` names the genre flags of ``u.item``; ratings in ``u.data``."""
    records = builder.records
    genre_path, item_path, data_path = folder / "u.genre", folder / "u.item", folder / "u.data"
    by_index: dict[int, str] = {}
    for line_no, (name, index) in rows(genre_path, records, lambda s: s.split("|"), 2, "genre|index",
                                       encoding="latin-1"):
        if not index.isdigit():
            raise DatasetError(f"{genre_path} line {line_no}: genre index {index!r} is not a whole number")
        by_index[int(index)] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise DatasetError(f"{genre_path}: genre indices should run 0..{len(by_index) - 1}, found {sorted(by_index)}")
    genres = [by_index[i] for i in range(len(by_index))]

    builder.source("items", item_path)
    layout = f"id|title|release date|video date|IMDb URL|{len(genres)} genre flags"
    for line_no, fields in rows(item_path, records, lambda s: s.split("|"), 5 + len(genres), layout,
                                encoding="latin-1"):
        flags = fields[5:]
        if any(flag not in ("0", "1") for flag in flags):
            records.bad(item_path, line_no, "bad_genre_flags", f"genre flags must be 0 or 1, found {'|'.join(flags)}",
                        "fix or remove the line")
            continue
        title, year = split_title_year(fields[1])
        release_date = fields[2]
        if year is None and release_date[-4:].isdigit():
            year = release_date[-4:]
        movie(builder, item_path, line_no, fields[0], title, year, [g for g, f in zip(genres, flags) if f == "1"])

    builder.source("ratings", data_path)
    for line_no, (user, item, rating, ts) in rows(data_path, records, lambda s: s.split("\t"), 4,
                                                  "user id<TAB>item id<TAB>rating<TAB>timestamp"):
        builder.add_interaction(data_path, line_no, user, item, rating, ts)
    return {"layout": "ml-100k"}


def load_grouplens(folder: Path, builder: DatasetBuilder, kind: str, max_tags: int) -> dict:
    """ml-1m / ml-10m (``::``-separated ``.dat``) and ml-20m / ml-25m / ml-latest (``.csv``)."""
    records = builder.records
    if kind == "dat":
        split, header, fallback = (lambda s: s.split("::")), False, "latin-1"
        layouts = ("UserID::MovieID::Rating::Timestamp", "MovieID::Title::Genres", "UserID::MovieID::Tag::Timestamp")
    else:
        split, header, fallback = _csv_split, True, None
        layouts = ("userId,movieId,rating,timestamp", "movieId,title,genres", "userId,movieId,tag,timestamp")
    tags = _popular_tags(folder / f"tags.{kind}", records, split, header, layouts[2], max_tags)

    movies_path = folder / f"movies.{kind}"
    builder.source("items", movies_path)
    for line_no, (item, raw_title, genre_field) in rows(movies_path, records, split, 3, layouts[1], header,
                                                        fallback=fallback):
        title, year = split_title_year(raw_title)
        genres = [] if genre_field == "(no genres listed)" else [g for g in genre_field.split("|") if g]
        movie(builder, movies_path, line_no, item, title, year, genres, tags.get(item))

    ratings_path = folder / f"ratings.{kind}"
    builder.source("ratings", ratings_path)
    for line_no, (user, item, rating, ts) in rows(ratings_path, records, split, 4, layouts[0], header):
        builder.add_interaction(ratings_path, line_no, user, item, rating, ts)
    if tags:
        builder.source("tags", folder / f"tags.{kind}")
    return {"layout": "ml-1m/ml-10m (.dat)" if kind == "dat" else "ml-20m/ml-25m/ml-latest (.csv)"}


def _popular_tags(path: Path, records: BadRecords, split, header: bool, layout: str,
                  max_tags: int) -> dict[str, list[str]]:
    """Per movie, the ``max_tags`` tags applied by the most distinct users (at least two)."""
    if max_tags <= 0 or not path.is_file():
        return {}
    users: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for _, (user, item, tag, _ts) in rows(path, records, split, 4, layout, header, fallback="latin-1"):
        tag = tag.strip().lower()
        if tag:
            users[item][tag].add(user)
    popular = {}
    for item, by_tag in users.items():
        ranked = sorted(((len(u), t) for t, u in by_tag.items() if len(u) >= 2), key=lambda x: (-x[0], x[1]))
        if ranked:
            popular[item] = [t for _, t in ranked[:max_tags]]
    return popular


def load_atomic(inter_path: Path, item_path: Path, builder: DatasetBuilder) -> dict:
    """RecBole atomic files ``<name>.inter`` / ``<name>.item``; columns are found by header name."""
    builder.source("items", item_path)
    for line_no, (item_id, raw_title, year, genres) in _atomic_rows(
            item_path, builder.records, ("item_id", "movie_title", "release_year", "class")):
        title, title_year = split_title_year(raw_title)
        movie(builder, item_path, line_no, item_id, title, year if year.isdigit() else title_year, genres.split())
    builder.source("ratings", inter_path)
    for line_no, (user, item, rating, ts) in _atomic_rows(
            inter_path, builder.records, ("user_id", "item_id", "rating", "timestamp")):
        builder.add_interaction(inter_path, line_no, user, item, rating, _whole(ts))
    return {"layout": "RecBole atomic files"}


def _atomic_rows(path: Path, records: BadRecords, required: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """The ``required`` columns of each line, found by the RecBole header (``user_id:token<TAB>...``)."""
    lines = read_lines(path, records)
    line_no, header = next(lines)  # read_lines has raised already if the file is empty
    names = [field.split(":")[0] for field in header.split("\t")]
    missing = [c for c in required if c not in names]
    if missing:
        raise DatasetError(
            f"{path} line {line_no}: the header lacks {', '.join(missing)} (found {header!r}); "
            f"is this a RecBole atomic file?"
        )
    positions = [names.index(c) for c in required]
    for line_no, line in lines:
        fields = line.split("\t")
        if len(fields) != len(names):
            records.bad(path, line_no, "wrong_field_count", f"expected {len(names)} tab-separated fields, found "
                        f"{len(fields)}", "fix or remove the line")
            continue
        yield line_no, [fields[i] for i in positions]


def _whole(value: str):
    """RecBole writes timestamps as floats (``881250949.0``); GroupLens as integers."""
    try:
        return int(float(value))
    except ValueError:
        return value  # the builder reports it as a bad timestamp


def movie(builder: DatasetBuilder, path: Path, line_no: int, item_id: str, title: str, year: str | None,
          genres: list[str], tags: list[str] | None = None) -> None:
    attributes = {"year": int(year) if year else None, "genres": genres}
    if tags:
        attributes["tags"] = tags
    builder.add_item(path, line_no, item_id, title, attributes)


def split_title_year(title: str) -> tuple[str, str | None]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", "1995")``; titles without the suffix are kept whole."""
    match = _TITLE_YEAR.match(title)
    if match and match.group("title"):
        return match.group("title"), match.group("year")
    return title.strip(), None
