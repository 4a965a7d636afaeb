"""docs/examples/lettingo-bullets is installed as a real distribution and used by a real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lettingo.testing import tiny_overrides

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "lettingo-bullets"

RUN = """
import json, sys
from lettingo import api
cfg = api.compose(sys.argv[2:])
api.run(cfg, sys.argv[1], stages=["prepare", "explore"])
"""


@pytest.mark.slow
def test_example_plugin_installs_lists_and_runs(tmp_path, tiny_model):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(EXAMPLE)], check=True)
    env = {**os.environ, "PYTHONPATH": str(site), "LETTINGO_LOAD_PLUGINS": "bullets,transformers,trl",
           "LETTINGO_CACHE_DIR": str(tmp_path / "cache")}
    listed = subprocess.run([sys.executable, "-m", "lettingo.cli", "plugins", "--json"], env=env,
                            capture_output=True, text=True, check=True)
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["bullets"]["distribution"] == "lettingo-bullets"
    assert rows["bullets"]["components"] == {"prompt": ["bullets"]}

    overrides = tiny_overrides(tiny_model, train=3, test=3) + ["prompt=bullets", "prompt.bullets=3"]
    run_dir = tmp_path / "run"
    subprocess.run([sys.executable, "-c", RUN, str(run_dir), *overrides], env=env, check=True)
    profiles = [json.loads(line) for line in (run_dir / "profiles.jsonl").read_text().splitlines()]
    assert len(profiles) == 3 * 2
    assert all(p["prompt_style"] == "bullets" for p in profiles)
    assert "at most 3 short bullet points" in profiles[0]["prompt_messages"][0]["content"]
    # its Settings dataclass is the option: a misspelt key is refused by name before any work
    typo = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "typo"), *overrides[:-1], "prompt.bulets=3"],
                          env=env, capture_output=True, text=True)
    assert typo.returncode != 0 and "bulets" in typo.stderr
