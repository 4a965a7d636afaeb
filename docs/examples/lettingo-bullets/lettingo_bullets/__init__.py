"""An example third-party lettingo plugin: the profile as short bullet points.

It registers one prompt component, ``bullets``. Its ``Settings`` dataclass is its config option:
lettingo makes it the ``prompt/bullets`` option, so ``lettingo run prompt=bullets prompt.bullets=3``
works, a misspelt key is refused by name, and the defaults live here only.
"""

from dataclasses import dataclass

from lettingo.hookspecs import hookimpl
from lettingo.types import SENTIMENT_LABELS  # noqa: F401  (records every plugin can use)

__version__ = "0.1.0"


@dataclass
class BulletSettings:
    name: str = "bullets"
    bullets: int = 5  # at most this many bullet points


class BulletPrompt:
    Settings = BulletSettings

    def __init__(self, cfg, ctx):
        self.bullets = cfg.bullets  # checked and completed against BulletSettings before it gets here

    def messages(self, task, data):
        # Only the profile window: the recent window and the target are what the profile is judged on.
        # ``data`` is the run's RunData: its items, label rule and rating scale.
        lines = []
        for interaction in task.profile_window:
            item = data.items.get(interaction.item_id)
            title = item.describe() if item else interaction.item_id
            lines.append(f"- {title} (rated {interaction.rating:g}/{data.rating_scale[1]:g}, "
                         f"{data.label(interaction.rating)})")
        return [{"role": "user", "content":
                 "Here is what a user watched and how they rated it:\n" + "\n".join(lines) +
                 f"\n\nDescribe this user's taste in at most {self.bullets} short bullet points."}]


@hookimpl
def lettingo_register_prompts(register):
    register("bullets", BulletPrompt)
