"""TLS when given a certificate and key: TLS clients work, plaintext clients do not."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from relgate import errors
from relgate.client import RelgateClient
from relgate.service.server import BackgroundServer
from service_helpers import manifest_bytes


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relgate-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_round_trip(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with BackgroundServer(tmp_path / "data", tls_cert=cert, tls_key=key) as server:
        assert server.tls
        assert server.admin_key_path is not None
        admin_key = server.admin_key_path.read_text().strip()
        with RelgateClient(server.address, api_key=admin_key, tls_ca=cert) as client:
            assert client.register_release(manifest_bytes(1)).created
        with (
            RelgateClient(server.address, api_key=admin_key, timeout=5) as plain,
            pytest.raises(errors.RelgateError),
        ):
            plain.list_releases()


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    with pytest.raises(errors.InvalidInputError, match="both"):
        BackgroundServer(tmp_path / "data", tls_cert=cert).start()
