"""Building components from config, and the context every factory receives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lettingo import plugins, settings
from lettingo.cache import CachedLLM, CallCache, digest
from lettingo.ledger import Ledger


class Context:
    """The services a component may use: other components (from its plugin registry), the LLM pool,
    the call cache and the usage ledger. It holds no run data and no config: a component gets its
    own settings when it is built and the run's data (``lettingo.run_data.RunData``) in its calls.

    LLM engines are pooled by config, so every stage that names the same model shares one engine
    (loading a model is the slowest thing a stage does); ``release_llms`` frees them before training.
    """

    def __init__(self, run_dir: Path | None = None, cache: CallCache | None | str = "default",
                 registry: plugins.PluginRegistry | None = None):
        self.plugins = registry or plugins.default_registry()  # where components are looked up
        self.cache = CallCache() if cache == "default" else cache  # None: no caching
        self._llms: dict[str, Any] = {}
        # usage and cost of every LLM call, by stage and model (written in run_dir; None: kept in memory)
        self.ledger = Ledger(run_dir)

    def build(self, kind: str, cfg: DictConfig | dict) -> Any:
        cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        if "name" not in cfg:
            raise plugins.UnknownComponentError(f"the {kind} config has no 'name' key: {OmegaConf.to_yaml(cfg)}")
        made_by = self.plugins.factory(kind, cfg.name)
        return made_by(settings.validated(kind, cfg, settings.settings_of(made_by)), self)

    def llm(self, cfg: DictConfig | dict) -> CachedLLM:
        """A cached, pooled LLM for this config (an ``llm`` group node)."""
        cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        key = self.llm_key(cfg)
        if key not in self._llms:
            self._llms[key] = self.build("llm", cfg)
        return CachedLLM(self._llms[key], self.cache, self.ledger)

    @staticmethod
    def llm_key(cfg: DictConfig | dict) -> str:
        """Engines are pooled by their resolved config."""
        cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        return digest(OmegaConf.to_container(cfg, resolve=True))

    def release_llm(self, cfg: DictConfig | dict) -> None:
        """Close the pooled engine of this config, if there is one."""
        engine = self._llms.pop(self.llm_key(cfg), None)
        if engine is not None:
            engine.close()

    def release_llms(self) -> None:
        for engine in self._llms.values():
            engine.close()
        self._llms.clear()
        import gc

        gc.collect()
