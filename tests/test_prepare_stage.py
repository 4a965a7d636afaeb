"""The prepare stage on a dataset with reviews: artifacts, the split record, the report's data tables,
and no target review in any profile prompt."""

from __future__ import annotations

import json

import pytest
from lettingo import api
from lettingo.components import Context
from lettingo.reporting.markdown import data_section
from lettingo.run_data import RunData
from lettingo.store import read_jsonl
from lettingo.types import Item, UserTask


@pytest.fixture
def reviews_folder(tmp_path):
    """8 users x 9 ratings; every review names its user and item, and the last of each is a secret."""
    folder = tmp_path / "reviews"
    folder.mkdir()
    items = [{"item_id": f"i{i}", "title": f"Book {i}", "attributes": {"genre": "fiction"}} for i in range(30)]
    rows = []
    for u in range(8):
        for k in range(9):
            text = f"SECRET target review of user {u}" if k == 8 else f"review {k} by user {u}"
            rows.append({"user_id": f"u{u}", "item_id": f"i{(u * 3 + k) % 30}", "rating": 1 + (u + k) % 5,
                         "timestamp": 1_600_000_000 + 1000 * k, "text": text})
    rows.append({"user_id": "u0", "item_id": "i1", "rating": 11, "timestamp": 1})  # outside the scale
    (folder / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    (folder / "interactions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_prepare_writes_tasks_items_summary_and_splits(reviews_folder, tmp_path, installed_plugins):
    cfg = api.compose(["dataset=jsonl", f"dataset.path={reviews_folder}", "protocol.profile_window=4",
                       "protocol.recent_window=2", "protocol.train_users=4", "protocol.test_users=3",
                       "prompt.review_chars=60"])
    run_dir = tmp_path / "run"
    api.run(cfg, run_dir, stages=["prepare"])
    summary = json.loads((run_dir / "data_summary.json").read_text())
    splits = json.loads((run_dir / "splits.json").read_text())
    tasks = list(read_jsonl(run_dir / "tasks.jsonl"))
    assert (len(splits["train"]), len(splits["test"])) == (4, 3) and not set(splits["train"]) & set(splits["test"])
    assert sorted(t["user_id"] for t in tasks if t["split"] == "train") == splits["train"]
    assert summary["load"]["bad_records"]["by_kind"] == {"rating_out_of_scale": 1}
    assert summary["users"]["kept"] == 7 and summary["users"]["eligible_unused"] == 1

    # every window review is there, no target review is, and no prompt shows one
    ctx = Context(cache=None)
    items = {row["item_id"]: row for row in read_jsonl(run_dir / "items.jsonl")}
    prompt = ctx.build("prompt", cfg.prompt)
    catalog = RunData.of({k: Item.from_dict(v) for k, v in items.items()}, cfg.dataset)
    for row in tasks:
        task = UserTask.from_dict(row)
        assert task.target.text is None
        assert [i.text for i in task.profile_window + task.recent_window] == [
            f"review {k} by user {task.user_id[1:]}" for k in range(2, 8)]
        text = json.dumps(prompt.messages(task, catalog))
        assert "review 2 by user" in text and "SECRET" not in text

    lines = "\n".join(data_section(summary))
    assert "| train | 4 |" in lines and "| test | 3 |" in lines
    assert "Bad records skipped: 1 (rating_out_of_scale: 1)" in lines
    assert "8 in the data, 8 eligible, 7 kept" in lines


def test_a_structure_error_in_the_data_is_one_clear_message_on_the_command_line(reviews_folder, tmp_path):
    import os
    import subprocess
    import sys

    (reviews_folder / "interactions.jsonl").write_text("user,item,rating\nu1,i1,4\n")
    result = subprocess.run(
        [sys.executable, "-m", "lettingo.cli", "run", "dataset=jsonl", f"dataset.path={reviews_folder}",
         f"hydra.run.dir={tmp_path / 'out'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "LETTINGO_LOAD_PLUGINS": "transformers,trl"},
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{reviews_folder / 'interactions.jsonl'} line 1" in result.stderr
    assert "JSON" in result.stderr
