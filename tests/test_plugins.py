"""The plugin mechanism: in-process plugins, entry points, hook discipline, `lettingo plugins`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest
from omegaconf import OmegaConf

from lettingo import api, cli, hookspecs, plugins
from lettingo.components import Context
from lettingo.hookspecs import hookimpl
from lettingo.run_data import RunData

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("lettingo_"))


class ShoutPrompt:
    def __init__(self, cfg, ctx):
        self.cfg = cfg

    def messages(self, task, data):
        return [{"role": "user", "content": "DESCRIBE THIS USER " + "!" * self.cfg.excitement}]


class ShoutPlugin:
    """A third-party-style plugin: a prompt component plus its own config directory."""

    def __init__(self, conf_dir: Path):
        self.conf_dir = conf_dir

    @hookimpl
    def lettingo_register_prompts(self, register):
        register("shout", ShoutPrompt)

    @hookimpl
    def lettingo_config_searchpath(self):
        return [f"file://{self.conf_dir}"]


@pytest.fixture
def shout_plugin(tmp_path):
    (tmp_path / "conf" / "prompt").mkdir(parents=True)
    (tmp_path / "conf" / "prompt" / "shout.yaml").write_text("name: shout\nexcitement: 3\n")
    plugin = ShoutPlugin(tmp_path / "conf")
    plugins.register_plugin(plugin, "shout-plugin")
    yield plugin
    plugins.unregister_plugin("shout-plugin")


def test_in_process_plugin_is_listed_and_selectable_by_config(shout_plugin, installed_plugins, capsys):
    rows = {r["name"]: r for r in plugins.describe()}
    assert rows["shout-plugin"]["components"] == {"prompt": ["shout"]}
    assert "lettingo_config_searchpath" in rows["shout-plugin"]["hooks"]
    cli.main(["plugins", "--json"])
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["shout-plugin"]["components"]["prompt"] == ["shout"]
    cfg = api.compose(["prompt=shout", "prompt.excitement=5"])  # its option appears in the group
    prompt = Context(cache=None).build("prompt", cfg.prompt)
    assert prompt.messages(None, RunData())[0]["content"].endswith("!!!!!")


def test_builtins_register_through_the_same_hooks():
    rows = {r["name"]: r for r in plugins.describe()}
    assert rows["lettingo.builtins.recommenders"]["components"]["recommender"] == [
        "embedding_ranker", "llm_ranker", "llm_rating", "llm_sentiment"]
    assert rows["lettingo.builtins.datasets"]["distribution"] == "lettingo"


def test_entry_point_plugins_report_distribution_and_version(installed_plugins):
    rows = {r["name"]: r for r in plugins.describe()}
    assert rows["transformers"]["distribution"] == "lettingo-transformers"
    assert rows["transformers"]["components"] == {"llm": ["transformers"]}
    assert rows["trl"]["components"] == {"aligner": ["dpo", "orpo", "sft", "simpo"]}
    assert rows["trl"]["version"]
    assert rows["implicit"]["components"] == {"recommender": ["implicit_rerank"]}


def test_every_component_names_the_code_that_implements_it(installed_plugins, capsys):
    """From a config name to its code in one step: `lettingo plugins --components` prints, for each
    option, the module:object that a newcomer opens; the object is what the factory builds."""
    import importlib

    rows = plugins.describe()
    found = {(kind, name): where for row in rows for kind, names in row["implementations"].items()
             for name, where in names.items()}
    assert found[("recommender", "embedding_ranker")] == "lettingo.recommenders.embedding_ranker:EmbeddingRanker"
    assert found[("aligner", "dpo")] == "lettingo_trl.dpo:DPOAligner"  # a lazy factory names its class
    assert found[("llm", "transformers")] == "lettingo_transformers.backend:TransformersLLM"
    for (kind, name), where in found.items():
        module, _, qualname = where.partition(":")
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        assert isinstance(obj, type), f"{kind} {name}: {where} is not a class"  # what the contract test checks
    cli.main(["plugins", "--components"])
    printed = capsys.readouterr().out
    assert "lettingo.pair_selectors.margin:MarginPairs" in printed and "pair_selector" in printed


def implementation_class(factory):
    import importlib

    module, _, qualname = plugins.implementation(factory).partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def test_every_registered_component_satisfies_its_kinds_contract(installed_plugins):
    """Built-in and plugin components alike: each class has what its kind's Protocol asks for."""
    from lettingo import contracts

    assert set(contracts.CONTRACTS) == set(plugins.KINDS)  # a new kind needs a contract
    for kind in plugins.KINDS:
        for name, (factory, _) in plugins.components(kind).items():
            assert contracts.missing_members(implementation_class(factory), kind) == [], f"{kind} {name}"

    class NoJudge:
        task_type = "ranking"

    assert contracts.missing_members(NoJudge, "recommender") == ["judge"]
    assert contracts.required_members(contracts.Recommender) == ["judge", "task_type"]


def test_kinds_are_read_from_the_registration_hooks():
    assert plugins.KINDS == ("dataset", "llm", "prompt", "recommender", "pair_selector", "aligner")
    assert all(hasattr(plugins.hookspecs, hook) and hook == f"lettingo_register_{kind}s"
               for kind, hook in plugins.HOOK_FOR_KIND.items())


def test_recorded_versions_come_from_what_is_installed():
    """lettingo, every installed plugin distribution, and the libraries they require: no list of names."""
    import importlib.metadata

    versions = plugins.installed_versions()
    plugin_dists = {ep.dist.name for ep in importlib.metadata.entry_points(group="lettingo") if ep.dist}
    assert {"lettingo-trl", "lettingo-transformers"} <= plugin_dists <= set(versions) and "lettingo" in versions
    assert versions["trl"] == importlib.metadata.version("trl")  # required by lettingo-trl
    assert versions["pluggy"] == importlib.metadata.version("pluggy")  # required by lettingo


def test_unknown_hook_name_fails_loudly():
    class Typo:
        @hookimpl
        def lettingo_register_recomenders(self, register):  # misspelt on purpose
            pass

    with pytest.raises(pluggy.PluginValidationError, match="lettingo_register_recomenders"):
        plugins.register_plugin(Typo(), "typo")
    plugins.unregister_plugin("typo")


def test_unknown_component_names_the_choices():
    with pytest.raises(plugins.UnknownComponentError, match="choose one of: .*embedding_ranker"):
        plugins.factory("recommender", "telepathy")


def test_load_plugins_env_limits_entry_points(monkeypatch):
    import importlib.metadata

    names = {ep.name for ep in importlib.metadata.entry_points(group="lettingo")}
    assert {"transformers", "trl"} <= names
    before = {name for name, _ in plugins.pm.list_name_plugin()}
    monkeypatch.setenv("LETTINGO_LOAD_PLUGINS", "")
    plugins.load_entrypoints()
    assert {name for name, _ in plugins.pm.list_name_plugin()} == before


def test_every_registration_hook_is_called_by_lookup():
    for kind in plugins.KINDS:
        assert plugins.components(kind), kind


def test_every_hook_has_a_test_and_is_documented():
    tests_text = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    tests_text += "\n".join(p.read_text() for p in (ROOT / "plugins").glob("*/tests/test_*.py"))
    docs = (ROOT / "docs" / "plugin-hooks.md").read_text()
    for hook in HOOKS:
        assert re.search(rf"def {hook}\(", tests_text), f"no test implements {hook}"
        spec = getattr(hookspecs, hook)
        import inspect

        signature = f"{hook}{inspect.signature(spec)}"
        assert signature in docs, f"docs/plugin-hooks.md lacks `{signature}`"


class EveryKindPlugin:
    """One component of every kind, registered through each registration hook."""

    @hookimpl
    def lettingo_register_datasets(self, register):
        register("inline", lambda cfg, ctx: ("dataset", cfg))

    @hookimpl
    def lettingo_register_llms(self, register):
        register("echo", lambda cfg, ctx: ("llm", cfg))

    @hookimpl
    def lettingo_register_prompts(self, register):
        register("plain", lambda cfg, ctx: ("prompt", cfg))

    @hookimpl
    def lettingo_register_recommenders(self, register):
        register("coin", lambda cfg, ctx: ("recommender", cfg))

    @hookimpl
    def lettingo_register_pair_selectors(self, register):
        register("first_vs_last", lambda cfg, ctx: ("pair_selector", cfg))

    @hookimpl
    def lettingo_register_aligners(self, register):
        register("noop", lambda cfg, ctx: ("aligner", cfg))


def test_each_registration_hook_registers_a_buildable_component():
    plugins.register_plugin(EveryKindPlugin(), "every-kind")
    try:
        ctx = Context(cache=None)
        names = {"dataset": "inline", "llm": "echo", "prompt": "plain", "recommender": "coin",
                 "pair_selector": "first_vs_last", "aligner": "noop"}
        for kind, name in names.items():
            built_kind, cfg = ctx.build(kind, {"name": name, "x": 1})
            assert built_kind == kind and cfg.x == 1
    finally:
        plugins.unregister_plugin("every-kind")
    assert "echo" not in plugins.components("llm")  # lookups are fresh: gone once unregistered


# -- the command line's view of entry points (subprocesses: entry points load outside pytest) -------

def _broken_distribution(site: Path) -> Path:
    """A throwaway installed distribution whose entry point's module raises ImportError on import:
    a ``*.dist-info`` folder on the path is all ``importlib.metadata`` needs."""
    info = site / "lettingo_broken-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lettingo-broken\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[lettingo]\nbroken = lettingo_broken_plugin\n")
    (site / "lettingo_broken_plugin.py").write_text(
        'raise ImportError("needs libfrobnicate, which is not installed")\n')
    return site


def _lettingo(args: list[str], pythonpath: Path | None = None, **env_vars: str):
    env = {k: v for k, v in os.environ.items() if k != "LETTINGO_LOAD_PLUGINS"}  # conftest sets it
    env.update(env_vars)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pythonpath), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "lettingo.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=180)


def test_no_plugins_flag_lists_built_ins_only(tmp_path):
    site = _broken_distribution(tmp_path / "site")
    plain = _lettingo(["plugins", "--json"], pythonpath=site)
    assert plain.returncode == 0, plain.stderr
    assert "transformers" in {r["name"] for r in json.loads(plain.stdout)}  # so the flag is what hides them

    done = _lettingo(["--no-plugins", "plugins", "--json"], pythonpath=site)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {r["name"] for r in rows} == set(plugins.DEFAULT_PLUGINS)
    assert all(r["distribution"] == "lettingo" for r in rows)
    assert "broken" not in done.stderr  # not even imported: --no-plugins loads no entry point at all


def test_no_plugins_flag_is_in_the_help():
    done = _lettingo(["--help"])
    assert done.returncode == 0 and "--no-plugins" in done.stdout


def test_a_plugin_that_fails_to_import_is_named_and_the_others_still_load(tmp_path):
    site = _broken_distribution(tmp_path / "site")
    done = _lettingo(["plugins", "--json"], pythonpath=site)
    assert done.returncode == 0, done.stderr
    assert ("lettingo: plugin 'broken' (lettingo-broken) failed to load: ImportError: "
            "needs libfrobnicate, which is not installed") in done.stderr
    names = {r["name"] for r in json.loads(done.stdout)}  # stdout is still clean JSON
    assert {"transformers", "trl"} <= names and "broken" not in names
    assert set(plugins.DEFAULT_PLUGINS) <= names

    only = _lettingo(["plugins", "--json"], pythonpath=site, LETTINGO_LOAD_PLUGINS="transformers")
    assert only.returncode == 0 and "broken" not in only.stderr  # left out: never imported
    assert "transformers" in {r["name"] for r in json.loads(only.stdout)}


def test_every_registered_component_has_typed_settings_that_compose_and_refuse_unknown_keys(installed_plugins):
    """One home for a component's options: its Settings dataclass is the config-group option
    (composing `<kind>=<name>` gives exactly its defaults), no YAML file shadows it, and a key it
    does not know is refused by name, with the dataclass that lists the known ones."""
    import dataclasses

    from lettingo import settings
    from lettingo.errors import ComponentConfigError

    conf = Path(api.CONF_DIR)
    for kind in plugins.KINDS:
        for name, (made_by, _) in plugins.components(kind).items():
            found = settings.settings_of(made_by)
            assert found is not None and dataclasses.is_dataclass(found), f"{kind} {name}: no Settings dataclass"
            assert found.name == name, f"{kind} {name}: Settings.name is {found.name!r}"
            assert not (conf / kind / f"{name}.yaml").exists(), f"conf/{kind}/{name}.yaml shadows {found.__name__}"
            composed = api.compose([f"{kind}={name}"] + (["llm.model=x"] if name == "litellm" else []))
            expected = {**settings.defaults(found), **({"model": "x"} if name == "litellm" else {})}
            assert OmegaConf.to_container(composed[kind]) == expected, f"{kind} {name}"
            if getattr(found, "ignores_other_keys", False):  # `none`: a sweep's training keys pass it by
                continue
            with pytest.raises(ComponentConfigError, match=rf"{found.__name__}\): unknown key\(s\) \['colour'\]"):
                Context(cache=None).build(kind, {"name": name, "colour": "red"})


def test_a_wrong_type_is_refused_when_composing_and_when_building():
    from lettingo.errors import ComponentConfigError

    with pytest.raises(Exception, match="profile_weight"):
        api.compose(["recommender.profile_weight=high"])
    with pytest.raises(ComponentConfigError, match=r"EmbeddingRankerSettings\): profile_weight"):
        Context(cache=None).build("recommender", {"name": "embedding_ranker", "profile_weight": "high"})
    built = Context(cache=None).build("recommender", {"name": "embedding_ranker"})  # missing keys: the defaults
    assert built.profile_weight == 0.3 and built.batch_size == 64
    # a default that points into the whole config (`llm: ${llm}`) cannot fill a node built on its own
    with pytest.raises(ComponentConfigError, match=r"LLMRankerSettings\): set llm; the default \(\$\{llm\}\)"):
        Context(cache=None).build("recommender", {"name": "llm_ranker"})


def test_an_isolated_registry_has_its_own_plugins_and_leaves_the_process_default_untouched(installed_plugins):
    """A plugin manager made by a factory, owned by the API and Context: a notebook's own registry
    composes and builds its components; the process's default registry never sees them."""
    from dataclasses import dataclass

    from lettingo.errors import ComponentConfigError

    @dataclass
    class WhisperSettings:
        name: str = "whisper"
        volume: int = 1

    class WhisperPrompt:
        Settings = WhisperSettings

        def __init__(self, cfg, ctx):
            self.volume = cfg.volume

        def messages(self, task, data):
            return [{"role": "user", "content": "quietly" * self.volume}]

    class WhisperPlugin:
        @hookimpl
        def lettingo_register_prompts(self, register):
            register("whisper", WhisperPrompt)

    mine = plugins.make_registry(only=["transformers", "trl"])  # the default config needs llm + aligner
    mine.register_plugin(WhisperPlugin(), "whisper-plugin")
    cfg = api.compose(["prompt=whisper", "prompt.volume=3"], registry=mine)
    assert OmegaConf.to_container(cfg.prompt) == {"name": "whisper", "volume": 3}
    assert Context(cache=None, registry=mine).build("prompt", cfg.prompt).volume == 3
    with pytest.raises(ComponentConfigError, match=r"WhisperSettings\): unknown key\(s\) \['volum'\]"):
        Context(cache=None, registry=mine).build("prompt", {"name": "whisper", "volum": 2})

    assert "whisper" not in plugins.components("prompt")  # the default registry never saw it
    with pytest.raises(plugins.UnknownComponentError, match="whisper"):
        Context(cache=None).build("prompt", cfg.prompt)
    with pytest.raises(Exception, match="whisper"):  # nor do the default registry's config groups
        api.compose(["prompt=whisper"])
    assert api.compose([]).prompt.name == "lettingo"
