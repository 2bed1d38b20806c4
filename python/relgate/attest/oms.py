"""OpenSSF Model Signing (OMS, PyPI ``model-signing``) bundles that also carry the tensor
root: one signed bundle that stock ``model_signing verify`` accepts and relgate reads.

:func:`sign` hashes the model with model_signing's own hashing configuration (the same
per-file manifest its CLI signs), builds its in-toto payload (predicate
``https://model_signing/signature/v1.0``), adds the relgate attestation to the predicate
under :data:`PREDICATE_KEY` (model_signing v1.0 verifiers ignore predicate fields they do
not know), and signs it with model_signing's elliptic-curve key signer into a Sigstore
bundle with a DSSE envelope. The added field is inside the signed payload, so the key
that signs the files also signs the root.

:func:`verify` runs model_signing's key verifier on the bundle (signature, then every file
of the model against the signed manifest) and, when the bundle carries a relgate
attestation, checks its leaves against its root and the model's tensor root against it.
Bundles model_signing signed alone verify as well, without a tensor root.

Needs the ``oms`` extra (``pip install 'relgate[oms]'``); key-based signing only here
(Sigstore's keyless flow needs the network).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relgate.attest.core import Attestation, PathLike, attest, load_attestation
from relgate.errors import IntegrityError, InvalidInputError

PREDICATE_KEY = "relgateTensorMerkleBlake3V1"
OMS_PREDICATE_TYPE = "https://model_signing/signature/v1.0"
MAX_BUNDLE_BYTES = 64 << 20

__all__ = [
    "MAX_BUNDLE_BYTES",
    "OMS_PREDICATE_TYPE",
    "PREDICATE_KEY",
    "OmsResult",
    "matching_attestation",
    "sign",
    "verify",
]


def _model_signing() -> Any:
    try:
        import model_signing
    except ImportError:
        raise InvalidInputError(
            "OMS bundles need the model-signing package: pip install 'relgate[oms]'"
        ) from None
    return model_signing


def _ignored(model: Path, paths: Iterable[PathLike]) -> list[Path]:
    """Paths inside the model directory, relative to it (what model_signing's CLI does
    with --ignore-paths and the signature's own path)."""
    root = model.resolve()
    out = []
    for p in paths:
        try:
            out.append(Path(p).resolve().relative_to(root))
        except ValueError:
            continue
    return out


@dataclass(frozen=True, slots=True)
class OmsResult:
    """What a bundle said and what checked out: the model name it signs, the files it
    lists, and the tensor root it carries (None for a bundle model_signing made alone)."""

    model_name: str
    files: tuple[str, ...]
    tensor_root: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "model_name": self.model_name,
            "files": list(self.files),
            "tensor_root": self.tensor_root,
        }


def sign(
    path: PathLike,
    private_key: PathLike,
    signature: PathLike,
    *,
    attestation: PathLike | Mapping[str, Any] | Attestation | None = None,
    password: str | None = None,
    ignore_paths: Iterable[PathLike] = (),
    cache_dir: PathLike | None = None,
) -> Attestation:
    """Sign the model at ``path`` with the PEM EC private key ``private_key`` (P-256/384/521,
    as model_signing accepts) into the bundle ``signature``; return the attestation that
    travels in it (``attestation`` when given: a registered one, after checking it is the
    model's, see :func:`matching_attestation`)."""
    ms = _model_signing()
    from model_signing._signing import sign_ec_key
    from model_signing._signing import signing as ms_signing

    model = Path(path)
    att = matching_attestation(model, attestation, cache_dir=cache_dir)
    ignored = _ignored(model, [*ignore_paths, signature])
    hashing = ms.hashing.Config().set_ignored_paths(paths=ignored)
    manifest = hashing.hash(model)
    payload = ms_signing.Payload(manifest)
    payload.statement.pb.predicate.update({PREDICATE_KEY: att.to_dict()})
    try:
        signer = sign_ec_key.Signer(Path(private_key), password)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"{os.fspath(private_key)}: not a usable EC private key: {exc}"
        ) from None
    signer.sign(payload).write(Path(signature))
    return att


def matching_attestation(
    model: PathLike,
    attestation: PathLike | Mapping[str, Any] | Attestation | None,
    *,
    cache_dir: PathLike | None = None,
) -> Attestation:
    """The attestation to export for the model at ``model``: measured now when
    ``attestation`` is None; otherwise the given one (a file, a dict such as a manifest's
    ``weights_attestation``, or a value), whose leaves must reproduce its root and whose root
    must be the model's as measured now. An export signs the bytes on disk, so it never
    vouches for a root those bytes do not have (:class:`IntegrityError`, rule ``root``)."""
    measured = attest(model, cache_dir=cache_dir)
    if attestation is None:
        return measured
    supplied = load_attestation(attestation)
    if supplied.root is None:
        raise InvalidInputError("a spot check has no root to export; attest fully")
    if supplied.root != measured.root:
        raise IntegrityError(
            f"{os.fspath(model)} is not the checkpoint this attestation describes (run "
            f"`relgate attest verify {os.fspath(model)} --root {supplied.root} --against "
            "ATTESTATION.json` to name the tensors that differ)",
            rule="root",
            expected=supplied.root,
            actual=measured.root,
        )
    return supplied


def _payload(raw: bytes) -> dict[str, Any]:
    try:
        bundle = json.loads(raw)
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"not a model_signing bundle: {exc!r}") from None
    if not isinstance(statement, dict) or statement.get("predicateType") != OMS_PREDICATE_TYPE:
        raise InvalidInputError("not a model_signing v1.0 bundle")
    return statement


def verify(
    path: PathLike,
    signature: PathLike,
    public_key: PathLike,
    *,
    ignore_paths: Iterable[PathLike] = (),
) -> OmsResult:
    """Verify the OMS bundle ``signature`` for the model at ``path`` with the PEM public key
    ``public_key``; :class:`IntegrityError` (rule ``oms``, or ``root`` for the tensor root)
    when anything does not check out. The bundle is read once: what is verified is what
    is parsed."""
    ms = _model_signing()
    sig = Path(signature)
    if sig.stat().st_size > MAX_BUNDLE_BYTES:
        raise InvalidInputError(f"{sig}: larger than {MAX_BUNDLE_BYTES} bytes")
    raw = sig.read_bytes()
    statement = _payload(raw)
    model = Path(path)
    with tempfile.TemporaryDirectory(prefix="relgate-oms-") as tmp:
        copy = Path(tmp) / "bundle.sig"
        copy.write_bytes(raw)
        config = ms.verifying.Config().use_elliptic_key_verifier(public_key=Path(public_key))
        config.set_hashing_config(
            ms.hashing.Config().set_ignored_paths(paths=_ignored(model, [*ignore_paths, sig]))
        )
        try:
            config.verify(model, copy)
        except ValueError as exc:
            raise IntegrityError(f"model_signing verification failed: {exc}", rule="oms") from None
        except Exception as exc:  # the cryptography / protobuf layers raise their own
            raise IntegrityError(
                f"model_signing verification failed: {type(exc).__name__}: {exc}", rule="oms"
            ) from None
    predicate = statement.get("predicate") or {}
    files = tuple(str(r.get("name")) for r in predicate.get("resources", ()))
    name = str((statement.get("subject") or [{}])[0].get("name", ""))
    carried = predicate.get(PREDICATE_KEY)
    if carried is None:
        return OmsResult(name, files, None)
    signed = load_attestation(_ints(carried))  # leaves must reproduce the signed root
    actual = attest(model)
    if actual.root != signed.root:
        raise IntegrityError(
            "the model's tensor root is not the one the bundle signs",
            rule="root",
            expected=signed.root,
            actual=actual.root,
        )
    return OmsResult(name, files, signed.root)


def _ints(value: Any) -> Any:
    """Protobuf Struct carries every number as a double: integral ones back to int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    return value
