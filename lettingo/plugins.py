"""The plugin manager: built-ins and third-party plugins, registered the same way.

Built-ins are the modules in ``DEFAULT_PLUGINS``. Third-party plugins come from the entry-point
group ``lettingo``; ``LETTINGO_LOAD_PLUGINS=a,b`` limits which of them load (empty: none, which is
what ``lettingo --no-plugins`` sets; the test suite's conftest sets it too, so a test that wants
plugins calls :func:`load_entrypoints` itself). Lookups call the registration hooks afresh, so a
plugin registered at any time is visible at once. The component kinds are read from the hook names
(``lettingo_register_<kind>s``), so a new kind is one new hookspec.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import re
import sys
from typing import Any, Callable

import pluggy

from lettingo import hookspecs
from lettingo.errors import LettingoError

REGISTER_PREFIX = "lettingo_register_"
# kind -> its registration hook, in hookspecs.py's order: lettingo_register_pair_selectors -> pair_selector
HOOK_FOR_KIND = {name[len(REGISTER_PREFIX):].removesuffix("s"): name
                 for name in vars(hookspecs) if name.startswith(REGISTER_PREFIX)}
KINDS = tuple(HOOK_FOR_KIND)

DEFAULT_PLUGINS = (
    "lettingo.builtins.datasets",
    "lettingo.builtins.prompts",
    "lettingo.builtins.recommenders",
    "lettingo.builtins.pair_selectors",
    "lettingo.builtins.aligners",
)


class UnknownComponentError(LettingoError, LookupError):
    pass


class PluginRegistry:
    """One plugin manager and what it has loaded: the built-ins always, entry-point plugins once.

    ``make_registry()`` builds one. The process has a default (``default_registry()``), which the
    module-level functions below, ``lettingo.api`` and ``Context`` use unless handed another: a
    notebook or a test can build an isolated registry, register its own plugins there, and leave the
    process's default untouched (``api.compose(..., registry=r)``, ``api.run(..., registry=r)``).
    ``only`` names the entry points or distributions to load (None: ``LETTINGO_LOAD_PLUGINS``, else all).
    """

    def __init__(self, only: list[str] | None = None):
        self.pm = pluggy.PluginManager("lettingo")
        self.pm.add_hookspecs(hookspecs)
        self.only = only
        self._entrypoints_loaded = False

    def _load_builtins(self) -> None:
        for module_name in DEFAULT_PLUGINS:
            if self.pm.get_plugin(module_name) is None:
                self.pm.register(importlib.import_module(module_name), name=module_name)

    def load_entrypoints(self, only: list[str] | None = None) -> None:
        """Load installed plugins from the ``lettingo`` entry-point group (each once).

        ``only`` (else the registry's, else ``LETTINGO_LOAD_PLUGINS``) names the distributions or entry
        points to load.
        """
        only = only if only is not None else self.only
        if only is None and "LETTINGO_LOAD_PLUGINS" in os.environ:
            only = [p.strip() for p in os.environ["LETTINGO_LOAD_PLUGINS"].split(",") if p.strip()]
        for ep in importlib.metadata.entry_points(group="lettingo"):
            dist = ep.dist.name if ep.dist else ep.name
            if only is not None and ep.name not in only and dist not in only:
                continue
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                module = ep.load()
            except Exception as exc:  # one broken plugin must not take down the rest
                print(f"lettingo: plugin {ep.name!r} ({dist}) failed to load: {type(exc).__name__}: {exc} "
                      "(skipped; LETTINGO_LOAD_PLUGINS or `lettingo --no-plugins` leaves plugins out)",
                      file=sys.stderr)
                continue
            self.pm.register(module, name=ep.name)
        self.pm.check_pending()  # an implementation whose name matches no hookspec fails loudly
        self._entrypoints_loaded = True

    def ensure_loaded(self) -> None:
        """Built-ins always; entry points once (as ``only`` / ``LETTINGO_LOAD_PLUGINS`` allows)."""
        self._load_builtins()
        if not self._entrypoints_loaded:
            self.load_entrypoints()
        self.pm.check_pending()

    def register_plugin(self, plugin: Any, name: str) -> None:
        """Register a plugin object in-process (notebooks and tests); unknown hook names raise."""
        self.pm.register(plugin, name=name)
        self.pm.check_pending()

    def unregister_plugin(self, name: str) -> None:
        self.pm.unregister(name=name)

    def components(self, kind: str) -> dict[str, tuple[Callable, str]]:
        """All registered components of ``kind``: name -> (factory, plugin name). The hooks are called
        afresh each time, so a plugin registered at any moment is visible at once."""
        self.ensure_loaded()
        found: dict[str, tuple[Callable, str]] = {}
        for impl in getattr(self.pm.hook, HOOK_FOR_KIND[kind]).get_hookimpls():
            def register(name: str, factory: Callable, _plugin=impl.plugin_name) -> None:
                found[name] = (factory, _plugin)

            impl.function(register=register)
        return found

    def factory(self, kind: str, name: str) -> Callable:
        available = self.components(kind)
        if name not in available:
            choices = ", ".join(sorted(available)) or "none"
            hint = ""
            if kind in ("llm", "aligner"):
                hint = " (is the plugin that provides it installed? `lettingo plugins` lists what is)"
            raise UnknownComponentError(f"unknown {kind} {name!r}; choose one of: {choices}{hint}")
        return available[name][0]

    def config_searchpath(self) -> list[str]:
        self.ensure_loaded()
        return [p for paths in self.pm.hook.lettingo_config_searchpath() for p in (paths or [])]

    def describe(self) -> list[dict[str, Any]]:
        """Each plugin with its version, the hooks it implements and the names it registers."""
        self.ensure_loaded()
        code: dict[str, dict[str, dict[str, str]]] = {}
        for kind in KINDS:
            for name, (made_by, plugin_name) in self.components(kind).items():
                code.setdefault(plugin_name, {}).setdefault(kind, {})[name] = implementation(made_by)
        dists = {
            ep.name: (ep.dist.name, ep.dist.version)
            for ep in importlib.metadata.entry_points(group="lettingo")
            if ep.dist is not None
        }
        rows = []
        for plugin_name, plugin in self.pm.list_name_plugin():
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            if plugin_name in dists:
                dist, version = dists[plugin_name]
            elif plugin_name.startswith("lettingo."):
                dist, version = "lettingo", importlib.metadata.version("lettingo")
            else:
                dist, version = None, getattr(plugin, "__version__", None)
            rows.append(
                {
                    "name": plugin_name,
                    "distribution": dist,
                    "version": version,
                    "hooks": hooks,
                    "components": {k: sorted(v) for k, v in code.get(plugin_name, {}).items()},
                    "implementations": code.get(plugin_name, {}),  # kind -> name -> module:object
                }
            )
        return rows

    def llm_price(self, llm_cfg: Any) -> tuple[float, float] | None:
        """(USD per prompt token, per completion token) from the first plugin that prices this model."""
        self.ensure_loaded()
        return self.pm.hook.lettingo_llm_price(llm_cfg=llm_cfg)

    def token_counter(self, llm_cfg: Any):
        """``messages -> prompt tokens`` for this model from the first plugin that counts for it, or None."""
        self.ensure_loaded()
        return self.pm.hook.lettingo_token_counter(llm_cfg=llm_cfg)

    def broadcast(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin."""
        self.ensure_loaded()
        getattr(self.pm.hook, hook)(**kwargs)


def make_registry(only: list[str] | None = None) -> PluginRegistry:
    """A new registry with its own plugin manager (nothing loaded until first use)."""
    return PluginRegistry(only)


_default = make_registry()
pm = _default.pm  # the default registry's manager (``lettingo.testing.plugin_registered`` uses it)


_composing: list[PluginRegistry] = []  # the registry a compose in progress reads (api.compose)


def default_registry() -> PluginRegistry:
    """The process's registry: what ``lettingo run``, ``api`` and a ``Context`` built without one use."""
    return _default


def active_registry() -> PluginRegistry:
    """The registry Hydra's search-path plugin reads options from: the one ``api.compose`` was given,
    else the default."""
    return _composing[-1] if _composing else _default


@contextlib.contextmanager
def composing_with(registry: PluginRegistry):
    _composing.append(registry)
    try:
        yield registry
    finally:
        _composing.pop()


# The default registry's methods, as functions (the API most code and plugins' tests use).
load_entrypoints = _default.load_entrypoints
ensure_loaded = _default.ensure_loaded
register_plugin = _default.register_plugin
unregister_plugin = _default.unregister_plugin
components = _default.components
factory = _default.factory
config_searchpath = _default.config_searchpath
describe = _default.describe
llm_price = _default.llm_price
token_counter = _default.token_counter
broadcast = _default.broadcast


def implementation(factory: Callable) -> str:
    """``module:object`` of the code behind a registered factory: a class's ``from_config`` names
    the class; a factory that imports its class lazily names it in an ``implementation`` attribute."""
    named = getattr(factory, "implementation", None)
    if isinstance(named, str):
        return named
    owner = getattr(factory, "__self__", None)  # a bound classmethod: the class is the component
    target = owner if isinstance(owner, type) else factory
    return f"{target.__module__}:{target.__qualname__}"


def installed_versions() -> dict[str, str]:
    """Versions of lettingo, of every installed plugin distribution (entry-point group ``lettingo``),
    and of the installed libraries they require: what a run records in its manifest."""
    dists = ["lettingo"] + sorted({ep.dist.name for ep in importlib.metadata.entry_points(group="lettingo")
                                   if ep.dist is not None} - {"lettingo"})
    versions: dict[str, str] = {}
    for dist in dists:
        try:
            versions[dist] = importlib.metadata.version(dist)
            requires = importlib.metadata.requires(dist) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
            if name and name.group(0) not in versions:
                try:
                    versions[name.group(0)] = importlib.metadata.version(name.group(0))
                except importlib.metadata.PackageNotFoundError:
                    pass  # an optional extra that is not installed
    return dict(sorted(versions.items()))
