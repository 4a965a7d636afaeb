"""Reading free-text LLM answers: a label (``parse_label``) or a rating (``parse_rating``).

Judges that cannot read label log-probabilities (chat APIs without them) ask for a short answer and
parse it. Both parsers are conservative: an answer that does not clearly name one label (or one
rating on the scale) is ``None``, which the judge counts as invalid rather than guessing.

``parse_label`` rules, in order:

1. JSON in the text (``{"answer": "dislike"}``, also inside prose or code fences): a string value
   under ``answer`` / ``label`` / ``prediction`` / ``sentiment`` / ... that is a label decides.
2. Otherwise the text is lower-cased and split into words (markdown, quotes and case do not
   matter); a label counts only as a whole word (``dislike`` is never read as ``like``), also with a
   plural ``s`` (``likes``).
3. Lists of options (``like or dislike``, ``like, neutral, or dislike``, ``like/dislike``) are echoes
   of the question, not answers: their mentions are dropped.
4. Negations within the same clause, up to five words before (``would not like``, ``doesn't like``,
   ``I don't think they would like``): for the label set like / neutral / dislike a negated ``like``
   reads as ``dislike``; any other negated mention is dropped.
5. A mention in a clear answer position wins: right after ``answer:`` / ``answer is`` / ``label:``
   / ``prediction:`` / ``sentiment:`` / ``verdict:``, else as the text's first word.
6. Otherwise exactly one distinct label must remain; none or several is ``None``.

``parse_rating(text, low, high)`` rules:

1. JSON with a number (or numeric string) under ``rating`` / ``score`` / ``stars`` / ``answer`` /
   ``prediction`` decides.
2. ``N/D`` and ``N out of D`` read as ``N`` when ``D`` is the scale's top, and are invalid otherwise
   (``8/10`` on a 1-5 scale is not rescaled); a range that is the scale itself (``1-5``, ``1 to 5``)
   is an echo of the question and dropped; any other range (``3-4``) is no single answer: ``None``.
3. A number right after ``rating`` / ``answer`` / ``score`` / ``stars`` / ``prediction`` (with
   ``:``, ``=``, ``is``, ``of``, ``would be``), or the text's first word, is the answer; otherwise
   exactly one distinct number must appear.
4. Number words (``four``) count only when the text has no digits at all.
5. The answer must lie within ``[low, high]``; a number outside the scale is ``None`` (never clamped).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Sequence

LABEL_KEYS = ("answer", "label", "prediction", "sentiment", "verdict", "output", "response", "result")
RATING_KEYS = ("rating", "score", "stars", "answer", "prediction", "output", "response", "result")
ANSWER_MARKERS = ("answer", "label", "prediction", "sentiment", "verdict")
NEGATORS = {"not", "never", "cannot", "unlikely", "dont", "doesnt", "didnt", "wont", "wouldnt", "isnt", "wasnt",
            "arent", "cant", "couldnt", "shouldnt", "havent", "hasnt"}  # apostrophes are dropped: doesn't -> doesnt
CLAUSE_BREAKS = {".", ",", ";", ":", "!", "?", "but", "though", "although", "however", "yet"}
LIST_JOINERS = {",", "/", "or", "and", "nor", "either"}
NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10}

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.,;:!?/]")
_NUMBER = r"\d+(?:\.\d+)?"


def _tokens(text: str) -> list[str]:
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    tokens = []
    for token in _TOKEN.findall(text):
        if "'" in token:  # doesn't -> doesnt, user's -> users: one word either way
            token = token.replace("'", "")
        tokens.append(token)
    return tokens


def _is_negator(token: str) -> bool:
    return token in NEGATORS


def _json_objects(text: str) -> list[dict[str, Any]]:
    found = []
    for match in re.finditer(r"\{[^{}]*\}", text):
        try:
            value = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append({str(k).lower(): v for k, v in value.items()})
    return found


def _single(values: Sequence[Any]) -> Any:
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else None


# -- labels -------------------------------------------------------------------------------------------


def parse_label(text: str | None, labels: Sequence[str]) -> str | None:
    """The one label a free-text answer gives, or ``None`` when it gives none or several (module doc)."""
    if not text or not text.strip() or not labels:
        return None
    from_json = [value for obj in _json_objects(text) for key in LABEL_KEYS
                 if isinstance(value := obj.get(key), str) and value.strip()]
    if from_json:
        answers = [_parse_label_text(value, labels) for value in from_json]
        answer = _single(answers)
        if answer is not None:
            return answer
    return _parse_label_text(text, labels)


def _parse_label_text(text: str, labels: Sequence[str]) -> str | None:
    tokens = _tokens(text)
    label_words = {label: [t for t in _tokens(label) if t not in ".,;:!?/"] for label in labels}
    sentiment_set = {label.lower() for label in labels} == {"like", "neutral", "dislike"}
    by_lower = {label.lower(): label for label in labels}

    # mentions: (start, end, label), longest label first at each position
    mentions: list[list[Any]] = []
    i = 0
    ordered = sorted(labels, key=lambda lb: -len(label_words[lb]))
    while i < len(tokens):
        for label in ordered:
            words = label_words[label]
            if not words:
                continue
            window = tokens[i : i + len(words)]
            if window[:-1] == words[:-1] and len(window) == len(words) and window[-1] in (words[-1], words[-1] + "s"):
                mentions.append([i, i + len(words), label])
                i += len(words) - 1
                break
        i += 1

    # option lists: consecutive mentions joined only by , / or and nor either, naming 2+ labels
    dropped: set[int] = set()
    run = [0] if mentions else []
    for m in range(1, len(mentions) + 1):
        joined = m < len(mentions) and all(
            t in LIST_JOINERS for t in tokens[mentions[m - 1][1] : mentions[m][0]]
        ) and mentions[m][0] - mentions[m - 1][1] <= 3
        if joined:
            run.append(m)
            continue
        if len({mentions[k][2] for k in run}) >= 2:
            dropped.update(run)
        run = [m]
    kept = [mention for k, mention in enumerate(mentions) if k not in dropped]

    # negations in the same clause, up to four words before the mention
    resolved: list[tuple[int, str]] = []  # (start including the negator, label)
    for start, _end, label in kept:
        negator_at = None
        for j in range(start - 1, max(-1, start - 6), -1):
            if tokens[j] in CLAUSE_BREAKS:
                break
            if _is_negator(tokens[j]):
                negator_at = j
                break
        if negator_at is None:
            resolved.append((start, label))
        elif sentiment_set and label.lower() == "like":
            resolved.append((negator_at, by_lower["dislike"]))
        # any other negated mention says nothing clear: dropped

    if not resolved:
        return None
    # an explicit answer marker: "answer: x", "the answer is x", "label = x"
    for k, token in enumerate(tokens):
        if token not in ANSWER_MARKERS:
            continue
        after = k + 1
        if after < len(tokens) and tokens[after] == "is":
            after += 1
        if after < len(tokens) and tokens[after] in (":", "="):
            after += 1
        if after == k + 1:
            continue  # "answer" with neither "is" nor ":": not a marker
        for start, label in resolved:
            if after <= start <= after + 1:  # allow one word, e.g. "answer: probably like"
                return label
    if resolved[0][0] == 0:  # the first word
        return resolved[0][1]
    return _single([label for _, label in resolved])


# -- ratings ------------------------------------------------------------------------------------------


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _in_scale(value: float | None, low: float, high: float) -> float | None:
    if value is None or not math.isfinite(value) or not low <= value <= high:
        return None
    return float(value)


def parse_rating(text: str | None, low: float, high: float) -> float | None:
    """The one rating in ``[low, high]`` a free-text answer gives, or ``None`` (module doc)."""
    if not text or not text.strip():
        return None
    low, high = float(low), float(high)
    for obj in _json_objects(text):
        for key in RATING_KEYS:
            if key in obj:
                value = obj[key]
                if isinstance(value, str):
                    inner = parse_rating(value, low, high)
                    if inner is not None:
                        return inner
                    continue
                number = _to_float(value)
                if number is not None:
                    return _in_scale(number, low, high)

    lowered = text.lower().replace("\u2013", "-").replace("\u2014", "-")
    lowered = re.sub(r"[*_`#\"]", " ", lowered)
    if not re.search(r"\d", lowered):  # number words only when there are no digits at all
        lowered = re.sub(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", lambda m: str(NUMBER_WORDS[m.group(1)]), lowered)

    # "N/D", "N out of D", "N stars out of D": D must be the scale's top
    def fraction(match: re.Match) -> str:
        if not math.isclose(float(match.group(2)), high):
            return " <bad> "
        return f" {match.group(1)} "

    lowered = re.sub(rf"(?<![\w.])({_NUMBER})\s*(?:stars?\s*)?\(?\s*(?:/|out of)\s*({_NUMBER})\)?", fraction, lowered)
    lowered = re.sub(rf"(?:/|out of)\s*({_NUMBER})",
                     lambda m: " " if math.isclose(float(m.group(1)), high) else " <bad> ", lowered)
    if "<bad>" in lowered:
        return None

    # ranges: the scale itself is an echo of the question; another range ("3-4") is no one answer
    def scale_range(match: re.Match) -> str:
        a, b = float(match.group(1)), float(match.group(2))
        return " " if math.isclose(a, low) and math.isclose(b, high) else " <bad> "

    lowered = re.sub(rf"(?<![\w.])({_NUMBER})\s*(?:-|to)\s*({_NUMBER})(?!\w|\.\d)", scale_range, lowered)
    if "<bad>" in lowered:
        return None

    numbers = [float(m.group(0)) for m in re.finditer(rf"(?<![\w.-]){_NUMBER}(?!\w|\.\d)", lowered)]
    if not numbers:
        return None
    marker = re.search(
        rf"\b(?:rating|answer|score|stars?|prediction)\b\s*(?:would be|is|of|[:=])\s*:?\s*(?:a\s+)?({_NUMBER})", lowered
    )
    if marker:
        return _in_scale(float(marker.group(1)), low, high)
    first = re.match(rf"\s*[^\w\s-]*\s*({_NUMBER})(?!\w|\.\d)", lowered)
    if first:
        return _in_scale(float(first.group(1)), low, high)
    return _in_scale(_single(numbers), low, high)
