"""Subject names of amcp's own traffic, namespaced by cluster: `amcp.<cluster>.<area>...`.

User subjects passed to `Bus.publish` are used as given; only amcp's system traffic lives
here, so two clusters sharing a NATS server never see each other's control messages
(and, since the MAC covers the subject, cannot inject into each other either).
"""

from __future__ import annotations

import re

from amcp.errors import ConfigError

__all__ = ["Subjects", "validate_subject", "validate_token"]

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def validate_token(value: str, what: str = "name") -> str:
    """A single subject token (cluster, agent id, role): letters, digits, '-' and '_'."""
    if not _TOKEN.match(value):
        raise ConfigError(f"invalid {what} {value!r}: use 1-64 letters, digits, '-' or '_'")
    return value


_SPACES = {" ": "a space", "\t": "a tab", "\n": "a newline", "\r": "a carriage return"}


def _problem(subject: str, *, wildcards: bool = False) -> str | None:
    """What is wrong with `subject` as a NATS subject, in a few words, or None if nothing."""
    if not subject:
        return "it is empty"
    for at, char in enumerate(subject):
        if char.isspace():
            name = _SPACES.get(char, f"whitespace {char!r}")
            return f"it holds {name} at position {at}; subjects have no whitespace"
    tokens = subject.split(".")
    if not all(tokens):
        return "it has an empty token (a leading, trailing or doubled '.')"
    for i, token in enumerate(tokens):
        if token in ("*", ">"):
            if not wildcards:
                return "wildcards ('*', '>') are for listening, not publishing"
            if token == ">" and i != len(tokens) - 1:
                return "'>' must be the last token"
        elif "*" in token or ">" in token:
            return f"'*' and '>' must be whole tokens, not part of {token!r}"
    return None


def validate_subject(subject: str, *, wildcards: bool = False) -> str:
    """A NATS subject: dot-separated tokens, no spaces; wildcards only where allowed."""
    problem = _problem(subject, wildcards=wildcards)
    if problem is not None:
        kind = "subject" if wildcards else "publish subject"
        raise ConfigError(f"invalid {kind} {subject!r}: {problem}")
    return subject


class Subjects:
    """All system subjects of one cluster."""

    def __init__(self, cluster: str = "default") -> None:
        self.cluster = validate_token(cluster, "cluster name")
        self.root = f"amcp.{cluster}"

    def area(self, *tokens: str) -> str:
        """`amcp.<cluster>.<token>...`, for the packages that own an area (ctx, vote, ...)."""
        return ".".join((self.root, *tokens))
