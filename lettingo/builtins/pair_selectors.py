"""Built-in pair selectors."""

from lettingo.hookspecs import hookimpl
from lettingo.pair_selectors.best_vs_worst import BestVsWorst
from lettingo.pair_selectors.between_writers import BetweenWriters
from lettingo.pair_selectors.correct_vs_incorrect import CorrectVsIncorrect
from lettingo.pair_selectors.margin import MarginPairs


@hookimpl
def lettingo_register_pair_selectors(register):
    register("correct_vs_incorrect", CorrectVsIncorrect.from_config)
    register("best_vs_worst", BestVsWorst.from_config)
    register("margin", MarginPairs.from_config)
    register("between_writers", BetweenWriters.from_config)
