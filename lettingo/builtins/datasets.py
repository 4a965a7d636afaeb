"""Built-in dataset loaders, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

from lettingo.hookspecs import hookimpl


@hookimpl
def lettingo_register_datasets(register):
    from lettingo.data.movielens import MovieLens

    register("movielens", MovieLens)
