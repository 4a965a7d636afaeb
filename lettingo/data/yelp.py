"""Yelp Open Dataset loader (https://www.yelp.com/dataset).

``dataset.path`` is the unpacked ``yelp_dataset.tar`` folder; two of its JSON-lines files are read,
line by line (gzipped copies, ``<name>.gz``, are read too):

- ``yelp_academic_dataset_business.json``: the items, by ``business_id``. An item's text is its
  ``name``, the first ``MAX_CATEGORIES`` of its ``categories`` (a comma-separated string, or null)
  and its ``city, state``.
- ``yelp_academic_dataset_review.json``: ``user_id``, ``business_id``, ``stars`` (the rating, 1-5),
  ``text`` (the interaction's review text) and ``date`` (``"2018-07-07 22:09:11"``). The dataset
  gives no time zone, so dates are read as UTC and stored as Unix seconds; a date that cannot be
  read is a bad record (``bad_timestamp``).

Businesses are read first, so that reviews of a business without a record are counted as bad
records rather than kept without item text.
"""

from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass
from typing import Any

from lettingo.data import DatasetBuilder, DatasetError, DatasetSettings, FileDataset, InteractionData, cached_dataset
from lettingo.data.reading import iso_seconds, json_records

DOWNLOAD = "https://www.yelp.com/dataset"
BUSINESSES = "yelp_academic_dataset_business.json"
REVIEWS = "yelp_academic_dataset_review.json"
MAX_CATEGORIES = 5  # Yelp categories are flat tags, listed roughly from general to specific


@dataclass
class YelpSettings(DatasetSettings):
    """The Yelp Open Dataset (fields used: the module docstring). lettingo ships no copy: download it
    from https://www.yelp.com/dataset (JSON), unpack yelp_dataset.tar and set path to the folder holding
    yelp_academic_dataset_business.json and yelp_academic_dataset_review.json (.gz copies work too)."""

    name: str = "yelp"


class Yelp(FileDataset):
    """The ``yelp`` dataset component: ``load()`` returns an :class:`InteractionData`."""

    Settings = YelpSettings

    def load(self) -> InteractionData:
        businesses, reviews = find_files(self.folder(
            f"dataset.path is null, and lettingo ships no copy of the Yelp Open Dataset: download it from "
            f"{DOWNLOAD} (JSON), unpack yelp_dataset.tar and set dataset.path to the folder holding "
            f"{BUSINESSES} and {REVIEWS}"
        ))
        return cached_dataset("yelp", [businesses, reviews], {}, self.cfg,
                              lambda builder: load_yelp(businesses, reviews, builder))


def find_files(folder: Path) -> tuple[Path, Path]:
    """(business file, review file) in ``folder``; plain JSON lines are preferred to ``.gz`` copies."""
    if not folder.is_dir():
        raise DatasetError(
            f"dataset.path {str(folder)!r} is not a folder; point it at the unpacked Yelp Open Dataset "
            f"(the folder holding {BUSINESSES} and {REVIEWS})"
        )
    found = []
    for name in (BUSINESSES, REVIEWS):
        path = next((folder / n for n in (name, f"{name}.gz") if (folder / n).is_file()), None)
        if path is None:
            raise DatasetError(
                f"{folder / name} does not exist: the Yelp Open Dataset has it (also read as {name}.gz); "
                f"download the dataset from {DOWNLOAD} and unpack yelp_dataset.tar into {folder}"
            )
        found.append(path)
    return found[0], found[1]


def load_yelp(businesses: Path, reviews: Path, builder: DatasetBuilder) -> dict:
    records = builder.records
    builder.source("items", businesses)
    for line_no, business in json_records(businesses, records, ("business_id", "name"), "Yelp businesses"):
        builder.add_item(businesses, line_no, business.get("business_id"), business.get("name"),
                         business_attributes(business))

    builder.source("ratings", reviews)
    required = ("user_id", "business_id", "stars", "date")
    for line_no, review in json_records(reviews, records, required, "Yelp reviews"):
        date = review.get("date")
        seconds = iso_seconds(date) if isinstance(date, str) else None
        if seconds is None:
            records.bad(reviews, line_no, "bad_timestamp",
                        f"date {review.get('date')!r} is not a date and time like 2018-07-07 22:09:11",
                        "fix or remove the line")
            continue
        text = "" if review.get("text") is None else str(review["text"]).strip()
        builder.add_interaction(reviews, line_no, review.get("user_id"), review.get("business_id"),
                                review.get("stars"), seconds, text or None)
    return {"layout": "Yelp Open Dataset", "timestamps": "review dates read as UTC, in seconds"}


def business_attributes(business: dict[str, Any]) -> dict[str, Any]:
    """Categories and place, the parts of a business record that say what it is and where."""
    raw = business.get("categories")
    if isinstance(raw, str):
        raw = raw.split(",")
    categories = [str(c).strip() for c in raw or [] if c is not None and str(c).strip()][:MAX_CATEGORIES]
    place = ", ".join(str(business[k]).strip() for k in ("city", "state") if business.get(k))
    return {key: value for key, value in (("categories", categories), ("city", place)) if value}
