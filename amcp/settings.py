"""Settings shared by the CLIs and agents: flags override environment variables, and a
number read from the environment that does not parse is a ConfigError naming the variable."""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

from amcp.errors import ConfigError
from amcp.keyring import DEFAULT_KEYRING_PATH
from amcp.security import ConnectionSecurity
from amcp.subjects import validate_token

__all__ = ["DEFAULT_NATS_URL", "Settings", "env_number"]

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


class Settings(BaseModel):
    """Where to connect, which keys to use, which cluster namespace to join."""

    model_config = ConfigDict(frozen=True)

    nats_urls: tuple[str, ...] = (DEFAULT_NATS_URL,)
    keyring_path: Path = DEFAULT_KEYRING_PATH
    cluster: str = "default"
    security: ConnectionSecurity = ConnectionSecurity()

    @field_validator("nats_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            value = [u.strip() for u in value.split(",") if u.strip()]
        urls = tuple(value)  # type: ignore[arg-type]
        if not urls:
            raise ValueError("at least one NATS URL is needed")
        for url in urls:
            if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
                raise ValueError(f"{url!r} is not a NATS URL (nats://host:port)")
            try:
                parsed = urlsplit(url)
                parsed.port  # noqa: B018 - raises on a port that is not 0-65535
            except ValueError:
                parsed = None
            if parsed is None or not parsed.hostname:
                raise ValueError(f"{url!r} is not a NATS URL: bad host or port (nats://host:port)")
        return urls

    @field_validator("cluster")
    @classmethod
    def _cluster_token(cls, value: str) -> str:
        return validate_token(value, "cluster name")

    @classmethod
    def resolve(
        cls,
        nats: str | None = None,
        keyring: str | None = None,
        cluster: str | None = None,
        **security: str | None,
    ) -> Settings:
        """Flags first, then AMCP_NATS_URL / AMCP_KEYRING / AMCP_CLUSTER, then defaults.
        `security` holds the flags of ConnectionSecurity.from_env (user, creds, tls_ca...)."""
        env = os.environ
        return cls(
            nats_urls=nats or env.get("AMCP_NATS_URL") or DEFAULT_NATS_URL,
            keyring_path=Path(
                keyring or env.get("AMCP_KEYRING") or DEFAULT_KEYRING_PATH
            ).expanduser(),
            cluster=cluster or env.get("AMCP_CLUSTER") or "default",
            security=ConnectionSecurity.from_env(**security),
        )


def env_number(name: str, default: float, minimum: float | None = None) -> float:
    """$`name` as a number, `default` when it is unset or empty (as for every AMCP_*
    variable); refused with a ConfigError when it is not a number or is below `minimum`."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"${name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"${name} must be a finite number, not {raw!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"${name} must be at least {minimum:g}")
    return value
