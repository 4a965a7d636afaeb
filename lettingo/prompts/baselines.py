"""The paper's baseline profile prompts: fixed-format styles from earlier work, and the raw history.

* ``palr`` (PALR, Chen et al. 2023): keywords ordered by importance, each with its supporting items.
* ``rlmrec`` (RLMRec, Ren et al. 2024): JSON ``{"summarization": <= 100 words, "reasoning": ...}``.
* ``kar`` (KAR, Xi et al. 2023): factorization: list the preference factors, then the user's
  preference on each factor, explained with evidence from the history.
* ``raw_history``: no LLM: the profile is the profile window itself, pasted as text (does a written
  profile beat its own input?). ``needs_llm`` is False and ``profile_text(task, data)`` is the profile.

All of them show the history exactly as the LettinGo prompt does (profile window only, oldest first,
each item with like / neutral / dislike; same ``max_items``, ``review_chars`` and ``system``
options), so the comparison is between instructions, not between renderings. Instructions say
"items", never a domain word, so they serve movies, books and businesses alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lettingo.prompts.lettingo import HistorySettings, LettinGoPrompt, PromptSettings
from lettingo.run_data import RunData
from lettingo.types import UserTask

HEADER = (
    "Below are items a user interacted with, oldest first. After each item is how the user felt "
    "about it (like, neutral or dislike)."
)

@dataclass
class PalrSettings(PromptSettings):
    """Baseline: PALR (Chen et al. 2023): preference keywords ordered by importance, each with its supporting items."""

    name: str = "palr"


@dataclass
class RlmRecSettings(PromptSettings):
    """Baseline: RLMRec (Ren et al. 2024): JSON {"summarization": <= 100 words, "reasoning": ...}."""

    name: str = "rlmrec"


@dataclass
class KarSettings(PromptSettings):
    """Baseline: KAR (Xi et al. 2023): list the preference factors, then the user's preference on each, explained."""

    name: str = "kar"


@dataclass
class RawHistorySettings(HistorySettings):
    """Baseline without an LLM: the profile is the profile window itself, rendered as the LettinGo
    prompt renders it (does a written profile beat its own input?). No system message: no model reads it."""

    name: str = "raw_history"


class HistoryPrompt(LettinGoPrompt):
    """A LettinGo-style prompt whose text after the history is the class's ``INSTRUCTION``."""

    INSTRUCTION = ""
    needs_llm = True

    def __init__(self, name: str | None = None, **options: Any):
        super().__init__(name=name or self.Settings.name, **options)

    def messages(self, task: UserTask, data: RunData) -> list[dict[str, str]]:
        text = f"{HEADER}\n\n{self.history(task, data)}\n\n{self.INSTRUCTION}"
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": text})
        return messages


class PalrPrompt(HistoryPrompt):
    """PALR (Chen et al. 2023): preference keywords ordered by importance, with supporting items."""

    Settings = PalrSettings
    INSTRUCTION = (
        "Your task is to use keywords to summarize the user's preferences based on these "
        "interactions. The output is an itemized list ordered by importance, most important "
        "keyword first. After each keyword, list the items from the history above that support it. "
        "Use exactly this format, one keyword per line:\n"
        "1. KEYWORD: ITEM A, ITEM B\n"
        "2. KEYWORD: ITEM C\n"
        "Do not write anything else."
    )


class RlmRecPrompt(HistoryPrompt):
    """RLMRec (Ren et al. 2024): a JSON summarization (at most 100 words) with its reasoning."""

    Settings = RlmRecSettings
    INSTRUCTION = (
        "Your task is to determine what kinds of items this user is likely to enjoy and what kinds "
        "they are likely to dislike.\n\n"
        "Requirements:\n"
        "1. Give your answer in JSON format, following this structure:\n"
        '{"summarization": "A summarization of what kinds of items this user likes and dislikes", '
        '"reasoning": "Briefly explain your reasoning for the summarization"}\n'
        'If you are unable to summarize, set "summarization" to "None".\n'
        '2. The "summarization" must be no longer than 100 words.\n'
        '3. The "reasoning" has no word limit.\n'
        "4. Output only the JSON object: no other text outside it."
    )


class KarPrompt(HistoryPrompt):
    """KAR (Xi et al. 2023): factorization prompting: the factors, then the preference on each."""

    Settings = KarSettings
    INSTRUCTION = (
        "Analyze the user's preferences and explain them, in two steps.\n"
        "Step 1: List the factors that matter when someone chooses items of this kind (for "
        "example genre, creators, theme, style, tone, time period, quality, price or location, "
        "whichever apply to these items).\n"
        "Step 2: For each factor in turn, analyze the user's preference on that factor and explain "
        "it with clear evidence from the items above and how the user felt about them.\n"
        "Use this format:\n"
        "Factors: FACTOR 1, FACTOR 2, ...\n"
        "FACTOR 1: the user's preference, explained with evidence from the history\n"
        "FACTOR 2: ..."
    )


class RawHistoryPrompt(HistoryPrompt):
    """No LLM: the profile is the rendered profile window under a one-line header.

    ``profile_text(task, data)`` is the profile; ``messages`` shows the same text as one user
    message so that tooling which prints prompts still works. ``system`` is not shown: no model
    reads these messages.
    """

    Settings = RawHistorySettings
    HEADER = "The user's earlier items, oldest first, with how they felt:"
    needs_llm = False

    def profile_text(self, task: UserTask, data: RunData) -> str:
        return f"{self.HEADER}\n{self.history(task, data)}"

    def messages(self, task: UserTask, data: RunData) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.profile_text(task, data)}]
