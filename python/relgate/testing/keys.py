"""Throwaway signing keys for tests and benchmarks (never for real signing)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["write_ec_keypair"]


def write_ec_keypair(directory: Path, name: str) -> tuple[Path, Path]:
    """A fresh P-256 key pair written as ``NAME.pem`` (PKCS#8, unencrypted) and ``NAME.pub``
    (SubjectPublicKeyInfo PEM) in ``directory``: what model_signing's key signer and verifier
    read. Returns (private, public)."""
    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = directory / f"{name}.pem", directory / f"{name}.pub"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub
