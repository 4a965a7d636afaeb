"""report.html: a self-contained page of one real tiny run, its escaping of hostile text, and the page
in headless Chromium (plots decode, the profile browser switches users, ``#user=`` preselects)."""

from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from omegaconf import OmegaConf

from lettingo import api, metrics, plugins
from lettingo.components import Context
from lettingo.pipeline import report
from lettingo.reporting.html import script_json
from lettingo.store import RunStore, read_jsonl
from lettingo.testing import require_module, require_program, tiny_overrides

SECTIONS = ("results", "charts", "training", "lengths", "browser", "pairs")
# Closes the data block and runs a script, or loads an image that runs one; never allowed to work.
HOSTILE = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">&amp; <!-- x'


class Page(HTMLParser):
    """The ids, images, links and script blocks of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.ids, self.imgs, self.links, self.scripts, self.tags = {}, [], [], [], []
        self._script = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids[attrs["id"]] = attrs
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        for key in ("src", "href", "action", "data"):
            if attrs.get(key):
                self.links.append(attrs[key])
        if tag == "script":
            self._script = [attrs, ""]

    def handle_data(self, data):
        if self._script is not None:
            self._script[1] += data

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append(tuple(self._script))
            self._script = None

    def json(self, element_id: str):
        return json.loads(next(text for attrs, text in self.scripts if attrs.get("id") == element_id))


@pytest.fixture(scope="module")
def html_run(tmp_path_factory, tiny_model):
    """One whole tiny run with a baseline prompt; its report stage writes report.html."""
    plugins.load_entrypoints(only=["transformers", "trl"])
    run_dir = tmp_path_factory.mktemp("run")
    cache = tmp_path_factory.mktemp("cache") / "calls.sqlite"
    cfg = api.compose(tiny_overrides(tiny_model) + [f"cache.path={cache}", "test.baseline_prompts=[palr]"])
    results = api.run(cfg, run_dir)
    return run_dir, cfg, results


def _copy_run(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("adapter", ".lock*"))
    (dest / "report.html").unlink()
    return dest


def _rewrite(path: Path, change) -> None:
    rows = [change(row) or row for row in read_jsonl(path)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _write(cfg, run_dir: Path, results: dict) -> str:
    """The report stage again on ``run_dir`` (its results are recomputed from the run's files)."""
    report.run(Context(run_dir, cache=None), cfg, RunStore(run_dir))
    return (run_dir / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def hostile_run(html_run, tmp_path_factory):
    """A copy of the run whose first test user's aligned profile, a history title and a preference
    pair carry HOSTILE; its report.html is written again from them."""
    run_dir, cfg, results = html_run
    copy = _copy_run(run_dir, tmp_path_factory.mktemp("hostile") / "run")
    tasks = {t["task_id"]: t for t in read_jsonl(copy / "tasks.jsonl")}
    first = Page((run_dir / "report.html").read_text()).json("browser-data")["users"][0]["id"]

    def profile(row):
        if row["task_id"] == first and row["generator"] == "aligned":
            row["text"] = HOSTILE

    def item(row):
        if row["item_id"] == tasks[first]["profile_window"][0]["item_id"]:
            row["title"] = HOSTILE

    _rewrite(copy / "test_profiles.jsonl", profile)
    _rewrite(copy / "items.jsonl", item)
    _rewrite(copy / "pairs.jsonl", lambda row: row.update(rejected=HOSTILE))
    return copy, first, _write(cfg, copy, results)


def test_script_json_cannot_close_its_script_element():
    text = script_json({"a": "</script><!-- & \u2028", "b": float("nan"), "c": [float("inf"), 1.5]})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028", "b": None, "c": [None, 1.5]}


@pytest.mark.slow
def test_report_html_is_self_contained_with_every_section(html_run):
    run_dir, cfg, results = html_run
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert set(SECTIONS) <= set(page.ids)
    assert {"user-select", "user-panel", "browser-data", "pair-user-select", "pairs-data",
            "results-table", "training-log", "aligned-model"} <= set(page.ids)
    # nothing is fetched at view time: no remote (or any non-data:) resource, no stylesheet link
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert all(link.startswith(("#", "data:image/png;base64,")) for link in page.links), page.links
    assert "link" not in page.tags and "@import" not in text and "url(" not in text
    # a PNG per headline metric, the training curves and the length histograms
    assert len(page.imgs) >= len(metrics.HEADLINE[results["task_type"]]) + 2
    assert all(src.startswith("data:image/png;base64,iVBORw0KGgo") for src in page.imgs)
    # the results table: one row per method, the config line as in report.md
    body = text.split('id="results-table"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr") == len(results["methods"])
    assert all(f">{name}<" in body for name in results["methods"])
    config = text.split('id="config-line"', 1)[1].split("</p>", 1)[0]
    for value in (cfg.dataset.name, cfg.recommender.name, cfg.pair_selector.name, cfg.aligner.name, cfg.llm.model):
        assert str(value) in config
    # the browser: every test user (their options and data), base and aligned profiles with verdicts
    browser = page.json("browser-data")
    test_ids = sorted(t["task_id"] for t in read_jsonl(run_dir / "tasks.jsonl") if t["split"] == "test")
    assert sorted(u["id"] for u in browser["users"]) == test_ids
    assert all(f'<option value="{task_id}">' in text for task_id in test_ids)
    profiles = {(p["task_id"], p["generator"], p["prompt_style"]): p["text"]
                for p in read_jsonl(run_dir / "test_profiles.jsonl") if p["sample"] == 0}
    for user in browser["users"]:
        for generator in ("base", "aligned"):
            assert user[generator]["text"] == profiles[(user["id"], generator, cfg.prompt.name)]
            assert set(user[generator]["verdict"]) >= {"score", "correct"}
        assert [p["method"] for p in user["others"]] == ["palr profiles (base model)"]
        assert len(user["history"]) == cfg.protocol.profile_window and user["target"]["title"]
    # the pairs, with the judged scores of both sides
    pairs = page.json("pairs-data")
    assert sum(len(u["pairs"]) for u in pairs["users"]) == len(read_jsonl(run_dir / "pairs.jsonl"))
    judged = {j["profile_id"]: j["score"] for j in read_jsonl(run_dir / "judgements.jsonl")}
    for pair in (p for u in pairs["users"] for p in u["pairs"]):
        assert pair["chosen"]["verdict"]["score"] == pytest.approx(judged[pair["chosen"]["id"]])
        assert pair["rejected"]["verdict"]["score"] == pytest.approx(judged[pair["rejected"]["id"]])
    assert "words per profile" in text and 'id="lengths-table"' in text


@pytest.mark.slow
def test_hostile_profile_and_titles_are_escaped(hostile_run):
    copy, first, text = hostile_run
    assert HOSTILE not in text
    for raw in ("<script>window.pwned", "<img src=x", "<!-- x"):
        assert raw not in text
    page = Page(text)
    # exactly the page's own scripts: two JSON blocks and the inline script
    assert len(page.scripts) == 3 and text.count("</script>") == 3
    browser = page.json("browser-data")
    user = next(u for u in browser["users"] if u["id"] == first)
    assert user["aligned"]["text"] == HOSTILE and user["history"][0]["title"] == HOSTILE
    assert all(p["rejected"]["text"] == HOSTILE for u in page.json("pairs-data")["users"] for p in u["pairs"])


@pytest.mark.slow
def test_report_html_without_training_pairs_or_baselines(html_run, tmp_path):
    run_dir, cfg, results = html_run
    copy = _copy_run(run_dir, tmp_path / "run")
    shutil.rmtree(copy / "aligned")
    (copy / "pairs.jsonl").unlink()
    rows = [r for r in read_jsonl(copy / "test_profiles.jsonl") if r["prompt_style"] == cfg.prompt.name]
    (copy / "test_profiles.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    none_cfg = OmegaConf.merge(cfg, {"aligner": {"name": "none"}})
    text = _write(none_cfg, copy, results)
    page = Page(text)
    assert set(SECTIONS) <= set(page.ids) and "no training (aligner none)" in text
    assert "No preference pairs" in text and "pair-user-select" not in page.ids
    assert all(u["others"] == [] for u in page.json("browser-data")["users"])
    assert all(src.startswith("data:image/png;base64,") for src in page.imgs)


@pytest.mark.slow
def test_report_html_shows_alignment_rounds(html_run, tmp_path):
    run_dir, cfg, results = html_run
    copy = _copy_run(run_dir, tmp_path / "run")
    log = [{"loss": 0.69 - 0.01 * i, "step": i % 3 + 1, "round": i // 3 + 1, "rewards/margins": 0.1 * i,
            "rewards/accuracies": 0.5} for i in range(6)]
    (copy / "aligned" / "training_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    rounds = [{"round": r, "pairs": 12 - r, "explore_accuracy": 0.3 + 0.1 * r, "explore_mean_score": 0.2 * r,
               "train_loss": 0.7 - 0.05 * r, "reward_margin": 0.1 * r, "reward_accuracy": 0.5} for r in (1, 2)]
    (copy / "aligned" / "rounds.json").write_text(json.dumps(rounds))
    before = len(Page((run_dir / "report.html").read_text()).imgs)
    page = Page(text := _write(cfg, copy, results))
    assert "rounds-table" in page.ids and "One line per alignment round" in text
    assert len(page.imgs) == before + 1  # the per-round plot
    table = text.split('id="rounds-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + len(rounds) and "explore_accuracy" in table


# -- in Chromium ---------------------------------------------------------------------------------------

def _chrome(tmp_path):
    install = "install Chromium and its driver (Debian: `sudo apt-get install -y chromium chromium-driver`)"
    browser = require_program("chromium", "chromium-browser", "google-chrome", why=install)
    driver_path = require_program("chromedriver", why=install)
    require_module("selenium", "pip install -e '.[test]'")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1280,1600", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    options.binary_location = browser
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # explicit binary and driver paths: Selenium Manager never looks anything up on the network
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(60)
    return driver


def _errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


@pytest.mark.slow
def test_report_html_in_headless_chromium(html_run, hostile_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    run_dir, cfg, results = html_run
    url = (run_dir / "report.html").resolve().as_uri()
    driver = _chrome(tmp_path)
    try:
        driver.get(url)
        rows = driver.find_elements(By.CSS_SELECTOR, "#results-table tbody tr")
        assert len(rows) == len(results["methods"])
        assert [r.find_element(By.TAG_NAME, "th").text for r in rows] == list(results["methods"])
        widths = driver.execute_script(
            "return Array.from(document.images).map(function (i) { return i.complete ? i.naturalWidth : 0; });")
        assert len(widths) >= len(metrics.HEADLINE[results["task_type"]]) + 2 and all(w > 0 for w in widths)

        panel = driver.find_element(By.ID, "user-panel")
        select = Select(driver.find_element(By.ID, "user-select"))
        ids = [o.get_attribute("value") for o in select.options]
        first, other = panel.get_attribute("data-user"), ids[-1]
        assert first == ids[0] != other
        assert panel.find_element(By.TAG_NAME, "h3").text.startswith(f"{first} (")
        select.select_by_value(other)
        assert panel.get_attribute("data-user") == other
        assert panel.find_element(By.TAG_NAME, "h3").text.startswith(f"{other} (")
        assert f"{other}/aligned/{cfg.prompt.name}/0" in panel.text and f"{first}/" not in panel.text
        assert "base profile" in panel.text and "aligned profile" in panel.text and "Target" in panel.text

        pair_select = Select(driver.find_element(By.ID, "pair-user-select"))
        pair_panel = driver.find_element(By.ID, "pair-panel")
        last_pair_user = pair_select.options[-1].get_attribute("value")
        pair_select.select_by_value(last_pair_user)
        assert pair_panel.get_attribute("data-user") == last_pair_user
        assert "chosen" in pair_panel.text and "rejected" in pair_panel.text

        middle = ids[len(ids) // 2]
        driver.get("about:blank")
        driver.get(f"{url}#user={quote(middle)}")
        select = Select(driver.find_element(By.ID, "user-select"))
        assert select.first_selected_option.get_attribute("value") == middle
        panel = driver.find_element(By.ID, "user-panel")
        assert panel.get_attribute("data-user") == middle
        assert panel.find_element(By.TAG_NAME, "h3").text.startswith(f"{middle} (")
        assert _errors(driver) == []

        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
        if os.environ.get("LETTINGO_ARTIFACTS_DIR"):
            artifacts = Path(os.environ["LETTINGO_ARTIFACTS_DIR"])
            artifacts.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, artifacts / "report.png")

        # hostile text is shown as text and never runs
        copy, hostile_user, _ = hostile_run
        driver.get("about:blank")
        driver.get(f"{(copy / 'report.html').resolve().as_uri()}#user={quote(hostile_user)}")
        panel = driver.find_element(By.ID, "user-panel")
        assert panel.get_attribute("data-user") == hostile_user
        assert driver.execute_script("return typeof window.pwned") == "undefined"
        aligned = panel.find_element(By.CSS_SELECTOR, ".card.aligned .text")
        assert aligned.get_attribute("textContent") == HOSTILE
        assert driver.find_elements(By.CSS_SELECTOR, "#user-panel img, #pair-panel img, #user-panel script") == []
        assert _errors(driver) == []
    finally:
        driver.quit()
