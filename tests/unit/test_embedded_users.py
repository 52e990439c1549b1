"""The embedded server's list of users forgets processes that are gone (fast; the real
signals and restarts are in tests/resilience/test_embedded_stop.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from app.core.embedded import _forget_dead_users


def test_dead_and_foreign_pids_are_forgotten_live_users_stay(tmp_path: Path) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    other_program = subprocess.Popen(["sleep", "30"])  # alive, but not one of ours
    try:
        listing = tmp_path / ".handle_pids.json"
        listing.write_text(json.dumps([os.getpid(), finished.pid, other_program.pid]))
        dropped = _forget_dead_users(tmp_path)
        assert json.loads(listing.read_text()) == [os.getpid()]
        assert dropped == sorted([finished.pid, other_program.pid])
        assert _forget_dead_users(tmp_path) == []  # nothing more to forget
    finally:
        other_program.kill()
        other_program.wait()


def test_a_missing_or_broken_list_is_left_alone(tmp_path: Path) -> None:
    assert _forget_dead_users(tmp_path) == []
    (tmp_path / ".handle_pids.json").write_text("not json")
    assert _forget_dead_users(tmp_path) == []
    assert (tmp_path / ".handle_pids.json").read_text() == "not json"
