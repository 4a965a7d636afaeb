"""How methods and rows are named: shared by the report model, its renderers and ``lettingo compare``."""

from __future__ import annotations

import re

METHOD_NAMES = {"none": "10H (no profile)", "base": "base profiles", "aligned": "LettinGo (aligned)",
                "raw_history": "raw_history (the profile window as text)"}
METHOD_KEYS = {name: key for key, name in METHOD_NAMES.items()}  # "LettinGo (aligned)" -> "aligned"
ORACLE_MARK = "(oracle ceiling, not a method)"
BASELINE_MARK = "(baseline)"


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, f"{method} profiles (base model)")


def method_of(profile_id: str, main_style: str) -> str:
    """none | base | aligned, or the baseline prompt's name for ``test.baseline_prompts`` profiles.

    Only for judgements of run directories written before judgements recorded their ``method``."""
    parts = profile_id.split("/")
    return "none" if parts[-1] == "none" else profile_method(parts[-3], parts[-2], main_style)


def profile_method(generator: str, prompt_style: str, main_style: str) -> str:
    """The method of a profile: its generator with the run's prompt, else its (baseline) prompt's name."""
    return generator if prompt_style == main_style else prompt_style


def oracle_name(method: str, n: int) -> str:
    return f"{method_name(method)}: best of {n} {ORACLE_MARK}"


def is_oracle(row_name: str) -> bool:
    return row_name.endswith(ORACLE_MARK)


def baseline_name(name: str) -> str:
    return f"{name} {BASELINE_MARK}"


def is_baseline(row_name: str) -> bool:
    return row_name.endswith(BASELINE_MARK)


def natural_key(key: str) -> list:
    """Sort key that puts "user-2" before "user-10"."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", key) if part]
