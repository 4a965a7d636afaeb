"""The lettingo hooks of this distribution; TRL and torch load only when an aligner is built."""

from __future__ import annotations

from lettingo.hookspecs import hookimpl

from lettingo_trl import __version__  # noqa: F401  (shown by `lettingo plugins`)


def _dpo_factory(cfg, ctx):
    from lettingo_trl.dpo import DPOAligner

    return DPOAligner(cfg, ctx)


@hookimpl
def lettingo_register_aligners(register):
    register("dpo", _dpo_factory)


@hookimpl
def lettingo_config_searchpath():
    return ["pkg://lettingo_trl/conf"]
