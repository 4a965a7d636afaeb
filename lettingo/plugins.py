"""The plugin manager: built-ins and third-party plugins, registered the same way.

Built-ins are the modules in ``DEFAULT_PLUGINS``. Third-party plugins come from the entry-point
group ``lettingo``; ``LETTINGO_LOAD_PLUGINS=a,b`` limits which of them load (empty: none, which is
what ``lettingo --no-plugins`` sets; the test suite's conftest sets it too, so a test that wants
plugins calls :func:`load_entrypoints` itself). Lookups call the registration hooks afresh, so a
plugin registered at any time is visible at once. The component kinds are read from the hook names
(``lettingo_register_<kind>s``), so a new kind is one new hookspec.
"""

from __future__ import annotations

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


pm = pluggy.PluginManager("lettingo")
pm.add_hookspecs(hookspecs)
_entrypoints_loaded = False


def _load_builtins() -> None:
    for module_name in DEFAULT_PLUGINS:
        if pm.get_plugin(module_name) is None:
            pm.register(importlib.import_module(module_name), name=module_name)


def load_entrypoints(only: list[str] | None = None) -> None:
    """Load installed plugins from the ``lettingo`` entry-point group (once per process).

    ``only`` (or ``LETTINGO_LOAD_PLUGINS``) names the distributions or entry points to load.
    """
    global _entrypoints_loaded
    if only is None and "LETTINGO_LOAD_PLUGINS" in os.environ:
        only = [p.strip() for p in os.environ["LETTINGO_LOAD_PLUGINS"].split(",") if p.strip()]
    for ep in importlib.metadata.entry_points(group="lettingo"):
        dist = ep.dist.name if ep.dist else ep.name
        if only is not None and ep.name not in only and dist not in only:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            module = ep.load()
        except Exception as exc:  # one broken plugin must not take down the rest
            print(f"lettingo: plugin {ep.name!r} ({dist}) failed to load: {type(exc).__name__}: {exc} "
                  "(skipped; LETTINGO_LOAD_PLUGINS or `lettingo --no-plugins` leaves plugins out)",
                  file=sys.stderr)
            continue
        pm.register(module, name=ep.name)
    pm.check_pending()  # an implementation whose name matches no hookspec fails loudly
    _entrypoints_loaded = True


def ensure_loaded() -> None:
    """Built-ins always; entry points once (as ``LETTINGO_LOAD_PLUGINS`` allows)."""
    _load_builtins()
    if not _entrypoints_loaded:
        load_entrypoints()
    pm.check_pending()


def register_plugin(plugin: Any, name: str) -> None:
    """Register a plugin object in-process (notebooks and tests); unknown hook names raise."""
    pm.register(plugin, name=name)
    pm.check_pending()


def unregister_plugin(name: str) -> None:
    pm.unregister(name=name)


def components(kind: str) -> dict[str, tuple[Callable, str]]:
    """All registered components of ``kind``: name -> (factory, plugin name)."""
    ensure_loaded()
    found: dict[str, tuple[Callable, str]] = {}
    for impl in getattr(pm.hook, HOOK_FOR_KIND[kind]).get_hookimpls():
        def register(name: str, factory: Callable, _plugin=impl.plugin_name) -> None:
            found[name] = (factory, _plugin)

        impl.function(register=register)
    return found


def implementation(factory: Callable) -> str:
    """``module:object`` of the code behind a registered factory: a class's ``from_config`` names
    the class; a factory that imports its class lazily names it in an ``implementation`` attribute."""
    named = getattr(factory, "implementation", None)
    if isinstance(named, str):
        return named
    owner = getattr(factory, "__self__", None)  # a bound classmethod: the class is the component
    target = owner if isinstance(owner, type) else factory
    return f"{target.__module__}:{target.__qualname__}"


def factory(kind: str, name: str) -> Callable:
    available = components(kind)
    if name not in available:
        choices = ", ".join(sorted(available)) or "none"
        hint = ""
        if kind in ("llm", "aligner"):
            hint = " (is the plugin that provides it installed? `lettingo plugins` lists what is)"
        raise UnknownComponentError(f"unknown {kind} {name!r}; choose one of: {choices}{hint}")
    return available[name][0]


def config_searchpath() -> list[str]:
    ensure_loaded()
    return [p for paths in pm.hook.lettingo_config_searchpath() for p in (paths or [])]


def describe() -> list[dict[str, Any]]:
    """Each plugin with its version, the hooks it implements and the names it registers."""
    ensure_loaded()
    code: dict[str, dict[str, dict[str, str]]] = {}
    for kind in KINDS:
        for name, (made_by, plugin_name) in components(kind).items():
            code.setdefault(plugin_name, {}).setdefault(kind, {})[name] = implementation(made_by)
    dists = {
        ep.name: (ep.dist.name, ep.dist.version)
        for ep in importlib.metadata.entry_points(group="lettingo")
        if ep.dist is not None
    }
    rows = []
    for plugin_name, plugin in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
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


def llm_price(llm_cfg: Any) -> tuple[float, float] | None:
    """(USD per prompt token, per completion token) from the first plugin that prices this model."""
    ensure_loaded()
    return pm.hook.lettingo_llm_price(llm_cfg=llm_cfg)


def broadcast(hook: str, **kwargs: Any) -> None:
    """Call a lifecycle hook on every plugin."""
    ensure_loaded()
    getattr(pm.hook, hook)(**kwargs)
