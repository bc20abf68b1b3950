"""`amcp keys rotate|list|new` given times or paths that make no sense: refused in one line
with exit 2 before anything is written, and a keyring holding such a time is reported, not
crashed on (a NaN expiry would have let a retired key verify forever)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from amcp.cli.common import EXIT_USAGE
from tests.support.cli import amcp


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(tmp_path), "AMCP_KEYRING": str(tmp_path / "ring.json")}
    assert amcp("keys", "new", env=env).returncode == 0
    return env


def _one_line_usage_error(done: object) -> str:
    assert done.returncode == EXIT_USAGE, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize("option", ["--grace", "--activate-after"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e20", "-1", "400000000", "soon"])
def test_rotate_refuses_a_time_that_is_not_finite_and_sane_writing_nothing(
    env: dict[str, str], option: str, value: str
) -> None:
    ring = Path(env["AMCP_KEYRING"])
    before = ring.read_bytes()
    stderr = _one_line_usage_error(amcp("keys", "rotate", f"{option}={value}", env=env))
    assert option in stderr and value in stderr
    assert ring.read_bytes() == before
    assert amcp("keys", "list", env=env).returncode == 0


def test_rotate_takes_the_bounds_themselves(env: dict[str, str]) -> None:
    done = amcp("keys", "rotate", "--grace", "0", "--activate-after", "315360000", env=env)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e20, -5.0])
@pytest.mark.parametrize("field", ["expires_at", "activates_at", "created_at"])
def test_a_keyring_with_a_time_that_is_not_a_date_is_reported_in_one_line(
    env: dict[str, str], field: str, bad: float
) -> None:
    ring = Path(env["AMCP_KEYRING"])
    doc = json.loads(ring.read_text())
    doc["keys"][0][field] = bad
    ring.write_text(json.dumps(doc))  # json writes NaN and Infinity, as a hand edit could
    stderr = _one_line_usage_error(amcp("keys", "list", env=env))
    assert "malformed" in stderr and field in stderr


def test_new_into_a_directory_says_so_in_one_line(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    stderr = _one_line_usage_error(
        amcp("keys", "new", "--out", str(tmp_path / "dir"), "--force", env=env)
    )
    assert str(tmp_path / "dir") in stderr and "directory" in stderr
