"""results.json as the report model and ``lettingo compare`` read it: rows, metrics, verdicts.

No import of the pipeline here: ``lettingo compare`` reads many jobs' results.json with this alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lettingo.metrics import LOWER_IS_BETTER
from lettingo.reporting.naming import METHOD_KEYS, is_baseline, is_oracle

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class ResultRow:
    """One row of results.json's ``methods``: a method, a best-of-N oracle row, or a baseline."""

    name: str
    values: dict[str, Any]

    @property
    def kind(self) -> str:
        return "oracle" if is_oracle(self.name) else "baseline" if is_baseline(self.name) else "method"

    @property
    def method(self) -> str | None:
        """none | base | aligned | raw_history for those methods' rows, else None."""
        return METHOD_KEYS.get(self.name)

    def metric(self, name: str) -> dict | None:
        value = self.values.get(name)
        return value if isinstance(value, dict) else None


def result_rows(results: dict) -> list[ResultRow]:
    return [ResultRow(name, row) for name, row in (results.get("methods") or {}).items()]


def metric_names(rows: list[ResultRow]) -> list[str]:
    """Every metric any row has (a baseline may lack one), in the order they first appear."""
    return list(dict.fromkeys(k for row in rows for k, v in row.values.items()
                              if isinstance(v, dict) and "value" in v))


def finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def best_values(rows: list[ResultRow]) -> dict[str, float]:
    """Each metric's best value over the rows that are methods or baselines (an oracle is a ceiling)."""
    best = {}
    for name in metric_names(rows):
        values = [finite(row.metric(name)["value"]) for row in rows if row.metric(name) and row.kind != "oracle"]
        values = [v for v in values if v is not None]
        if values:
            best[name] = min(values) if name in LOWER_IS_BETTER else max(values)
    return best


def better(test: dict) -> str:
    """A paired test's verdict: "A", "B" or "no evidence" (p < 0.05 in the metric's good direction)."""
    p, diff = finite(test.get("p_value")), finite(test.get("difference"))
    if p is None or diff is None or p >= SIGNIFICANCE or diff == 0:
        return "no evidence"
    sign = -1 if test.get("metric") in LOWER_IS_BETTER else 1
    return "A" if sign * diff > 0 else "B"


def p_text(p_value: Any, n_boot: int) -> str:
    """A p-value as shown; 0 from the bootstrap means below its resolution."""
    p = finite(p_value)
    return "—" if p is None else (f"< {1 / max(n_boot, 1):.3g}" if p == 0 else f"{p:.3g}")


def heldout_pair_accuracy(results: dict) -> dict | None:
    """The held-out pair accuracy (value and ci) of an alignment check, if there is one: of a run
    (results.json) or of one round (a rounds.json row); both hold it under ``pair_check``."""
    return ((results.get("pair_check") or {}).get("heldout") or {}).get("reward_accuracy")


def read_json(path: Path) -> tuple[Any, str]:
    """A JSON file's content, or None and why not ("" when the file does not exist)."""
    if not path.is_file():
        return None, ""
    try:
        return json.loads(path.read_text(encoding="utf-8")), ""
    except (OSError, json.JSONDecodeError) as exc:
        return None, f"{path.name} cannot be read ({exc})"
