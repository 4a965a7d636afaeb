"""The LettinGo profile prompt: one open-ended instruction, no fixed output format.

The paper's point is that a fixed template (keywords, JSON fields) limits what a profile can say;
the generator is asked to describe the user freely, and DPO later teaches it which descriptions
help the recommender. The profile is written from the profile window only: the recent window and
the target are the evaluation, and showing them here would leak the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from lettingo.prompts.history import format_interactions
from lettingo.run_data import RunData
from lettingo.types import UserTask

INSTRUCTION = (
    "Below are items a user interacted with, oldest first. After each item is how the user felt "
    "about it (like, neutral or dislike).\n\n"
    "{history}\n\n"
    "Write a profile of this user. Describe their preferences in your own words: what they enjoy, "
    "what they avoid, and anything else that would help predict how they will feel about items "
    "they have not seen yet. There is no required format."
)


@dataclass
class HistorySettings:
    """How a prompt shows the profile window (every built-in prompt shows it the same way)."""

    name: str = "lettingo"
    max_items: Optional[int] = None  # cap on profile-window items shown (the most recent are kept); null: all
    review_chars: int = 0            # > 0: show the first N characters of the user's review after each item
                                     # (datasets with reviews); the target's review is never in a task


@dataclass
class PromptSettings(HistorySettings):
    """The paper's open-ended profile prompt, written from the profile window only."""

    system: Optional[str] = None  # optional system message


class LettinGoPrompt:
    """``messages(task, data)``: an optional system message and one open-ended user message."""

    Settings: type[HistorySettings] = PromptSettings

    def __init__(
        self,
        name: str = PromptSettings.name,
        system: str | None = None,
        max_items: int | None = None,
        review_chars: int = PromptSettings.review_chars,
    ):
        if max_items is not None and max_items < 1:
            raise ValueError(f"prompt {name!r}: max_items must be a positive number or null, got {max_items}")
        self.name = name
        self.system = system
        self.max_items = max_items
        self.review_chars = int(review_chars or 0)

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> "LettinGoPrompt":
        return cls(name=cfg.name, system=cfg.get("system"), max_items=cfg.max_items, review_chars=cfg.review_chars)

    def history(self, task: UserTask, data: RunData) -> str:
        """The profile window as numbered lines, oldest first; every profile prompt shows it this way."""
        window = sorted(task.profile_window, key=lambda i: i.timestamp)  # stable: ties keep their order
        if self.max_items is not None:
            window = window[-self.max_items :]
        return format_interactions(
            window, data, where=f"profile window of task {task.task_id}",
            review_chars=self.review_chars,
        )

    def messages(self, task: UserTask, data: RunData) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": INSTRUCTION.format(history=self.history(task, data))})
        return messages
