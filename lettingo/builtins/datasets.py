"""Built-in dataset loaders, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

from lettingo.hookspecs import hookimpl


@hookimpl
def lettingo_register_datasets(register):
    from lettingo.data.amazon import Amazon
    from lettingo.data.jsonl import JsonLines
    from lettingo.data.movielens import MovieLens
    from lettingo.data.yelp import Yelp

    register("movielens", MovieLens)
    register("amazon", Amazon)
    register("yelp", Yelp)
    register("jsonl", JsonLines)
