"""How a client proves itself to NATS and checks the server: user and password, a creds
file or an nkey seed, and TLS (a CA to trust, a client certificate for mutual TLS).

NATS authentication decides which subjects a connection may use (an S1 may not publish on
the consensus subjects); amcp's HMAC keyring decides which frames are genuine. The two are
independent: a leaked password does not forge frames, and a leaked key does not widen
subject permissions.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import ssl
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["ConnectionSecurity"]


_START_TLS_EOF = "returning true from eof_received() has no effect when using ssl"


class _StartTlsEof(logging.Filter):
    """Drops asyncio's warning when a TLS server closes a nats-py connection. nats-py
    upgrades its socket with `loop.start_tls`, which never calls the StreamReaderProtocol's
    `connection_made` (call_connection_made=False), so the protocol thinks it is not over TLS
    and asks to stay half open; sslproto ignores that and closes, as it should. The warning
    is about nats-py's protocol object, not a fault: only that exact message is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _START_TLS_EOF


def _quiet_start_tls_eof() -> None:
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _StartTlsEof) for f in log.filters):
        log.addFilter(_StartTlsEof())


class ConnectionSecurity(BaseModel):
    """NATS credentials and TLS options of one connection; all empty means none."""

    model_config = ConfigDict(frozen=True)

    user: str | None = None
    password: str | None = None
    creds: Path | None = None  # a NATS .creds file (JWT and nkey seed)
    nkey: Path | None = None  # a file holding an nkey seed (SU...)
    tls_ca: Path | None = None  # CA bundle that signed the servers' certificates
    tls_cert: Path | None = None  # client certificate, for servers that verify clients
    tls_key: Path | None = None
    tls_hostname: str | None = None  # the name to check in the server's certificate

    @model_validator(mode="after")
    def _consistent(self) -> ConnectionSecurity:
        kinds = [
            k for k, v in (("user", self.user), ("creds", self.creds), ("nkey", self.nkey)) if v
        ]
        if len(kinds) > 1:
            raise ValueError(f"give one NATS credential, not {' and '.join(kinds)}")
        if self.password is not None and not self.user:
            raise ValueError("a NATS password needs a NATS user")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("a TLS client certificate needs its key, and a key its certificate")
        for name in ("creds", "nkey", "tls_ca", "tls_cert", "tls_key"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{name.replace('_', ' ')} file {str(path)!r} does not exist")
        if (self.creds or self.nkey) and importlib.util.find_spec("nkeys") is None:
            raise ValueError("NATS creds and nkey files need the nkeys package: pip install nkeys")
        return self

    @classmethod
    def from_env(cls, **flags: Any) -> ConnectionSecurity:
        """Flags first, then AMCP_NATS_USER, AMCP_NATS_PASSWORD (or AMCP_NATS_PASSWORD_FILE,
        as docker secrets give it), AMCP_NATS_CREDS, AMCP_NATS_NKEY, AMCP_TLS_CA,
        AMCP_TLS_CERT, AMCP_TLS_KEY, AMCP_TLS_HOSTNAME."""
        env = os.environ

        def pick(name: str, var: str) -> Any:
            return flags.get(name) or env.get(var) or None

        password_file = pick("password_file", "AMCP_NATS_PASSWORD_FILE")
        password = env.get("AMCP_NATS_PASSWORD") or None
        if password_file:
            try:
                password = Path(password_file).read_text().strip()
            except OSError as exc:
                raise ValueError(f"cannot read the NATS password file: {exc}") from None
        return cls(
            user=pick("user", "AMCP_NATS_USER"),
            password=password,
            creds=pick("creds", "AMCP_NATS_CREDS"),
            nkey=pick("nkey", "AMCP_NATS_NKEY"),
            tls_ca=pick("tls_ca", "AMCP_TLS_CA"),
            tls_cert=pick("tls_cert", "AMCP_TLS_CERT"),
            tls_key=pick("tls_key", "AMCP_TLS_KEY"),
            tls_hostname=pick("tls_hostname", "AMCP_TLS_HOSTNAME"),
        )

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None or self.tls_cert is not None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts `tls_ca` (or the system store) and presents the
        client certificate if there is one."""
        _quiet_start_tls_eof()
        ctx = ssl.create_default_context(cafile=str(self.tls_ca) if self.tls_ca else None)
        if self.tls_cert is not None:
            ctx.load_cert_chain(str(self.tls_cert), str(self.tls_key))
        return ctx

    def nats_options(self) -> dict[str, Any]:
        """The nats-py `connect` keyword arguments for these settings."""
        options: dict[str, Any] = {}
        if self.user:
            options["user"] = self.user
            options["password"] = self.password or ""
        if self.creds:
            options["user_credentials"] = str(self.creds)
        if self.nkey:
            options["nkeys_seed"] = str(self.nkey)
        if self.tls:
            options["tls"] = self.ssl_context()
        if self.tls_hostname:
            options["tls_hostname"] = self.tls_hostname
        return options
