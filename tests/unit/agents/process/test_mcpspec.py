"""`--mcp NAME=COMMAND|URL` and the names mounted tools get (pure), and what amcp-agent does
with a bad value: one line on stderr and exit 2, before it connects anywhere."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.process.mcpspec import (
    McpServerSpec,
    mount_names,
    parse_mcp_server,
    parse_mcp_servers,
)
from agents.runtime.tools import _NAME as TOOL_NAME
from tests.support.cli import amcp


def test_commands_are_split_as_a_shell_would() -> None:
    spec = parse_mcp_server("fs=node 'my dir/index.js' /tmp/a b")
    assert spec == McpServerSpec("fs", command=("node", "my dir/index.js", "/tmp/a", "b"))
    assert spec.target == "node 'my dir/index.js' /tmp/a b"
    assert parse_mcp_server("git-2=uvx mcp-server-git").command == ("uvx", "mcp-server-git")
    # only the first '=' separates: the command may hold more
    assert parse_mcp_server("e=env A=1 srv").command == ("env", "A=1", "srv")


def test_urls_are_streamable_http_servers() -> None:
    spec = parse_mcp_server("web=https://example.test:8443/mcp")
    assert spec == McpServerSpec("web", url="https://example.test:8443/mcp")
    assert spec.target == "https://example.test:8443/mcp"
    assert parse_mcp_server("w=http://127.0.0.1:9/mcp").url == "http://127.0.0.1:9/mcp"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("fs", "expected NAME=COMMAND or NAME=URL"),
        ("=node srv", "expected NAME=COMMAND or NAME=URL"),
        ("fs=", "expected NAME=COMMAND or NAME=URL"),
        ("fs=   ", "expected NAME=COMMAND or NAME=URL"),
        ("Fs=node", "MCP server name 'Fs'"),
        ("f.s=node", "MCP server name 'f.s'"),
        ("1fs=node", "MCP server name '1fs'"),
        (f"{'a' * 33}=node", "MCP server name"),
        ("fs=node 'unclosed", "cannot split"),
        ("fs=http://", "not a usable http(s) URL"),
        ("fs=https://host/a b", "not a usable http(s) URL"),
    ],
)
def test_bad_values_say_why_in_one_line(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)) as caught:
        parse_mcp_server(value)
    assert "\n" not in str(caught.value)


def test_a_name_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="more than once: fs"):
        parse_mcp_servers(["fs=a", "git=b", "fs=c"])
    assert [s.name for s in parse_mcp_servers(["fs=a", "git=b"])] == ["fs", "git"]


def test_tool_names_are_mapped_to_amcp_rules() -> None:
    names = mount_names(
        "fs", ["read_text_file", "readFile", "list.dir", "Get URL", "HTTPGet", "日本"]
    )
    assert names["read_text_file"] == "fs.read_text_file"  # already fine: unchanged
    assert names["readFile"] == "fs.read_file"
    assert names["list.dir"] == "fs.list.dir"
    assert names["Get URL"] == "fs.get_url"
    assert names["HTTPGet"] == "fs.httpget"
    assert names["日本"] == "fs.tool"


def test_clashes_keep_the_unmapped_name_plain_and_hash_the_others() -> None:
    names = mount_names("fs", ["readFile", "read_file"])
    assert names["read_file"] == "fs.read_file"
    assert re.fullmatch(r"fs\.read_file-[0-9a-f]{8}", names["readFile"])
    # the same name whatever else the server lists
    assert mount_names("fs", ["readFile", "read_file", "other"])["readFile"] == names["readFile"]


def test_long_names_are_cut_with_a_hash_that_keeps_them_apart() -> None:
    a, b = "x" * 100 + "a", "x" * 100 + "b"
    names = mount_names("fs", [a, b])
    assert len(names[a]) == len(names[b]) == 64 and names[a] != names[b]


server_names = st.from_regex(r"[a-z][a-z0-9_-]{0,31}", fullmatch=True)
mcp_tool_names = st.lists(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=130),
    max_size=12,
)


@given(server_names, mcp_tool_names)
def test_every_mapped_name_is_a_valid_distinct_tool_name(server: str, tools: list[str]) -> None:
    names = mount_names(server, tools)
    assert set(names) == set(tools)
    assert len(set(names.values())) == len(names)
    for name in names.values():
        assert TOOL_NAME.match(name), name
        assert name.startswith(f"{server}.")
    assert mount_names(server, list(reversed(tools))) == names


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--mcp", "fs"], "expected NAME=COMMAND or NAME=URL"),
        (["--mcp", "Bad=node x"], "MCP server name 'Bad'"),
        (["--mcp", "fs=a", "--mcp", "fs=b"], "MCP server name given more than once: fs"),
    ],
)
def test_amcp_agent_refuses_a_bad_mcp_value_with_exit_2(args: list[str], reason: str) -> None:
    # NATS at a closed port: the refusal comes before any connection is tried
    done = amcp(
        "--role", "s1", "--nats", "nats://127.0.0.1:1", *args, program="amcp-agent", timeout=30
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert reason in lines[-1]
    assert len([line for line in lines if reason in line]) == 1
