"""Prepared datasets: every loader streams its raw files into two Parquet files, cached and reused.

A loader feeds a :class:`DatasetBuilder` one item and one interaction at a time; the builder checks
each record (ids present, rating a number inside the dataset's scale, timestamp a whole number, item
known when the dataset has item metadata), writes them in row groups of ``chunk_rows`` and so holds
at most one row group in memory, however large the raw files. The result, an
:class:`InteractionData`, reads back only the columns and rows a stage asks for: the protocol never
loads review text except for the window interactions of the users it keeps.

:func:`cached_dataset` keys a prepared dataset by the loader, its settings and each source file's
path, size and modification time, under ``$LETTINGO_CACHE_DIR/datasets/``; a second run with the
same files reads the Parquet files instead of the raw ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lettingo.errors import DatasetError
from lettingo.types import Item

FORMAT_VERSION = 1  # bump when the Parquet layout or a built-in loader's parsing changes
INTERACTIONS = "interactions.parquet"
ITEMS = "items.parquet"
REPORT = "load_report.json"
STALE_BUILD_S = 24 * 3600
INTERACTION_SCHEMA = pa.schema([
    ("user_id", pa.string()), ("item_id", pa.string()), ("rating", pa.float64()),
    ("timestamp", pa.int64()), ("text", pa.string()),
])
ITEM_SCHEMA = pa.schema([("item_id", pa.string()), ("title", pa.string()), ("attributes", pa.string())])


class InteractionData:
    """A prepared dataset: ``interactions.parquet`` (one row per rating, in file order) and
    ``items.parquet`` (one row per item with metadata), plus the load report (bad records, sources)."""

    def __init__(self, name: str, folder: Path):
        self.name = name
        self.folder = Path(folder)
        self.report: dict[str, Any] = json.loads((self.folder / REPORT).read_text())

    @property
    def has_text(self) -> bool:
        return bool(self.report.get("interactions_with_text"))

    def interactions(self, text: bool = False) -> pd.DataFrame:
        """The interactions table; the index is the row number (what :meth:`texts` takes).

        ``user_id`` and ``item_id`` are categoricals whose categories are sorted as strings, so
        sorting by them orders ids as strings, at the memory cost of two integer columns.
        """
        columns = ["user_id", "item_id", "rating", "timestamp"] + (["text"] if text else [])
        table = pq.read_table(self.folder / INTERACTIONS, columns=columns, read_dictionary=["user_id", "item_id"])
        frame = table.unify_dictionaries().to_pandas()
        for column in ("user_id", "item_id"):
            categories = frame[column].cat.categories
            frame[column] = frame[column].cat.reorder_categories(sorted(categories))
        return frame

    def item_ids(self) -> list[str]:
        return pq.read_table(self.folder / ITEMS, columns=["item_id"]).column("item_id").to_pylist()

    def items(self, ids: Iterable[str] | None = None) -> dict[str, Item]:
        """Items by id: all of them, or only ``ids`` (read with a filter, not loaded whole)."""
        filters = None
        if ids is not None:
            ids = list(ids)
            if not ids:
                return {}
            filters = [("item_id", "in", ids)]
        table = pq.read_table(self.folder / ITEMS, filters=filters)
        return {
            item_id: Item(item_id, title, json.loads(attributes))
            for item_id, title, attributes in zip(
                table.column("item_id").to_pylist(), table.column("title").to_pylist(),
                table.column("attributes").to_pylist(),
            )
        }

    def texts(self, rows: Iterable[int]) -> dict[int, str]:
        """Review texts of the given interaction rows, one row group in memory at a time."""
        wanted = sorted(set(int(r) for r in rows))
        found: dict[int, str] = {}
        if not wanted or not self.has_text:
            return found
        parquet = pq.ParquetFile(self.folder / INTERACTIONS)
        start, position = 0, 0
        for group in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            local = []
            while position < len(wanted) and wanted[position] < start + size:
                local.append(wanted[position] - start)
                position += 1
            if local:
                column = parquet.read_row_group(group, columns=["text"]).column("text").take(local)
                for offset, value in zip(local, column.to_pylist()):
                    if value is not None:
                        found[start + offset] = value
            start += size
        return found

    @classmethod
    def from_records(cls, name: str, interactions: Iterable[tuple], items: Iterable[Item],
                     folder: Path | str | None = None, **builder_options) -> "InteractionData":
        """A prepared dataset from in-memory records: ``(user_id, item_id, rating, timestamp[, text])``
        tuples and :class:`Item` objects (for tests and small plugins). Bad records raise."""
        folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix=f"lettingo-{name}-"))
        builder = DatasetBuilder(name, folder, **{"on_bad_record": "fail", **builder_options})
        for item in items:
            builder.add_item("<items>", None, item.item_id, item.title, item.attributes)
        for number, row in enumerate(interactions, 1):
            builder.add_interaction("<interactions>", number, *row)
        return builder.finish()


class DatasetBuilder:
    """Checks records and streams them into a prepared dataset folder.

    Add every item first (when the dataset has item metadata), then the interactions: an
    interaction whose item was never added is then a bad record ("no metadata"). An item described
    twice keeps its first description; the others are counted (``duplicate_items_ignored``).
    """

    def __init__(self, name: str, folder: Path, on_bad_record: str = "skip",
                 rating_scale: tuple[float, float] | None = None, max_bad_fraction: float = 0.2,
                 chunk_rows: int = 200_000):
        from lettingo.data.reading import BadRecords

        self.name = name
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.records = BadRecords(on_bad_record)
        self.rating_scale = tuple(float(v) for v in rating_scale) if rating_scale else None
        self.max_bad_fraction = float(max_bad_fraction)
        self.chunk_rows = int(chunk_rows)
        self.sources: dict[str, str] = {}
        self._item_ids: set[str] | None = None
        self._items_source = ""
        self._items: list[list] = [[], [], []]
        self._rows: list[list] = [[], [], [], [], []]
        self._counts = {"interactions": 0, "items": 0, "interactions_with_text": 0, "duplicate_items_ignored": 0}
        self._writers: dict[str, pq.ParquetWriter] = {}

    def source(self, role: str, path: Path | str) -> None:
        """Name a file that went into the dataset (shown in the data summary)."""
        self.sources[role] = str(path)

    def add_item(self, path, line, item_id, title, attributes: dict[str, Any]) -> bool:
        if self._item_ids is None:
            self._item_ids, self._items_source = set(), str(path)
        item_id = "" if item_id is None else str(item_id).strip()
        title = "" if title is None else str(title).strip()
        if not item_id:
            self.records.bad(path, line, "item_without_id", "an item record without an id", "fix or remove the line")
            return False
        if not title:
            self.records.bad(path, line, "item_without_title", f"item {item_id!r} has no title",
                             "add a title or remove the line")
            return False
        if item_id in self._item_ids:  # a rule, not an error: Amazon's meta files repeat items
            self._counts["duplicate_items_ignored"] += 1
            return False
        self._item_ids.add(item_id)
        for column, value in zip(self._items, (item_id, title, json.dumps(attributes, ensure_ascii=False))):
            column.append(value)
        self._counts["items"] += 1
        if len(self._items[0]) >= self.chunk_rows:
            self._flush_items()
        return True

    def add_interaction(self, path, line, user_id, item_id, rating, timestamp, text=None) -> bool:
        user_id = "" if user_id is None else str(user_id).strip()
        item_id = "" if item_id is None else str(item_id).strip()
        if not user_id or not item_id:
            self.records.bad(path, line, "missing_id", "a rating without a user id or an item id",
                             "fix or remove the line")
            return False
        try:
            if isinstance(rating, bool):
                raise TypeError
            rating = float(rating)
            if math.isnan(rating):
                raise ValueError
        except (TypeError, ValueError):
            self.records.bad(path, line, "bad_rating", f"rating {rating!r} is not a number", "fix or remove the line")
            return False
        if self.rating_scale and not self.rating_scale[0] <= rating <= self.rating_scale[1]:
            low, high = self.rating_scale
            self.records.bad(path, line, "rating_out_of_scale", f"rating {rating:g} is outside the scale {low:g}-{high:g}",
                             "fix the line, or set dataset.rating_scale if the scale is different")
            return False
        try:
            if isinstance(timestamp, bool):
                raise TypeError
            timestamp = int(timestamp)
        except (TypeError, ValueError, OverflowError):
            self.records.bad(path, line, "bad_timestamp", f"timestamp {timestamp!r} is not a whole number of seconds",
                             "fix or remove the line")
            return False
        if self._item_ids is not None and item_id not in self._item_ids:
            self.records.bad(path, line, "item_without_metadata",
                             f"item {item_id!r} has no metadata in {self._items_source}",
                             "add the item's metadata, or remove its ratings")
            return False
        if text is not None and not isinstance(text, str):
            text = str(text)
        for column, value in zip(self._rows, (user_id, item_id, rating, timestamp, text or None)):
            column.append(value)
        self._counts["interactions"] += 1
        self._counts["interactions_with_text"] += bool(text)
        if len(self._rows[0]) >= self.chunk_rows:
            self._flush_interactions()
        return True

    def _write(self, file: str, schema: pa.Schema, columns: list[list]) -> None:
        if file not in self._writers:
            self._writers[file] = pq.ParquetWriter(self.folder / file, schema, compression="zstd")
        table = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema)], schema=schema)
        self._writers[file].write_table(table)
        for column in columns:
            column.clear()

    def _flush_items(self) -> None:
        self._write(ITEMS, ITEM_SCHEMA, self._items)

    def _flush_interactions(self) -> None:
        self._write(INTERACTIONS, INTERACTION_SCHEMA, self._rows)

    def finish(self, **report) -> InteractionData:
        """Write what is buffered, check that the data is usable, and return the prepared dataset."""
        self._flush_items()
        self._flush_interactions()
        for writer in self._writers.values():
            writer.close()
        bad, good = self.records.total, self._counts["interactions"]
        sources = ", ".join(self.sources.values()) or self.name
        if good == 0:
            raise DatasetError(
                f"{sources}: no usable ratings ({bad} bad records skipped: {self.records.summary()['by_kind']}); "
                f"check that dataset.path points at the right files"
            )
        if bad > self.max_bad_fraction * (good + bad + self._counts["items"]):
            examples = "; ".join(e for kind in self.records.examples.values() for e in kind[:1])
            raise DatasetError(
                f"{sources}: {bad} records were bad against {good} usable ratings (more than "
                f"dataset.max_bad_fraction={self.max_bad_fraction:g}); this looks like the wrong file or "
                f"format. First examples: {examples}"
            )
        full = {
            "dataset": self.name, "format_version": FORMAT_VERSION, "sources": self.sources,
            **self._counts, "bad_records": self.records.summary(), **report,
        }
        (self.folder / REPORT).write_text(json.dumps(full, indent=2, ensure_ascii=False))
        return InteractionData(self.name, self.folder)


def datasets_cache_dir() -> Path:
    from lettingo.cache import default_cache_path

    return default_cache_path().parent / "datasets"


def cached_dataset(name: str, sources: list[Path], settings: dict[str, Any], dataset_cfg,
                   build: Callable[[DatasetBuilder], dict | None],
                   default_rating_scale: tuple[float, float] | None = None) -> InteractionData:
    """The prepared dataset for these source files and settings: read from the cache when it was
    built before, else built by ``build(builder)`` (which returns extra report fields) and cached.

    ``dataset.cache=false`` builds again and replaces the cached copy. ``dataset.rating_scale``
    null means ``default_rating_scale`` (a loader that knows its release's scale passes it).
    """
    builder_options = {
        "on_bad_record": dataset_cfg.on_bad_record,
        "rating_scale": list(dataset_cfg.rating_scale or default_rating_scale or []) or None,
        "max_bad_fraction": dataset_cfg.max_bad_fraction,
    }
    identity = {
        "name": name, "format_version": FORMAT_VERSION, "settings": settings, "builder": builder_options,
        "sources": [_file_identity(Path(p)) for p in sources],
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]
    use_cache = dataset_cfg.cache
    root = datasets_cache_dir()
    final = root / f"{name}-{key}"
    if use_cache and (final / REPORT).is_file():
        return InteractionData(name, final)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".{name}-{key}-*"):  # builds killed part-way (a live one is younger)
        if time.time() - stale.stat().st_mtime > STALE_BUILD_S:
            shutil.rmtree(stale, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix=f".{name}-{key}-", dir=root))
    try:
        builder = DatasetBuilder(name, building, **builder_options)
        builder.finish(**(build(builder) or {}))
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if not use_cache:
        shutil.rmtree(final, ignore_errors=True)
    try:
        os.replace(building, final)  # atomic: a killed build never leaves a half-written cache entry
    except OSError:  # another process finished the same build first: use its copy
        shutil.rmtree(building, ignore_errors=True)
    return InteractionData(name, final)


def _file_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
