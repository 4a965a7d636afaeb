"""Hydra callbacks of the ``lettingo run`` app (``hydra.callbacks`` in conf/config.yaml)."""

from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback

FAILED_JOB_MARK = ".lettingo-job-failed"  # in a failed sweep job's output directory: which job, which run


class SweepFailures(Callback):
    """After a sweep, in the process that launched it: the failed jobs' marks.

    Jobs may run in other processes (joblib) or on other machines (submitit), so a failed job leaves
    a mark in its output directory, and this collects the marks once every job is done, whichever
    launcher ran them; ``lettingo run -m`` then exits non-zero and lists them."""

    found: list[str] = []

    def on_multirun_start(self, config, **kwargs) -> None:
        for mark in _marks(config):  # an earlier sweep into the same directory: not this one's failures
            mark.unlink()

    def on_multirun_end(self, config, **kwargs) -> None:
        SweepFailures.found = [mark.read_text() for mark in _marks(config)]


def _marks(config) -> list[Path]:
    return sorted(Path(str(config.hydra.sweep.dir)).glob(f"*/{FAILED_JOB_MARK}"))
