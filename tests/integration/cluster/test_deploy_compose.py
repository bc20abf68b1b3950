"""deploy/: the compose files follow the Compose Specification (checked by the compose-spec
package, a strict implementation of it: unknown keys, bad types and durations, undefined
secrets, configs, networks and volumes are errors), every command they run exists in the
package with the flags it is given, the secrets they name are the files `amcp cluster
secrets --tls` writes, nothing secret goes into the image, and nats-server itself accepts
both server configurations with those secrets.

No Docker engine is needed: the compose files are data, checked as such.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from compose_spec import PyCompose, PyOptions

from agents.cli.agent import build_parser as agent_parser
from agents.cluster import USERS, ClusterSecrets
from agents.runtime.subjects import ROLES
from amcp.cli.main import build_parser as amcp_parser
from amcp.identity import Identity
from amcp.roster import Roster
from amcp.server import find_nats_server
from tests.support.cli import amcp as amcp_cli

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
NATS = ("nats-1", "nats-2", "nats-3")


def _load(name: str) -> dict[str, Any]:
    return PyOptions(apply_merge=True).from_yaml((DEPLOY / name).read_text()).to_dict()


def _merge(base: Any, over: Any) -> Any:
    """Compose's merge of an override file: maps merge, `secrets` and `configs` merge by
    target, other lists and scalars are replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            if key in ("secrets", "configs") and isinstance(value, list):
                by_target = {_target(v): v for v in merged.get(key, [])}
                by_target.update({_target(v): v for v in value})
                merged[key] = list(by_target.values())
            else:
                merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return over


def _target(item: str | dict[str, str]) -> str:
    return item if isinstance(item, str) else item.get("target", item["source"])


@pytest.fixture(scope="module")
def plain() -> dict[str, Any]:
    return _load("docker-compose.yml")


@pytest.fixture(scope="module", params=["plain", "tls"])
def project(request, plain) -> dict[str, Any]:
    if request.param == "plain":
        return plain
    merged = _merge(plain, _load("docker-compose.tls.yml"))
    PyCompose.from_json(json.dumps(merged)).validate()  # the merged project is valid as a whole
    return merged


def test_compose_files_follow_the_specification() -> None:
    PyOptions(apply_merge=True).from_yaml((DEPLOY / "docker-compose.yml").read_text()).validate()
    bad = (
        (DEPLOY / "docker-compose.yml")
        .read_text()
        .replace("stop_grace_period: 30s", "stop_grace: 30s")
    )
    with pytest.raises(ValueError, match="stop_grace"):  # the checker is strict
        PyOptions(apply_merge=True).from_yaml(bad)


def test_three_nats_nodes_and_every_role(project) -> None:
    services = project["services"]
    assert {s for s in services if s.startswith("nats")} == set(NATS)
    assert {services[n]["environment"]["NATS_NAME"] for n in NATS} == set(NATS)
    assert all(services[n]["healthcheck"]["test"][0] == "CMD" for n in NATS)
    assert all(_agents(project, role) for role in ROLES)
    assert len(_agents(project, "s1")) >= 2
    for role in ROLES:
        for agent in _agents(project, role).values():
            env = agent["environment"]
            urls = env["AMCP_NATS_URL"].split(",")
            assert sorted(urls) == [f"nats://{n}:4222" for n in NATS]
            assert env["AMCP_NATS_USER"] == role
            secret = {"source": f"nats_{role}_password", "target": "nats_password"}
            assert secret in agent["secrets"]
            assert agent["depends_on"]["prepare"]["condition"] == "service_completed_successfully"
            assert "healthcheck" in agent
    prepare = services["prepare"]
    assert all(prepare["depends_on"][n]["condition"] == "service_healthy" for n in NATS)
    assert prepare["environment"]["AMCP_NATS_USER"] == "admin"


def _agent_services(project: dict[str, Any]) -> dict[str, tuple[dict[str, Any], Any]]:
    """Every service that runs amcp-agent, by name, with its parsed arguments."""
    return {
        name: (service, agent_parser().parse_args(service["command"][1:]))
        for name, service in project["services"].items()
        if service["command"][0] == "amcp-agent"
    }


def _agents(project: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, (s, args) in _agent_services(project).items() if args.role == role}


def test_three_voters_with_ids_and_volumes_of_their_own(project) -> None:
    """A majority of three survives one lost voter; of one it does not (issue 13 point 4).
    A voter is a member by its id, so each needs a fixed id and volume of its own: one
    service with replicas would share them."""
    voters = [
        (service, args)
        for service, args in _agent_services(project).values()
        if args.role == "s5" or args.voter
    ]
    assert len(voters) == 3
    assert all(s.get("deploy", {}).get("replicas", 1) == 1 for s, _ in voters)
    assert len({a.id for _, a in voters}) == 3 and None not in {a.id for _, a in voters}
    assert len({a.data_dir for _, a in voters}) == 3
    volumes = {v.split(":")[0] for s, _ in voters for v in s["volumes"]}
    assert len(volumes) == 3 and volumes <= set(project["volumes"])
    first = {s["environment"]["AMCP_NATS_URL"].split(",")[0] for s, _ in voters}
    assert len(first) == 3  # one first on each server: losing a node loses one voter


def _commands(project: dict[str, Any]) -> list[tuple[str, list[str]]]:
    found = []
    for name, service in project["services"].items():
        found.append((name, list(service["command"])))
        test = service.get("healthcheck", {}).get("test")
        if test:
            assert test[0] == "CMD", f"{name}: healthcheck runs without a shell"
            found.append((f"{name} healthcheck", list(test[1:])))
    return found


def test_every_command_exists_with_its_flags(project) -> None:
    for where, argv in _commands(project):
        program, args = argv[0], argv[1:]
        if program == "amcp":
            parsed = amcp_parser().parse_args(args)  # exits 2 on an unknown command or flag
            assert callable(parsed.func), where
        elif program == "amcp-agent":
            agent_parser().parse_args(args)
        elif program == "nats-server":
            assert Path(find_nats_server()).is_file()
            assert args[0] == "-c", where
            targets = [c["target"] for c in project["services"][where]["configs"]]
            assert args[1] in targets, f"{where} runs a config it does not mount"
        elif program == "python":
            assert args[0] == "-c", where
            compile(args[1], where, "exec")
            port = int(re.search(r":(\d+)/", args[1]).group(1))
            service = project["services"][where.removesuffix(" healthcheck")]
            owns_port = port == 8222 or str(port) in service["command"]
            assert owns_port, f"{where} probes port {port} its service does not serve"
        else:
            pytest.fail(f"{where} runs {program!r}, which the image does not provide")


def _made(folder: Path) -> ClusterSecrets:
    """What `amcp cluster secrets --tls` writes, for the default agents."""
    made = amcp_cli("cluster", "secrets", str(folder), "--tls", timeout=120)
    assert made.returncode == 0, made.stderr
    return ClusterSecrets(folder)


def test_secrets_are_what_amcp_cluster_secrets_writes(project, tmp_path: Path) -> None:
    made = _made(tmp_path / "secrets")
    for name, secret in project["secrets"].items():
        path = Path(secret["file"])
        assert path.parts[0] == "secrets", name
        assert (made.folder / Path(*path.parts[1:])).is_file(), f"{name}: {path}"
    used = {_target(s) for svc in project["services"].values() for s in svc.get("secrets", [])}
    assert "nats_password" in used and "amcp_keyring" in used
    assert {f"nats_{u}_password" for u in USERS} <= set(project["secrets"])


def test_each_agent_signs_with_its_own_identity_in_the_roster(project, tmp_path: Path) -> None:
    """Identities on (issue 16): every agent service gets the roster and its own key file,
    no other agent's, and the key is the one `amcp cluster secrets` made for its --id."""
    made = _made(tmp_path / "secrets")
    roster = Roster.load(made.identities.roster)
    sources = []
    for name, (service, args) in _agent_services(project).items():
        env = service["environment"]
        assert env["AMCP_ROSTER"] == "/run/secrets/amcp_roster", name
        assert env["AMCP_IDENTITY"] == "/run/secrets/amcp_identity", name
        mounted = {_target(s): s for s in service["secrets"]}
        assert "amcp_roster" in mounted, name
        source = mounted["amcp_identity"]["source"]
        sources.append(source)
        key = Identity.load(made.folder / Path(*Path(project["secrets"][source]["file"]).parts[1:]))
        entry = roster.get(args.id)
        assert key.agent_id == args.id and entry is not None, name
        assert entry.public_key == key.public_key and args.role in entry.roles, name
    assert len(sources) == len(set(sources)) == len(roster.entries)  # one key each, all used
    prepare = project["services"]["prepare"]
    assert "amcp_roster" in {_target(s) for s in prepare["secrets"]}


def test_no_secret_goes_into_the_image() -> None:
    copies = [
        line.split()[1]
        for line in (DEPLOY / "Dockerfile").read_text().splitlines()
        if line.startswith(("COPY", "ADD"))
    ]
    assert copies == ["pyproject.toml", "amcp", "agents", "consensus", "crdt", "netopt"]
    rules = [r for r in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines() if r]
    assert next(r for r in rules if not r.startswith("#")) == "*"  # all out, then allow-list
    assert "secrets/" in (DEPLOY / ".gitignore").read_text()


@pytest.mark.parametrize("conf", ["nats.conf", "nats-tls.conf"])
def test_nats_server_accepts_the_configs(conf: str, tmp_path: Path) -> None:
    made = ClusterSecrets.create(
        tmp_path / "secrets", routes=[(n, 6222) for n in NATS], tls_hosts=list(NATS)
    )
    for name in (conf, made.auth_conf.name, made.cluster_auth_conf.name):
        source = DEPLOY / "nats" / name if name == conf else made.folder / name
        shutil.copy(source, tmp_path / name)
    text = (tmp_path / conf).read_text()
    assert "sync_interval: always" in text and "include auth.conf" in text
    (tmp_path / conf).write_text(text.replace("/etc/nats/tls/", f"{made.folder}/tls/"))
    env = {"NATS_NAME": "nats-1"}
    ok = subprocess.run(
        [find_nats_server(), "-t", "-c", str(tmp_path / conf)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stderr
    (tmp_path / made.auth_conf.name).write_text("authorization { users = [ {user: }\n")
    broken = subprocess.run(
        [find_nats_server(), "-t", "-c", str(tmp_path / conf)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert broken.returncode != 0  # the check is a real parse
