"""The command plugins' entry points, remembered per environment (amcp.cli.plugins): read
once through importlib.metadata, then from the cache file until a folder on sys.path
changes."""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from amcp.cli.plugins import GROUP, command_entry_points
from tests.support.importtime import imports_of


def installed() -> list[tuple[str, str]]:
    return sorted((ep.name, ep.value) for ep in entry_points(group=GROUP))


def cache_file(folder: Path) -> Path:
    (file,) = folder.glob("commands-*.json")
    return file


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of our own on sys.path, to change as an install would."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_the_entry_points_are_read_and_kept(tmp_path: Path) -> None:
    found = command_entry_points(tmp_path)
    assert found == installed()
    assert ("call", "agents.cli.call:register") in found
    assert json.loads(cache_file(tmp_path).read_text())["commands"] == [list(f) for f in found]


def test_the_cache_is_what_is_read_while_sys_path_is_unchanged(
    tmp_path: Path, on_path: Path
) -> None:
    command_entry_points(tmp_path)
    file = cache_file(tmp_path)
    doc = json.loads(file.read_text())
    file.write_text(json.dumps({**doc, "commands": [["only", "some.module:register"]]}))
    assert command_entry_points(tmp_path) == [("only", "some.module:register")]
    # an install (a dist-info made or replaced) changes the folder: read anew
    stat = on_path.stat()
    os.utime(on_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert command_entry_points(tmp_path) == installed()
    assert json.loads(file.read_text())["key"] != doc["key"]


@pytest.mark.parametrize("content", ["", "{not json", '{"key": 1}', "[]", '{"commands": 3}'])
def test_a_damaged_cache_is_read_anew_and_replaced(tmp_path: Path, content: str) -> None:
    command_entry_points(tmp_path)
    file = cache_file(tmp_path)
    file.write_text(content)
    assert command_entry_points(tmp_path) == installed()
    assert json.loads(file.read_text())["commands"] == [list(f) for f in installed()]


def test_a_cache_that_cannot_be_written_is_only_a_slower_start(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert command_entry_points(blocked / "amcp") == installed()


def test_a_second_start_skips_importlib_metadata(tmp_path: Path) -> None:
    # the console script, as a user runs it (its folder, not the working one, leads sys.path)
    script = (str(Path(sys.executable).parent / "amcp"),)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    first = imports_of("--help", run=script, env=env)
    second = imports_of("--help", run=script, env=env)
    assert first.run.returncode == second.run.returncode == 0
    assert second.run.stdout == first.run.stdout
    assert "importlib.metadata" in first.names
    assert "importlib.metadata" not in second.names
