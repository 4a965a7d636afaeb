"""Reading raw dataset files line by line: gzip or plain text, with line numbers, in bounded memory.

Two kinds of bad input, handled differently:

- **Structure errors** (a missing, empty, truncated or corrupt file; a layout that is not the
  expected one) stop the load with a :class:`~lettingo.data.DatasetError` naming the file and what
  to do: the rest of such a file cannot be trusted.
- **Bad records** (one malformed JSON line, one rating outside the scale, one line that is not
  UTF-8, an interaction whose item has no metadata, ...) are skipped and counted by
  :class:`BadRecords`, or stop the load with the file and line when ``dataset.on_bad_record=fail``.
  Counts and the first examples of each kind go into the run's data summary: nothing is dropped
  silently.
"""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import orjson

from lettingo.data import DatasetError

GZIP_MAGIC = b"\x1f\x8b"
ON_BAD_RECORD = ("skip", "fail")
EXAMPLES_PER_KIND = 3


class BadRecords:
    """Single bad records: skipped and counted by kind (``policy="skip"``) or raised (``"fail"``)."""

    def __init__(self, policy: str = "skip"):
        if policy not in ON_BAD_RECORD:
            raise DatasetError(f"dataset.on_bad_record must be one of {', '.join(ON_BAD_RECORD)}, got {policy!r}")
        self.policy = policy
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def bad(self, path: Path | str, line: int | None, kind: str, problem: str, fix: str) -> None:
        """Record (or raise) one bad record. ``kind`` is a short key for the summary, ``problem`` what
        is wrong with this record, ``fix`` what the user can do about it."""
        where = f"{path} line {line}" if line else str(path)
        if self.policy == "fail":
            raise DatasetError(
                f"{where}: {problem}; {fix}, or set dataset.on_bad_record=skip to skip and count such records"
            )
        self.counts[kind] += 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < EXAMPLES_PER_KIND:
            examples.append(f"{where}: {problem}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> dict[str, Any]:
        return {
            "skipped": self.total,
            "by_kind": dict(sorted(self.counts.items())),
            "examples": {kind: self.examples[kind] for kind in sorted(self.examples)},
        }


def require_file(path: Path, what: str, fix: str) -> Path:
    """``path`` if it is a file, else a DatasetError saying which file was expected and how to get it."""
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: expected {what} there; {fix}")
    return path


def open_binary(path: Path):
    """The file as a binary stream, decompressed when it is gzip (found by its magic bytes, not its name)."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")


def read_lines(
    path: Path, records: BadRecords, encoding: str = "utf-8", fallback: str | None = None
) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each non-blank line, streamed: memory does not grow with the file.

    A line that is not valid ``encoding`` is decoded as ``fallback`` when given (MovieLens title files
    mix UTF-8 and Latin-1), else it is a bad record. A truncated or corrupt gzip stream and a file
    without a single non-blank line are structure errors.
    """
    line_no = 0
    lines = undecodable = 0
    try:
        with open_binary(path) as handle:
            for line_no, raw in enumerate(handle, 1):
                if not raw.strip():
                    continue
                try:
                    text = raw.decode(encoding)
                except UnicodeDecodeError as exc:
                    if fallback is None:
                        undecodable += 1
                        records.bad(
                            path, line_no, "not_utf8" if encoding == "utf-8" else f"not_{encoding}",
                            f"bytes that are not {encoding} ({exc.reason} at byte {exc.start})",
                            f"re-save the file as {encoding}",
                        )
                        continue
                    text = raw.decode(fallback)
                lines += 1
                yield line_no, text.rstrip("\r\n")
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetError(
            f"{path}: the gzip data is truncated or corrupt after line {line_no} ({exc}); the download was "
            f"probably cut short: download the file again"
        ) from None
    if lines == 0 and undecodable:
        raise DatasetError(f"{path}: not one line is {encoding} text; re-save the file as {encoding}")
    if lines == 0:
        raise DatasetError(f"{path} is empty (no non-blank lines); download it again or point dataset.path elsewhere")


def parse_json(path: Path, line_no: int, line: str, records: BadRecords) -> dict[str, Any] | None:
    """One JSON object per line; anything else is a bad record (``None``)."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        records.bad(path, line_no, "malformed_json", f"not valid JSON ({exc})", "fix or remove the line")
        return None
    if not isinstance(value, dict):
        records.bad(path, line_no, "malformed_json", f"a JSON {type(value).__name__}, not an object",
                    "each line must be one JSON object")
        return None
    return value


def json_records(path: Path, records: BadRecords, required: tuple[str, ...] = (), what: str = "records",
                 hint: str = "is this the right file?") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each JSON line of a (possibly gzipped) JSON-lines file.

    A first line that is not a JSON object, or a first record without the ``required`` keys, means
    another file or format altogether: a structure error. Later records missing them are bad
    records (the builder reports the missing values).
    """
    first = True
    for line_no, line in read_lines(path, records):
        if first:
            first = False
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                value = None
            if not isinstance(value, dict):
                raise DatasetError(
                    f"{path} line {line_no}: expected one JSON object per line (JSON Lines), found "
                    f"{line[:60]!r}; {hint}"
                )
            missing = [key for key in required if key not in value]
            if missing:
                raise DatasetError(
                    f"{path} line {line_no}: expected {what} with keys {', '.join(required)}, but this record "
                    f"lacks {', '.join(missing)} (its keys: {', '.join(sorted(value)[:12])}); {hint}"
                )
        value = parse_json(path, line_no, line, records)
        if value is not None:
            yield line_no, value


def iso_seconds(text: str) -> int | None:
    """An ISO-8601 date or date-time as Unix seconds, UTC when it has no offset; None if it is not one."""
    text = text.strip()
    if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not read the "Z" suffix
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())
