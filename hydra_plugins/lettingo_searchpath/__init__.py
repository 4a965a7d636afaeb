"""Hydra search-path plugin: every registered component's settings dataclass becomes its config-group
option (``recommender/embedding_ranker``), and each plugin's config directory joins the search path.

Hydra discovers this module in the ``hydra_plugins`` namespace package and calls it at every
compose, so components registered by installed plugins appear in the groups for the command line
and for ``compose`` in notebooks and tests alike.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class LettingoSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from lettingo import plugins, settings

        registry = plugins.active_registry()
        settings.store_all(registry.components, plugins.KINDS)
        for entry in registry.config_searchpath():
            search_path.append(provider="lettingo-plugin", path=entry)
