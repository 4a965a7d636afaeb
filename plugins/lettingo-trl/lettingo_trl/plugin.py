"""The lettingo hooks of this distribution; TRL and torch load only when an aligner is built."""

from __future__ import annotations

from lettingo.hookspecs import hookimpl

from lettingo_trl import __version__  # noqa: F401  (shown by `lettingo plugins`)
from lettingo_trl.settings import SETTINGS

# name -> (module, class): imported on first use, so `lettingo plugins` stays fast
ALIGNERS = {
    "dpo": ("lettingo_trl.dpo", "DPOAligner"),
    "sft": ("lettingo_trl.sft", "SFTAligner"),
    "orpo": ("lettingo_trl.reference_free", "ORPOAligner"),
    "simpo": ("lettingo_trl.reference_free", "SimPOAligner"),
}


def aligner_class(name: str):
    import importlib

    module, cls = ALIGNERS[name]
    return getattr(importlib.import_module(module), cls)


def _factory(name: str):
    def build(cfg, ctx):
        return aligner_class(name)(cfg, ctx)

    build.implementation = ":".join(ALIGNERS[name])  # what `lettingo plugins --components` shows
    build.Settings = SETTINGS[name]  # the option's keys and defaults, without importing TRL
    return build


@hookimpl
def lettingo_register_aligners(register):
    for name in ALIGNERS:
        register(name, _factory(name))

