"""Every file `amcp cluster up` and `amcp cluster secrets` write that holds a secret (a NATS
password, the keyring, an agent's identity, a TLS private key), or includes one, is mode
0600 in folders of mode 0700: the real CLI, real nats-servers, then a walk of everything
they left on disk. The roster they write holds public keys only (0644)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

from tests.support.cli import amcp


def secrets_in(folder: Path) -> list[str]:
    """The passwords and keyring secrets a secrets folder holds, as they appear in files."""
    found = [p.read_text().strip() for p in folder.glob("nats-*.password")]
    for key in json.loads((folder / "keyring.json").read_text())["keys"]:
        found.append(key["secret"])
        found.append(base64.b64decode(key["secret"]).hex())
    seeds = [json.loads(p.read_text())["seed"] for p in folder.glob("identities/*.json")]
    assert seeds, "no agent identities"  # one private key per agent of the topology
    found += seeds
    assert len(found) >= 8
    return found


def exposed(root: Path, secrets: list[str]) -> list[str]:
    """Files under `root` holding a secret that others may read, and the folders on the
    way to them that others may enter."""
    problems = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        text = path.read_bytes().decode(errors="replace")
        if not any(s in text for s in secrets) and "PRIVATE KEY" not in text:
            continue
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            problems.append(f"{path.relative_to(root)} {oct(path.stat().st_mode & 0o777)}")
        for folder in [root, *path.relative_to(root).parents]:
            folder = root / folder
            if folder.stat().st_mode & 0o077:
                problems.append(f"{folder.relative_to(root)}/ {oct(folder.stat().st_mode & 0o777)}")
    return sorted(set(problems))


def test_cluster_up_leaves_no_secret_readable_by_others(data_dir: Path) -> None:
    up = amcp(
        "cluster", "up", "--data-dir", str(data_dir), "--nodes", "2", "--agents", "s1=1", "--tls",
        timeout=120,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    secrets = secrets_in(data_dir / "secrets")
    assert _public_roster(data_dir / "secrets", secrets) == ["s1-1"]
    node_confs = sorted(data_dir.glob("n*/*.conf"))
    assert len(node_confs) == 2
    assert all(any(s in conf.read_text() for s in secrets) for conf in node_confs)
    assert exposed(data_dir, secrets) == []


def test_cluster_secrets_leaves_no_secret_readable_by_others(tmp_path: Path) -> None:
    folder = tmp_path / "deploy" / "secrets"
    made = amcp("cluster", "secrets", str(folder), "--tls", timeout=120)
    assert made.returncode == 0, made.stderr
    assert (folder / "tls" / "server-key.pem").exists()
    assert exposed(folder, secrets_in(folder)) == []
    ids = ["s1-1", "s1-2", "s2-1", "s3-1", "s4-1", "s5-1", "s5-2", "s5-3"]  # the compose ids
    assert _public_roster(folder, secrets_in(folder)) == ids


def _public_roster(folder: Path, secrets: list[str]) -> list[str]:
    """The ids in the roster, which is 0644 and holds no secret."""
    roster = folder / "roster.json"
    assert stat.S_IMODE(roster.stat().st_mode) == 0o644
    assert not any(s in roster.read_text() for s in secrets)
    return [a["id"] for a in json.loads(roster.read_text())["agents"]]
