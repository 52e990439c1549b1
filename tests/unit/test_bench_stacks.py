"""bench/stacks.py: a py-spy raw profile summed by layer and by function."""

from __future__ import annotations

from pathlib import Path

from bench.stacks import summarise


def test_samples_go_to_the_innermost_frames_layer(tmp_path: Path) -> None:
    profile = tmp_path / "raw.txt"
    profile.write_text(
        "run (uvicorn/main.py:1);me (app/me/router.py:19);fetch (asyncpg/connection.py:7) 6\n"
        "run (uvicorn/main.py:1);me (app/me/router.py:19) 3\n"
        "run (uvicorn/main.py:1);app (fastapi/routing.py:2811) 1\n"
        "garbage\n",
        encoding="utf-8",
    )
    summary = summarise(profile)
    assert "(10 samples)" in summary
    assert "driver (asyncpg) 60%, endpoint (domain code) 30%" in summary
    assert "framework (FastAPI, Starlette) 10%" in summary
    assert "fetch (asyncpg/connection.py) 60%" in summary


def test_an_empty_profile_says_so(tmp_path: Path) -> None:
    profile = tmp_path / "raw.txt"
    profile.write_text("", encoding="utf-8")
    assert "no samples" in summarise(profile)
