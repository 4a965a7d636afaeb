"""Registers the ``implicit_rerank`` recommender and its settings (the `recommender` option) with lettingo.

``implicit``, scipy and sentence-transformers are imported only when the recommender is built or
judges, so listing plugins stays fast.
"""

from __future__ import annotations

from lettingo.hookspecs import hookimpl

from lettingo_implicit import __version__  # noqa: F401  (shown by `lettingo plugins`)
from lettingo_implicit.settings import ImplicitRerankSettings


def build_implicit_rerank(cfg, ctx):
    from lettingo_implicit.recommender import ImplicitReranker

    return ImplicitReranker.from_config(cfg, ctx)


build_implicit_rerank.Settings = ImplicitRerankSettings  # the option's keys and defaults
build_implicit_rerank.implementation = "lettingo_implicit.recommender:ImplicitReranker"  # what `lettingo plugins --components` shows


@hookimpl
def lettingo_register_recommenders(register):
    register("implicit_rerank", build_implicit_rerank)

