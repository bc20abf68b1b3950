"""TLS material for a cluster: a private CA, one server certificate for every NATS node
(client and route ports, with each node's names and addresses), and one client
certificate for mutual TLS. Made with the `cryptography` package; keys are EC P-256 and
written with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from amcp.files import private_folder, write_private

__all__ = ["TlsFiles", "make_tls"]

_VALID = datetime.timedelta(days=825)


@dataclass(frozen=True)
class TlsFiles:
    """Where a cluster's TLS files are."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server-cert.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server-key.pem"

    @property
    def client_cert(self) -> Path:
        return self.folder / "client-cert.pem"

    @property
    def client_key(self) -> Path:
        return self.folder / "client-key.pem"

    def exists(self) -> bool:
        return all(
            p.is_file()
            for p in (self.ca, self.server_cert, self.server_key, self.client_cert, self.client_key)
        )


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "amcp"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    *,
    ca: bool = False,
    sans: list[x509.GeneralName] | None = None,
    usages: list[x509.ObjectIdentifier] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_tls(folder: Path, hosts: Iterable[str]) -> TlsFiles:
    """A fresh CA, a server certificate valid for `hosts` (names or IP addresses, plus
    localhost and 127.0.0.1) and a client certificate, written into `folder`."""
    files = TlsFiles(Path(folder))
    private_folder(files.folder)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("amcp cluster CA")
    ca_cert = _issue("amcp cluster CA", ca_key, ca_key, ca_name, ca=True)
    names = list(dict.fromkeys([*hosts, "localhost", "127.0.0.1"]))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue(
        "amcp nats-server",
        server_key,
        ca_key,
        ca_name,
        sans=[_san(n) for n in names],
        # routes dial each other, so a server's certificate also serves as a client's
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _issue(
        "amcp client", client_key, ca_key, ca_name, usages=[ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    files.ca.write_text(_cert_pem(ca_cert))
    files.server_cert.write_text(_cert_pem(server_cert))
    write_private(files.server_key, _key_pem(server_key))
    files.client_cert.write_text(_cert_pem(client_cert))
    write_private(files.client_key, _key_pem(client_key))
    return files
