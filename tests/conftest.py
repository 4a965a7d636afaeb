"""Fixtures for core tests: installed plugins on demand, and small configs on the tiny model."""

from __future__ import annotations

import pytest

from lettingo import plugins

OUR_PLUGINS = ["transformers", "trl", "vllm", "litellm", "implicit"]


@pytest.fixture
def installed_plugins():
    """Load this repository's plugin distributions (entry points are off under pytest by default)."""
    plugins.load_entrypoints(only=OUR_PLUGINS)
    yield plugins.pm
