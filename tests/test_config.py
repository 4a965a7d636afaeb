"""The config tree: every option composes, options match registrations, sweeps and errors."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from lettingo import api, plugins
from lettingo.components import Context
from lettingo.testing import tiny_overrides

ROOT = Path(__file__).resolve().parent.parent
GROUPS = ["dataset", "llm", "prompt", "recommender", "pair_selector", "aligner"]
# Built here cheaply; llm / recommender / aligner options load models and are built in their own tests.
CHEAP_KINDS = {"dataset", "prompt", "pair_selector"}


def group_options(group: str) -> set[str]:
    """Options of a group across core's conf/ and every plugin's search-path directory."""
    from hydra.core.config_search_path import ConfigSearchPath  # noqa: F401
    from hydra._internal.utils import create_config_search_path
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(api.CONF_DIR)))
    return {name.split("/")[-1] for name in loader.get_group_options(group)}


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    GlobalHydra.instance().clear()


def test_options_and_registrations_correspond_one_to_one(installed_plugins):
    for group in GROUPS:
        assert group_options(group) == set(plugins.components(group)), group


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_and_names_its_component(group, installed_plugins):
    for option in sorted(group_options(group)):
        cfg = api.compose([f"{group}={option}"])
        assert cfg[group].name == option
        OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
        if group in CHEAP_KINDS:
            assert Context(cache=None).build(group, cfg[group]) is not None


EXPERIMENT_RECOMMENDERS = {"quickstart": "embedding_ranker", "paper_sentiment": "llm_sentiment",
                           "paper_table2": "llm_sentiment", "paper_ablation": "llm_sentiment",
                           "rating": "llm_rating", "llmrank": "llm_ranker", "evidence": "embedding_ranker"}


@pytest.mark.parametrize("experiment", sorted(EXPERIMENT_RECOMMENDERS))
def test_experiments_compose(experiment, installed_plugins):
    cfg = api.compose([f"experiment={experiment}"])
    assert cfg.recommender.name == EXPERIMENT_RECOMMENDERS[experiment]
    assert group_options("experiment") == set(EXPERIMENT_RECOMMENDERS)
    for entry in cfg.test.baseline_prompts:  # every baseline row names a registered prompt
        assert entry in plugins.components("prompt")


def _cli(args, tmp_path, timeout=600):
    env = {**os.environ, "LETTINGO_LOAD_PLUGINS": "transformers,trl", "LETTINGO_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "lettingo.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_two_by_two_sweep_runs_end_to_end(tmp_path, tiny_model):
    overrides = [o for o in tiny_overrides(tiny_model, train=6, test=6)]
    result = _cli(["run", "-m", *overrides, "explore.temperature=0.7,1.0", "aligner.beta=0.1,0.5",
                   "hydra.sweep.dir=sweep"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted((tmp_path / "sweep").glob("*/results.json"))
    assert len(jobs) == 4
    configs = {(OmegaConf.load(j.parent / ".hydra" / "config.yaml").explore.temperature,
                OmegaConf.load(j.parent / ".hydra" / "config.yaml").aligner.beta) for j in jobs}
    assert configs == {(0.7, 0.1), (0.7, 0.5), (1.0, 0.1), (1.0, 0.5)}


def test_version_and_the_hydra_job_name(tmp_path):
    import lettingo

    assert _cli(["--version"], tmp_path).stdout.strip() == f"lettingo {lettingo.__version__}"
    assert lettingo.__version__ == importlib.metadata.version("lettingo")
    # the job is lettingo, not the module's name: its log is lettingo.log
    result = _cli(["run", f"dataset.path={tmp_path}/no-such-dir", "hydra.run.dir=out"], tmp_path)
    assert (tmp_path / "out" / "lettingo.log").exists() and not (tmp_path / "out" / "cli.log").exists()
    assert OmegaConf.load(tmp_path / "out" / ".hydra" / "hydra.yaml").hydra.job.name == "lettingo"


def test_missing_dataset_file_is_one_clear_message(tmp_path):
    result = _cli(["run", f"dataset.path={tmp_path}/no-such-dir", "hydra.run.dir=out"], tmp_path)
    assert result.returncode == 2
    assert "no-such-dir" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_failed_sweep_job_does_not_stop_the_others(tmp_path, launcher):
    """Both jobs run, and the command exits non-zero naming the failed ones, whether the jobs ran in
    this process (basic) or in worker processes (joblib)."""
    result = _cli(["run", "-m", f"hydra/launcher={launcher}",
                   f"dataset.path={tmp_path}/first-missing,{tmp_path}/second-missing", "hydra.sweep.dir=sweep"],
                  tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "Warning" not in result.stderr
    assert "first-missing" in result.stderr and "second-missing" in result.stderr  # both jobs ran
    assert "2 job(s) of the sweep failed" in result.stderr and "lettingo resume" in result.stderr
    assert f"job 1 (dataset.path={tmp_path}/second-missing)" in result.stderr
    # a second sweep into the same directory counts its own failures only
    again = _cli(["run", "-m", f"hydra/launcher={launcher}", f"dataset.path={tmp_path}/first-missing",
                  "hydra.sweep.dir=sweep"], tmp_path)
    assert again.returncode == 2 and "1 job(s) of the sweep failed" in again.stderr


def test_unknown_component_is_one_clear_message(tmp_path):
    result = _cli(["run", "recommender.name=telepathy", "hydra.run.dir=out"], tmp_path)
    assert result.returncode == 2
    assert "unknown recommender 'telepathy'" in result.stderr and "Traceback" not in result.stderr
    result = _cli(["run", "recommender=telepathy"], tmp_path)
    assert result.returncode != 0
    assert "telepathy" in result.stderr and "Traceback" not in result.stderr


def test_malformed_override_is_one_clear_message(tmp_path):
    result = _cli(["run", "protocol.train_users=[oops"], tmp_path)
    assert result.returncode != 0
    assert "protocol.train_users" in result.stderr and "Traceback" not in result.stderr
    result = _cli(["run", "protocol.no_such_key=3"], tmp_path)
    assert result.returncode != 0
    assert "no_such_key" in result.stderr and "Traceback" not in result.stderr


def test_protocol_presets_compose_with_the_paper_sizes():
    small = api.compose([]).protocol
    paper = api.compose(["protocol=paper", "protocol.profile_window=70"]).protocol
    assert (small.train_users, small.test_users, small.train_profile_windows) == (40, 40, None)
    assert (paper.train_users, paper.test_users, list(paper.train_profile_windows)) == (3000, 2000, [30, 50, 70])
    assert (paper.profile_window, paper.recent_window, paper.min_interactions) == (70, 10, 81)
    assert set(small) == set(paper)  # one set of keys: a preset never hides a setting
