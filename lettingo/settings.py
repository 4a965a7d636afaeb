"""Typed component settings: one dataclass per component, the single home of its options' defaults.

A component names its settings dataclass in a ``Settings`` attribute, on its class or on a lazy
factory (one that imports the class only when it builds). lettingo then

- stores the dataclass in Hydra's ConfigStore as the config-group option ``<kind>/<name>``, so
  ``recommender=embedding_ranker`` composes it with its defaults and Hydra refuses a misspelt key or
  a value of the wrong type on the command line and in experiment files;
- validates every node a component is built from against it (``Context.build``, notebooks'
  dicts included): an unknown key is refused by name, with the dataclass that lists the known ones,
  and missing keys take the dataclass's defaults. A dataclass with ``ignores_other_keys = True``
  (a ClassVar: the ``none`` aligner, which a sweep over ``aligner=none,sft,dpo`` gives the training
  aligners' ``++aligner.epochs=2``) drops unknown keys instead.

Built-ins and plugins are validated the same way. A plugin without ``Settings`` may still ship a
YAML option file through ``lettingo_config_searchpath``; its node then reaches the factory as written.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lettingo.errors import ComponentConfigError


def settings_of(factory: Callable) -> type | None:
    """The settings dataclass of a registered factory: its ``Settings`` attribute, or that of the
    class whose ``from_config`` (or constructor) it is."""
    found = getattr(factory, "Settings", None)
    if found is None:
        owner = getattr(factory, "__self__", None)  # a bound classmethod: the class
        found = getattr(owner, "Settings", None) if isinstance(owner, type) else None
    if found is not None and not dataclasses.is_dataclass(found):
        raise TypeError(f"{factory!r}: Settings must be a dataclass, got {found!r}")
    return found


def where(settings: type) -> str:
    return f"{settings.__module__}:{settings.__qualname__}"


def validated(kind: str, cfg: DictConfig, settings: type | None) -> DictConfig:
    """``cfg`` checked against ``settings`` and completed with its defaults (interpolations resolved
    against the config ``cfg`` came from); unchanged when the component has no settings."""
    if settings is None:
        return cfg
    try:
        given = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:  # an interpolation this node cannot resolve on its own
        raise _refused(kind, cfg.get("name", "?"), settings, exc) from None
    name = given.get("name", "?")
    known = [f.name for f in dataclasses.fields(settings)]
    unknown = sorted(set(given) - set(known))
    if unknown and getattr(settings, "ignores_other_keys", False):
        given = {k: v for k, v in given.items() if k in known}
    elif unknown:
        raise ComponentConfigError(
            f"{kind} {name!r} ({where(settings)}): unknown key(s) {unknown}; known keys: {', '.join(known)}"
            + (f"; {settings.unknown_key_hint}" if getattr(settings, "unknown_key_hint", "") else ""))
    try:
        node = OmegaConf.merge(OmegaConf.structured(settings), given)
        pointing = [k for k in node if k not in given and OmegaConf.is_interpolation(node, k)]
        if pointing:  # a default such as `llm: ${llm}` needs the whole config around the node
            raise ComponentConfigError(
                f"{kind} {name!r} ({where(settings)}): set {', '.join(pointing)}; the default "
                f"({', '.join(str(OmegaConf.to_container(node)[k]) for k in pointing)}) refers to the run's config, "
                "which a node built on its own does not have")
        OmegaConf.resolve(node)
    except OmegaConfBaseException as exc:
        raise _refused(kind, name, settings, exc) from None
    return node


def _refused(kind: str, name: str, settings: type, exc: OmegaConfBaseException) -> ComponentConfigError:
    """A wrong type or an unresolvable value, named by its key."""
    key = getattr(exc, "full_key", None)
    reason = str(exc).splitlines()[0]
    return ComponentConfigError(f"{kind} {name!r} ({where(settings)}): {key + ': ' if key else ''}{reason}")


_stored: set[tuple[str, str]] = set()  # the options store_all put in Hydra's ConfigStore


def store_all(components: Callable[[str], dict[str, tuple[Callable, str]]], kinds: tuple[str, ...]) -> None:
    """Every registered component's settings as its config-group option (``group=kind``); options
    stored for components no longer registered (another registry's, an unregistered plugin's) go."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    now = {}
    for kind in kinds:
        for name, (factory, _) in components(kind).items():
            settings = settings_of(factory)
            if settings is not None:
                now[(kind, name)] = settings
    for kind, name in _stored - set(now):
        store.repo.get(kind, {}).pop(f"{name}.yaml", None)
    for (kind, name), settings in now.items():
        store.store(group=kind, name=name, node=settings, provider="lettingo")
    _stored.clear()
    _stored.update(now)


def defaults(settings: type) -> dict[str, Any]:
    """The dataclass's defaults as plain data (what composing its option gives)."""
    return OmegaConf.to_container(OmegaConf.structured(settings))


def options(kind: str, cfg: DictConfig | dict, settings: type) -> dict[str, Any]:
    """A component's node, checked and completed, as constructor keyword arguments (without ``name``)."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    values = OmegaConf.to_container(validated(kind, node, settings), resolve=True)
    values.pop("name", None)
    return values
