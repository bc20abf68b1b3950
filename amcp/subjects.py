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


def validate_subject(subject: str, *, wildcards: bool = False) -> str:
    """A NATS subject: dot-separated tokens, no spaces; wildcards only where allowed."""
    tokens = subject.split(".")
    ok = bool(subject) and all(tokens) and not any(c.isspace() for c in subject)
    if ok:
        for i, token in enumerate(tokens):
            if token in ("*", ">"):
                ok = wildcards and (token == "*" or i == len(tokens) - 1)
            elif "*" in token or ">" in token:
                ok = False
            if not ok:
                break
    if not ok:
        kind = "subject" if wildcards else "publish subject (no wildcards)"
        raise ConfigError(f"invalid {kind} {subject!r}")
    return subject


class Subjects:
    """All system subjects of one cluster."""

    def __init__(self, cluster: str = "default") -> None:
        self.cluster = validate_token(cluster, "cluster name")
        self.root = f"amcp.{cluster}"

    def area(self, *tokens: str) -> str:
        """`amcp.<cluster>.<token>...`, for the packages that own an area (ctx, vote, ...)."""
        return ".".join((self.root, *tokens))
