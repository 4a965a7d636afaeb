"""Built-in profile prompts."""

from lettingo.hookspecs import hookimpl
from lettingo.prompts.lettingo import LettinGoPrompt


@hookimpl
def lettingo_register_prompts(register):
    register("lettingo", LettinGoPrompt.from_config)
