"""Hydra search-path plugin: adds each lettingo plugin's config directory to the search path.

Hydra discovers this module in the ``hydra_plugins`` namespace package and calls it at every
compose, so options shipped by installed plugins (``pkg://lettingo_trl/conf``) appear in the groups
for the command line and for ``compose`` in notebooks and tests alike.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class LettingoSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from lettingo import plugins

        for entry in plugins.config_searchpath():
            search_path.append(provider="lettingo-plugin", path=entry)
