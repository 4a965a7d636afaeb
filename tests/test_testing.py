"""lettingo.testing's guards for real paths: a developer without a piece may skip, CI may not."""

from __future__ import annotations

import pytest

from lettingo.testing import missing, require_module, require_program


def test_a_missing_piece_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no_such_module cannot be imported"):
        require_module("no_such_module", "a test needs it")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set: a real path may not be skipped"):
        require_module("no_such_module", "a test needs it")
    with pytest.raises(pytest.fail.Exception, match="none of no-such-browser, no-such-other is on PATH"):
        require_program("no-such-browser", "no-such-other", why="install one")
    with pytest.raises(pytest.fail.Exception, match="a message"):
        missing("a message")


def test_present_pieces_are_returned():
    assert require_module("json", "always there").dumps([1]) == "[1]"
    assert require_program("no-such-program", "python3", why="-").endswith("python3")
