"""The Python API for notebooks and scripts: compose a config, run it, or run one stage.

    from lettingo import api
    cfg = api.compose(["experiment=quickstart", "protocol.train_users=10"])
    results = api.run(cfg, "outputs/notebook-run")
    api.run(cfg, "outputs/notebook-run", stages=["report"])   # redo one stage

A notebook or test that wants its own plugins without touching the process's builds a registry:
``r = plugins.make_registry(only=[]); r.register_plugin(MyPlugin(), "mine")``, then passes
``registry=r`` to ``compose`` and ``run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lettingo import plugins
from lettingo.plugins import PluginRegistry

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def compose(overrides: list[str] | None = None, config_name: str = "config",
            registry: PluginRegistry | None = None) -> DictConfig:
    """The resolved config for these overrides, as ``lettingo run`` would see it; the config-group
    options are those of ``registry``'s components (default: the process's registry)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with plugins.composing_with(registry or plugins.default_registry()), \
            initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))


def run(cfg: DictConfig, run_dir: str | Path, stages: list[str] | None = None,
        registry: PluginRegistry | None = None) -> dict[str, Any]:
    """Run (or resume) the pipeline in ``run_dir`` with ``registry``'s components (default: the
    process's); returns results.json's content."""
    from lettingo.pipeline import run_pipeline

    return run_pipeline(cfg, run_dir, stages, registry)


def load_config(run_dir: str | Path) -> DictConfig:
    """The config a run directory was made with (from its manifest)."""
    import json

    manifest = json.loads((Path(run_dir) / "manifest.json").read_text())
    return OmegaConf.create(manifest["config"])
