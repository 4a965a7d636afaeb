"""Every lettingo hook, in one place.

Registration hooks receive a ``register(name, factory)`` callback. A factory is called as
``factory(cfg, ctx)`` with the component's config node (a DictConfig) and the run's
:class:`lettingo.components.Context`, and returns the component. The component's ``Settings``
dataclass (on its class, or on a lazy factory) is its config-group option ``<group>/<name>``, named
by the registered ``name``, and the node is checked against it first (:mod:`lettingo.settings`).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("lettingo")
hookimpl = pluggy.HookimplMarker("lettingo")


@hookspec
def lettingo_register_datasets(register):
    """Register dataset loaders: ``factory(cfg, ctx)`` returns an object with ``load()``."""


@hookspec
def lettingo_register_llms(register):
    """Register LLM backends: ``factory(cfg, ctx)`` returns a :class:`lettingo.llm.LLM`."""


@hookspec
def lettingo_register_prompts(register):
    """Register profile prompts: ``factory(cfg, ctx)`` returns an object with ``messages(task, data)``
    (``data``: the run's ``lettingo.run_data.RunData``)."""


@hookspec
def lettingo_register_recommenders(register):
    """Register recommenders: ``factory(cfg, ctx)`` returns an object with
    ``judge(tasks, profiles, data)``."""


@hookspec
def lettingo_register_pair_selectors(register):
    """Register pair selectors: ``factory(cfg, ctx)`` returns an object with ``select(tasks, profiles, judgements)``."""


@hookspec
def lettingo_register_aligners(register):
    """Register aligners: ``factory(cfg, ctx)`` returns an object with
    ``train(pairs, base_model, output_dir, init_adapter=None) -> AlignedModel`` (``init_adapter``: the
    previous round's adapter to continue, in iterative alignment; ``align.rounds``)."""


@hookspec
def lettingo_config_searchpath():
    """Return Hydra search-path entries (``pkg://your_package/conf``) holding config files: experiments,
    or YAML options of components without a ``Settings`` dataclass."""


@hookspec(firstresult=True)
def lettingo_llm_price(llm_cfg):
    """USD per (prompt token, completion token) of the model this ``llm`` config node names, or
    ``None`` when this plugin does not price it. Used by ``dry_run=true`` estimates; local models
    are free and need no implementation."""


@hookspec(firstresult=True)
def lettingo_token_counter(llm_cfg):
    """A function ``messages -> prompt tokens`` for the model this ``llm`` config node names (its own
    tokenizer and chat template), or ``None`` when this plugin does not serve it. Used by
    ``dry_run=true`` estimates (4 characters a token without one); it must load no model weights."""


@hookspec
def lettingo_stage_started(stage, run_dir):
    """Called when a pipeline stage starts in ``run_dir`` (a ``pathlib.Path``)."""


@hookspec
def lettingo_stage_finished(stage, run_dir, summary):
    """Called when a pipeline stage finishes, with a small dict summarising what it did."""


@hookspec
def lettingo_run_finished(run_dir, metrics):
    """Called once a run has written ``results.json``, with its metrics dict."""
