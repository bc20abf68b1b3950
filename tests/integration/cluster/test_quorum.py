"""`amcp cluster up` with its defaults on real processes has three voters (S5s), not one
(issue 13 point 4): a vote commits with one of them SIGKILLed, since a majority of three
members is two. And a user whose NATS permissions forbid proposing (s1) is told so, exit 5,
rather than "no quorum" (point 5).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.cluster import LocalCluster
from amcp.subjects import Subjects
from consensus.subjects import ConsensusSubjects
from tests.support.cli import amcp
from tests.support.cluster import cluster_up, env_of

NAME = "quorum"
VOTERS = ["s5-1", "s5-2", "s5-3"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with cluster_up(tmp_path_factory.mktemp("quorum") / "cluster", NAME) as folder:
        yield folder


def test_three_voting_members_by_default(data_dir: Path) -> None:
    members = amcp("members", "--json", env=env_of(data_dir, "admin"))
    assert members.returncode == 0, members.stderr
    voters = sorted(m["id"] for m in json.loads(members.stdout)["members"] if m["voter"])
    assert voters == VOTERS


def test_s1_coordinate_is_refused_by_permissions_not_no_quorum(data_dir: Path) -> None:
    out = amcp("coordinate", "--action", "restart", "--timeout", "5", env=env_of(data_dir, "s1"))
    assert out.returncode == 5, (out.stdout, out.stderr)
    propose = ConsensusSubjects(Subjects(NAME)).propose
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and propose in lines[0] and "permission" in lines[0], out.stderr
    assert "no_quorum" not in out.stdout


def test_a_vote_commits_with_one_voter_killed(data_dir: Path) -> None:
    cluster = LocalCluster.load(data_dir)
    killed = next(a for a in cluster.state["agents"] if a["id"] == VOTERS[-1])
    os.kill(killed["pid"], signal.SIGKILL)
    try:
        done = amcp(
            "coordinate", "--action", "restart", "--timeout", "10", "--json",
            env=env_of(data_dir, "admin"),
        )  # fmt: skip
        assert done.returncode == 0, (done.stdout, done.stderr)
        doc = json.loads(done.stdout)
        assert doc["outcome"] == "committed"
        assert sorted(doc["members"]) == VOTERS  # the dead voter still counts
        assert doc["summary"]["needed"] == 2 and doc["summary"]["yes"] == 2
        assert doc["silent"] == [VOTERS[-1]]
    finally:
        cluster.restart_agent(VOTERS[-1])
