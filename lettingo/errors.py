"""User-facing errors: the command line prints their message alone, without a traceback.

Each message names what is wrong (a file, a line, a record, a config key) and what to do.
"""


class LettingoError(Exception):
    """Base of every error caused by input or configuration rather than by a bug."""


class ConfigChangedError(LettingoError):
    """A stage's inputs differ from those its existing outputs in the run directory were made with."""


class RunLockedError(LettingoError):
    """Another process is working in the same run directory."""


class NoPairsError(LettingoError):
    """The pair selector found nothing to train on."""


class ComponentConfigError(LettingoError, ValueError):
    """A component's config node is wrong (an unknown key, an impossible value, a missing
    environment variable it names); raised by components, built-in or plugin, before any work."""


class DiskFullError(LettingoError, OSError):
    """The disk filled up while a stage wrote; what was written before stays, and a rerun resumes."""


class DatasetError(LettingoError, ValueError):
    """Input data that cannot be used; the message names the file, the line when known, and the fix.
    (Importable from ``lettingo.data`` too, where loaders find it.)"""


class PlanError(LettingoError, ValueError):
    """The run cannot finish as configured; found before the first LLM request, so nothing was paid."""
