"""Built-in profile prompts."""

from lettingo.hookspecs import hookimpl
from lettingo.prompts.baselines import KarPrompt, PalrPrompt, RawHistoryPrompt, RlmRecPrompt
from lettingo.prompts.lettingo import LettinGoPrompt


@hookimpl
def lettingo_register_prompts(register):
    register("lettingo", LettinGoPrompt.from_config)
    # the paper's baselines (lettingo/prompts/baselines.py)
    register("palr", PalrPrompt.from_config)
    register("rlmrec", RlmRecPrompt.from_config)
    register("kar", KarPrompt.from_config)
    register("raw_history", RawHistoryPrompt.from_config)
