"""Amazon Reviews loader: the 2018 (McAuley lab) and 2023 releases, one category at a time.

``dataset.path`` is a folder holding one category's review and metadata files as downloaded
(``dataset.category`` names the category by its file stem: ``Books``, ``Movies_and_TV``, ...):

=======  ===============================================  ============================
release  reviews                                          item metadata
=======  ===============================================  ============================
2018     ``<Category>.json.gz``, or the 5-core subset     ``meta_<Category>.json.gz``
         ``<Category>_5.json.gz`` (the full file wins)
2023     ``<Category>.jsonl.gz``                          ``meta_<Category>.jsonl.gz``
=======  ===============================================  ============================

Unpacked copies (the same names without ``.gz``) are read too. ``dataset.version: auto`` picks the
release whose review file is there and stops if both are, or neither (listing the expected names).
Every file is read line by line, metadata first, so memory does not grow with the number of reviews.

Fields used:

- **2018** reviews: ``reviewerID`` (user), ``asin`` (item), ``overall`` (rating),
  ``unixReviewTime`` (seconds; the review *day*, so one user's reviews of a day tie and the
  protocol orders them by item id), text = ``summary`` + ``reviewText``. Metadata by ``asin``.
- **2023** reviews: ``user_id``, ``parent_asin`` (the item: metadata is keyed by it; ``asin`` is the
  variant bought), ``rating``, ``timestamp`` in *milliseconds*, floored to whole seconds here,
  text = ``title`` + ``text`` (``<br />`` turned into line breaks). Metadata by ``parent_asin``.

An item's text is its title, then its most specific categories (the top-level department, the same
for every item of a file, is left out), brand (2018) or store (2023), a few features and the
description cut to ``dataset.max_description_chars``. Titles, categories and descriptions lose
their HTML tags and entities (the 2018 scrape has many). Duplicate metadata records (the 2018 files
have some) keep the first; the others are counted (``duplicate_items_ignored`` in the report).
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from lettingo.data import DatasetBuilder, DatasetError, DatasetSettings, FileDataset, InteractionData, cached_dataset
from lettingo.data.reading import json_records

RELEASES = ("2018", "2023")
DOWNLOAD = {
    "2018": "https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/",
    "2023": "https://amazon-reviews-2023.github.io/",
}
MAX_CATEGORIES = 3  # the most specific ones: the end of the category path
MAX_FEATURES = 3
MAX_FEATURE_CHARS = 100
MAX_TITLE_CHARS = 200  # a few 2018 titles are whole scraped HTML pages
MAX_NAME_CHARS = 80  # brand, store, one category


def review_names(release: str, category: str) -> tuple[str, ...]:
    """Review file names in order of preference."""
    if release == "2018":
        return (f"{category}.json.gz", f"{category}.json", f"{category}_5.json.gz", f"{category}_5.json")
    return (f"{category}.jsonl.gz", f"{category}.jsonl")


def meta_names(release: str, category: str) -> tuple[str, ...]:
    suffix = ".json" if release == "2018" else ".jsonl"
    return (f"meta_{category}{suffix}.gz", f"meta_{category}{suffix}")


HINT = "is this the right file, and does dataset.version match it?"


@dataclass
class AmazonSettings(DatasetSettings):
    """Amazon Reviews, one category: the 2018 release (McAuley lab) or the 2023 one (file layouts in
    the module docstring). lettingo ships no copy: download the category's reviews and metadata files
    into one folder and set path to that folder. Amazon uses 1-5 stars."""

    name: str = "amazon"
    category: str = "Books"  # the category's file stem, as in the download: Books, Movies_and_TV, All_Beauty, ...
    # auto: from the files there (<category>.json.gz or <category>_5.json.gz is 2018, <category>.jsonl.gz
    # is 2023; both present stops and asks) | 2018 | 2023
    version: str = "auto"
    max_description_chars: int = 300  # item descriptions are cut to this (at a word boundary); 0 leaves them out


class Amazon(FileDataset):
    """The ``amazon`` dataset component: ``load()`` returns an :class:`InteractionData`."""

    Settings = AmazonSettings

    def load(self) -> InteractionData:
        folder = self.folder(
            "dataset.path is null, and lettingo ships no copy of Amazon Reviews: download one category's "
            f"reviews and metadata from {DOWNLOAD['2018']} (2018) or {DOWNLOAD['2023']} (2023) into one "
            "folder, then set dataset.path to that folder and dataset.category to the category"
        )
        category = str(self.cfg.category or "").strip()
        if not category:
            raise DatasetError("dataset.category is empty; set it to a category's file stem, e.g. Books")
        version = str(self.cfg.version).strip()
        if version not in ("auto", *RELEASES):
            raise DatasetError(f"dataset.version must be auto, 2018 or 2023, got {version!r}")
        max_chars = self.cfg.max_description_chars
        release, reviews, meta = find_files(folder, category, version)

        def build(builder: DatasetBuilder) -> dict:
            return load_amazon(release, reviews, meta, builder, max_chars) | {"category": category}

        settings = {"release": release, "category": category, "max_description_chars": max_chars}
        return cached_dataset("amazon", [meta, reviews], settings, self.cfg, build)


def find_files(folder: Path, category: str, version: str) -> tuple[str, Path, Path]:
    """(release, reviews file, metadata file) for ``category`` in ``folder``."""
    releases = RELEASES if version == "auto" else (version,)
    expected = "; ".join(
        f"{release}: {' or '.join(review_names(release, category))} + {meta_names(release, category)[0]}"
        for release in releases
    )
    if not folder.is_dir():
        raise DatasetError(
            f"dataset.path {str(folder)!r} is not a folder; point it at the folder holding the Amazon Reviews "
            f"files of category {category!r} ({expected})"
        )
    found = {}
    for release in releases:
        reviews = _first_file(folder, review_names(release, category))
        if reviews is not None:
            found[release] = reviews
    if not found:
        present = _categories_in(folder)
        download = f"download them from {DOWNLOAD['2018']} or {DOWNLOAD['2023']}"
        if category in present:
            hint = f"; the metadata is there but not the reviews: {download}"
        elif present:
            hint = f"; this folder has metadata for {', '.join(present)}: set dataset.category to one of them"
        else:
            hint = f"; {download}"
        raise DatasetError(
            f"{folder} holds no Amazon Reviews files for category {category!r} (dataset.version={version}): "
            f"expected {expected}{hint}"
        )
    if len(found) > 1:
        names = " and ".join(f"{found[r].name} ({r})" for r in found)
        raise DatasetError(f"{folder} holds both {names}; set dataset.version to 2018 or 2023 to choose one")
    release, reviews = found.popitem()
    meta = _first_file(folder, meta_names(release, category))
    if meta is None:
        raise DatasetError(
            f"{folder / meta_names(release, category)[0]} does not exist: {reviews.name} (Amazon {release} "
            f"reviews) needs its item metadata file; download it from {DOWNLOAD[release]} into {folder}"
        )
    return release, reviews, meta


def _first_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _categories_in(folder: Path) -> list[str]:
    stems = set()
    for path in folder.glob("meta_*.json*"):
        stem = path.name[len("meta_"):].split(".json")[0]
        stems.add(stem)
    return sorted(stems)


def load_amazon(release: str, reviews: Path, meta: Path, builder: DatasetBuilder, max_chars: int) -> dict:
    """Metadata first (so that reviews of undescribed items are counted), then reviews, streamed."""
    records = builder.records
    item_key = "asin" if release == "2018" else "parent_asin"
    builder.source("items", meta)
    for line_no, record in json_records(meta, records, (item_key,), f"Amazon {release} item metadata", HINT):
        title, attributes = item_2018(record, max_chars) if release == "2018" else item_2023(record, max_chars)
        builder.add_item(meta, line_no, record.get(item_key), title, attributes)

    builder.source("ratings", reviews)
    if release == "2018":
        required = ("reviewerID", "asin", "overall")
        for line_no, record in json_records(reviews, records, required, "Amazon 2018 reviews", HINT):
            builder.add_interaction(
                reviews, line_no, record.get("reviewerID"), record.get("asin"), record.get("overall"),
                record.get("unixReviewTime"), review_text(record.get("summary"), record.get("reviewText")),
            )
        timestamps = "unixReviewTime: whole days, in seconds"
    else:
        required = ("user_id", "parent_asin", "rating")
        for line_no, record in json_records(reviews, records, required, "Amazon 2023 reviews", HINT):
            builder.add_interaction(
                reviews, line_no, record.get("user_id"), record.get("parent_asin"), record.get("rating"),
                milliseconds_to_seconds(record.get("timestamp")),
                review_text(record.get("title"), record.get("text")),
            )
        timestamps = "timestamp: milliseconds, floored to seconds"
    return {"layout": f"Amazon Reviews {release}", "release": release, "timestamps": timestamps}


def item_2018(meta: dict[str, Any], max_chars: int) -> tuple[str, dict[str, Any]]:
    brand = _AUTHOR_PAGE.sub(r"\1", clean(meta.get("brand"), MAX_TITLE_CHARS))
    return clean(meta.get("title"), MAX_TITLE_CHARS), _attributes(
        categories=meta.get("category"), brand=("brand", brand), features=meta.get("feature"),
        description=meta.get("description"), max_chars=max_chars,
    )


def item_2023(meta: dict[str, Any], max_chars: int) -> tuple[str, dict[str, Any]]:
    return clean(meta.get("title"), MAX_TITLE_CHARS), _attributes(
        categories=meta.get("categories"), brand=("store", meta.get("store")), features=meta.get("features"),
        description=meta.get("description"), max_chars=max_chars,
    )


def _attributes(categories, brand: tuple[str, Any], features, description, max_chars: int) -> dict[str, Any]:
    """Short, prompt-friendly attributes in the order they are shown; empty ones are left out."""
    attributes = {
        "categories": specific_categories(categories),
        brand[0]: clean(brand[1], MAX_NAME_CHARS),
        "features": [f for f in (clean(v, MAX_FEATURE_CHARS) for v in _strings(features)) if f][:MAX_FEATURES],
        "description": clean(" ".join(_strings(description)), max_chars),
    }
    return {key: value for key, value in attributes.items() if value}


def specific_categories(value) -> list[str]:
    """The last ``MAX_CATEGORIES`` of a category path, without its first element (the department)
    when more specific ones follow."""
    names: list[str] = []
    for raw in _strings(value):
        name = clean(raw, MAX_NAME_CHARS)
        if name and name not in names:
            names.append(name)
    if len(names) > 1:
        names = names[1:]
    return names[-MAX_CATEGORIES:]


def _strings(value) -> list[str]:
    """A list of strings from a field that should be one (a lone string counts as a list of one)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and not isinstance(v, (dict, list))]
    return [str(value)]


_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^<>]*>")
_SPACE = re.compile(r"\s+")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_AUTHOR_PAGE = re.compile(r"^Visit Amazon's (.+?) Page$")  # how the 2018 Books metadata names many authors


def clean(value, limit: int) -> str:
    """Text without HTML tags, entities and runs of whitespace, cut to ``limit`` characters."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    text = _TAG.sub(" ", _SCRIPT.sub(" ", str(value)))
    return truncate(_SPACE.sub(" ", html.unescape(text)).strip(), limit)


def truncate(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ""
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


def review_text(head, body) -> str | None:
    """``"<summary or title>. <review>"`` (no extra period when the summary ends a sentence); None if
    both are empty. Review bodies keep their wording; only ``<br />`` becomes a line break."""
    head = "" if head is None else _SPACE.sub(" ", str(head)).strip()
    body = "" if body is None else _BREAK.sub("\n", str(body)).strip()
    if head and body:
        return f"{head}{' ' if head[-1] in '.!?…' else '. '}{body}"
    return head or body or None


def milliseconds_to_seconds(value):
    """Amazon 2023 timestamps are Unix milliseconds: floored to seconds. Anything else is returned
    as is, for the builder to report as a bad timestamp."""
    if isinstance(value, bool):
        return str(value)  # not a time: int(True) would pass the builder's check
    if isinstance(value, int):
        return value // 1000
    if isinstance(value, float) and math.isfinite(value):
        return math.floor(value / 1000)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value) // 1000
    return value
