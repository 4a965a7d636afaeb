"""Built-in aligners: ``none`` (the training ones come from the lettingo-trl plugin)."""

from lettingo.aligners.none import NoAlignment
from lettingo.hookspecs import hookimpl


@hookimpl
def lettingo_register_aligners(register):
    register("none", NoAlignment)
