"""The ``jsonl`` dataset: any ratings data, written as two JSON Lines files.

Use it for a dataset that has no loader of its own: convert it once to this format and point
``dataset.path`` at the folder (``JsonLinesSettings`` below has the settings). The folder holds

========================  ============================================================================
``items.jsonl``           one JSON object per item (required)
``interactions.jsonl``    one JSON object per rating, or per user with that user's history (required)
========================  ============================================================================

Either file may instead be gzip-compressed and named ``items.jsonl.gz`` / ``interactions.jsonl.gz``
(gzip is recognised by its content; the name only says which file it is). A folder with both the
plain and the ``.gz`` name of the same file is refused as ambiguous. Files are UTF-8, one JSON
object a line; blank lines are ignored. Files are streamed line by line: memory does not grow with
them.

**items** — every item that interactions mention, one line each::

    {"item_id": "i1", "title": "Dune", "attributes": {"author": "Frank Herbert", "year": 1965, "genres": ["sci-fi"]}}

``item_id`` (a string, or an integer that is read as its decimal string) and ``title`` (a
non-empty string) are required. ``attributes`` is optional: a JSON object of any JSON values,
shown after the title in prompts and item embeddings as ``key: value`` (lists joined with
commas; null, empty strings and empty lists left out), in the order written. Other keys are ignored.

**interactions** — two layouts, which may be mixed line by line:

(a) flat, one rating a line::

      {"user_id": "u1", "item_id": "i1", "rating": 4.0, "timestamp": 1700000000, "text": "Slow, then great."}

(b) per user, the user's whole history on one line::

      {"user_id": "u1", "history": [{"item_id": "i1", "rating": 4, "timestamp": "2023-05-01T12:00:00Z"},
                                    {"item_id": "i2", "rating": 2, "timestamp": "2023-05-02 08:30:00", "text": "..."}]}

  (written on one line in the file). Entries of a history take the line's ``user_id``; an entry
  may repeat it, but not name another user.

Required in every rating: ``user_id`` and ``item_id`` (strings, or integers read as their decimal
strings), ``rating`` (a JSON number inside ``dataset.rating_scale``) and ``timestamp``: seconds
since 1970-01-01 UTC as a JSON number (or a string of digits), or an ISO-8601 date or date-time
string (``"2023-05-01"``, ``"2023-05-01T12:00:00Z"``, ``"2023-05-01 12:00:00"``,
``"2023-05-01T14:00:00+02:00"``) — a time without an offset is UTC; fractions of a second are
dropped. Milliseconds are not detected: convert them to seconds. ``text`` (the user's review) is
optional: a string or null. Order does not matter: the protocol sorts each user's ratings by time
(and, when a user rated an item more than once, keeps the latest).

**Bad input.** A missing or empty file, a truncated ``.gz`` and a first line that is not a JSON
object are structure errors: the load stops, naming the file. A single bad record is skipped and
counted by kind in the data summary (``dataset.on_bad_record: skip``) or stops the load naming file
and line (``fail``). Kinds: ``malformed_json`` (not one JSON object), ``not_utf8``,
``missing_field`` (a required key absent or null), ``bad_id``, ``bad_rating``,
``rating_out_of_scale``, ``bad_timestamp``, ``bad_text``, ``bad_attributes``, ``bad_history``
(``history`` not a list, or an entry not an object), ``mixed_layout`` (a line with both
``history`` and ``item_id``), ``user_mismatch`` (a history entry naming another user),
``user_without_interactions`` (an empty history), ``item_without_id``, ``item_without_title`` and
``item_without_metadata`` (a rating of an item that ``items.jsonl`` does not describe). An item
described twice keeps its first record; the others are counted as ``duplicate_items_ignored``. In the history layout each bad entry is one bad
record (the others of the line are kept), reported with the line's number. More bad records than
``dataset.max_bad_fraction`` of all records stops the load as the wrong file or format.
"""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from lettingo.data import DatasetBuilder, DatasetError, DatasetSettings, FileDataset, InteractionData, cached_dataset
from lettingo.data.reading import iso_seconds, json_records

FILES = ("items", "interactions")
REQUIRED = ("item_id", "rating", "timestamp")  # user_id is checked on the line
FORMAT_DOC = "lettingo/data/jsonl.py"


@dataclass
class JsonLinesSettings(DatasetSettings):
    """Any ratings data converted to two JSON Lines files (the format: the module docstring): a folder
    holding items.jsonl and interactions.jsonl, either optionally gzipped. There is no packaged data: set path."""

    name: str = "jsonl"


class JsonLines(FileDataset):
    """The ``jsonl`` dataset component: ``load()`` returns an :class:`InteractionData`."""

    Settings = JsonLinesSettings

    def load(self) -> InteractionData:
        folder = self.folder(
            "dataset jsonl has no packaged data: set dataset.path to a folder holding items.jsonl and "
            f"interactions.jsonl (or .jsonl.gz); the format is documented in {FORMAT_DOC}"
        )
        items_path, interactions_path = find_files(folder)
        return cached_dataset(
            "jsonl", [items_path, interactions_path], {"format": "jsonl"}, self.cfg,
            lambda builder: load_jsonl(items_path, interactions_path, builder),
        )


def find_files(folder: Path) -> tuple[Path, Path]:
    """``items.jsonl[.gz]`` and ``interactions.jsonl[.gz]`` in ``folder``, or a DatasetError saying
    what is missing."""
    if not folder.is_dir():
        raise DatasetError(
            f"dataset.path {str(folder)!r} is not a folder; point it at a folder holding items.jsonl and "
            f"interactions.jsonl (or .jsonl.gz), as documented in {FORMAT_DOC}"
        )
    found = []
    for name in FILES:
        candidates = [folder / f"{name}.jsonl", folder / f"{name}.jsonl.gz"]
        present = [p for p in candidates if p.is_file()]
        if not present:
            raise DatasetError(
                f"{candidates[0]} does not exist (nor {candidates[1].name}): a jsonl dataset folder needs both "
                f"items.jsonl and interactions.jsonl, plain or gzipped; see {FORMAT_DOC} for the format"
            )
        if len(present) > 1:
            raise DatasetError(
                f"{folder} holds both {candidates[0].name} and {candidates[1].name}; keep one of them so it is "
                f"clear which is read"
            )
        found.append(present[0])
    return found[0], found[1]


def load_jsonl(items_path: Path, interactions_path: Path, builder: DatasetBuilder) -> dict:
    """Stream both files into ``builder``: every item first, then the interactions."""
    records = builder.records
    builder.source("items", items_path)
    for line_no, record in json_records(items_path, records):
        item_id = _id(record.get("item_id"))
        if item_id is False:
            records.bad(items_path, line_no, "bad_id", f"item_id {record['item_id']!r} is not a string or an integer",
                        "write ids as strings")
            continue
        title = record.get("title")
        if title is not None and not isinstance(title, str):
            records.bad(items_path, line_no, "item_without_title", f"title {title!r} is not a string",
                        "write the title as a string")
            continue
        attributes = record.get("attributes")
        if attributes is None:
            attributes = {}
        elif not isinstance(attributes, dict):
            records.bad(items_path, line_no, "bad_attributes",
                        f"attributes must be a JSON object, found a {_json_type(attributes)}",
                        'write attributes as {"key": value, ...} or leave them out')
            continue
        builder.add_item(items_path, line_no, item_id, title, attributes)

    builder.source("interactions", interactions_path)
    layouts = {"flat": 0, "history": 0}
    for line_no, record in json_records(interactions_path, records):
        user_id = _id(record.get("user_id"))
        if "history" in record:
            layouts["history"] += 1
            _add_history(builder, interactions_path, line_no, user_id, record)
        else:
            layouts["flat"] += 1
            _add_rating(builder, interactions_path, line_no, user_id, record, "")
    return {"layout": "jsonl", "interaction_lines": layouts}


def _add_history(builder: DatasetBuilder, path: Path, line_no: int, user_id, record: dict[str, Any]) -> None:
    records = builder.records
    if "item_id" in record:
        records.bad(path, line_no, "mixed_layout", "a line with both history and item_id",
                    "write either one rating (flat) or one user's history per line")
        return
    if not _user_ok(records, path, line_no, user_id, record):
        return
    history = record["history"]
    if not isinstance(history, list):
        records.bad(path, line_no, "bad_history", f"history must be a JSON list, found a {_json_type(history)}",
                    "write history as a list of rating objects")
        return
    if not history:
        records.bad(path, line_no, "user_without_interactions", f"user {user_id!r} has an empty history",
                    "remove the line, or add the user's ratings")
        return
    for position, entry in enumerate(history, 1):
        where = f"history entry {position}: "
        if not isinstance(entry, dict):
            records.bad(path, line_no, "bad_history", f"{where}a {_json_type(entry)}, not a JSON object",
                        "write each history entry as an object with item_id, rating and timestamp")
            continue
        if "user_id" in entry and _id(entry["user_id"]) != user_id:
            records.bad(path, line_no, "user_mismatch",
                        f"{where}user_id {entry['user_id']!r} differs from the line's user_id {user_id!r}",
                        "put each user's ratings in that user's history")
            continue
        _add_rating(builder, path, line_no, user_id, entry, where)


def _add_rating(builder: DatasetBuilder, path: Path, line_no: int, user_id, record: dict[str, Any],
                where: str) -> None:
    records = builder.records
    if not where and not _user_ok(records, path, line_no, user_id, record):
        return
    missing = [key for key in REQUIRED if record.get(key) is None]
    if missing:
        records.bad(path, line_no, "missing_field", f"{where}no {', '.join(missing)}",
                    f"every rating needs user_id, {', '.join(REQUIRED)}")
        return
    item_id = _id(record["item_id"])
    if item_id is False:
        records.bad(path, line_no, "bad_id", f"{where}item_id {record['item_id']!r} is not a string or an integer",
                    "write ids as strings")
        return
    rating = record["rating"]
    if isinstance(rating, bool) or not isinstance(rating, (int, float)):
        records.bad(path, line_no, "bad_rating", f"{where}rating {rating!r} is not a JSON number",
                    "write the rating as a number")
        return
    timestamp = parse_timestamp(record["timestamp"])
    if timestamp is None:
        records.bad(path, line_no, "bad_timestamp",
                    f"{where}timestamp {record['timestamp']!r} is neither whole seconds nor an ISO-8601 date-time",
                    'write it as seconds since 1970 UTC or like "2023-05-01T12:00:00Z"')
        return
    text = record.get("text")
    if text is not None and not isinstance(text, str):
        records.bad(path, line_no, "bad_text", f"{where}text must be a string or null, found a {_json_type(text)}",
                    "write the review as a string")
        return
    builder.add_interaction(path, line_no, user_id, item_id, rating, timestamp, text)


def _user_ok(records, path: Path, line_no: int, user_id, record: dict[str, Any]) -> bool:
    if user_id is None:
        records.bad(path, line_no, "missing_field", "no user_id", "every line needs a user_id")
        return False
    if user_id is False:
        records.bad(path, line_no, "bad_id", f"user_id {record['user_id']!r} is not a string or an integer",
                    "write ids as strings")
        return False
    return True


def _id(value) -> str | None | bool:
    """An id as a string; ``None`` when absent or blank, ``False`` when not a string or an integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return False
    text = str(value).strip()
    return text or None


def parse_timestamp(value) -> int | None:
    """Whole seconds since the epoch from an integer, a string of digits, or an ISO-8601 string
    (UTC when it has no offset); ``None`` when it is none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    return int(text) if text.lstrip("-").isdigit() else iso_seconds(text)


def _json_type(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)
