"""OpenSSF Model Signing interop against the real ``model-signing`` package: a bundle relgate
signs is accepted by stock ``model_signing verify key`` (its CLI and its API) and carries the
tensor root; relgate verifies bundles model_signing signed alone. Keys are generated here;
nothing touches the network."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import relgate
from relgate.attest import oms
from relgate.cli import app
from relgate.testing.keys import write_ec_keypair
from safetensors.numpy import save_file
from typer.testing import CliRunner

pytest.importorskip("model_signing")
from model_signing import hashing, signing, verifying

runner = CliRunner()


def _keys(tmp: Path, name: str) -> tuple[Path, Path]:
    return write_ec_keypair(tmp, name)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    out = tmp_path / "model"
    out.mkdir()
    rng = np.random.default_rng(11)
    for s in range(2):
        save_file(
            {f"l{s}.w": rng.standard_normal((16, 8)).astype(np.float32)},
            str(out / f"model-{s + 1:05d}-of-00002.safetensors"),
        )
    (out / "config.json").write_text('{"hidden": 8}\n')
    return out


def _stock_verify(model: Path, sig: Path, pub: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "model_signing",
            "verify",
            "key",
            "--signature",
            str(sig),
            "--public_key",
            str(pub),
            str(model),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_relgate_bundle_verifies_with_stock_model_signing(model: Path, tmp_path: Path) -> None:
    priv, pub = _keys(tmp_path, "k")
    sig = tmp_path / "model.sig"
    r = runner.invoke(
        app, ["attest", "sign", str(model), "--private-key", str(priv), "-o", str(sig), "--json"]
    )
    assert r.exit_code == 0, r.output
    root = relgate.attest(model).root
    assert json.loads(r.stdout)["root"] == root
    # the real package's CLI and API accept it
    cli = _stock_verify(model, sig, pub)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(model, sig)
    # the tensor root travels in the signed payload
    payload = json.loads(base64.b64decode(json.loads(sig.read_text())["dsseEnvelope"]["payload"]))
    assert payload["predicate"]["relgateTensorMerkleBlake3V1"]["root"] == root
    assert {x["name"] for x in payload["predicate"]["resources"]} == {
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    }
    r = runner.invoke(
        app, ["attest", "verify", str(model), "--oms", str(sig), "--public-key", str(pub), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tensor_root"] == root


def test_a_signature_inside_the_model_directory_is_not_signed(model: Path, tmp_path: Path) -> None:
    priv, pub = _keys(tmp_path, "k")
    sig = model / "model.sig"
    r = runner.invoke(
        app, ["attest", "sign", str(model), "--private-key", str(priv), "-o", str(sig)]
    )
    assert r.exit_code == 0, r.output
    assert _stock_verify(model, sig, pub).returncode == 0


def test_relgate_verifies_a_bundle_model_signing_signed(model: Path, tmp_path: Path) -> None:
    priv, pub = _keys(tmp_path, "k")
    sig = tmp_path / "ms.sig"
    signing.Config().use_elliptic_key_signer(private_key=priv).set_hashing_config(
        hashing.Config()
    ).sign(model, sig)
    r = runner.invoke(
        app, ["attest", "verify", str(model), "--oms", str(sig), "--public-key", str(pub), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "ok": True,
        "model_name": "model",
        "files": [
            "config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ],
        "tensor_root": None,
    }


def test_changed_files_and_wrong_keys_are_refused(model: Path, tmp_path: Path) -> None:
    priv, pub = _keys(tmp_path, "k")
    _, other_pub = _keys(tmp_path, "other")
    sig = tmp_path / "model.sig"
    assert (
        runner.invoke(
            app, ["attest", "sign", str(model), "--private-key", str(priv), "-o", str(sig)]
        ).exit_code
        == 0
    )
    r = runner.invoke(
        app, ["attest", "verify", str(model), "--oms", str(sig), "--public-key", str(other_pub)]
    )
    assert r.exit_code != 0 and "model_signing verification failed" in r.output
    shard = model / "model-00001-of-00002.safetensors"
    raw = bytearray(shard.read_bytes())
    raw[-1] ^= 1
    shard.write_bytes(bytes(raw))
    assert _stock_verify(model, sig, pub).returncode != 0
    r = runner.invoke(
        app, ["attest", "verify", str(model), "--oms", str(sig), "--public-key", str(pub)]
    )
    assert r.exit_code != 0 and "model_signing verification failed" in r.output


def test_a_forged_tensor_root_cannot_be_slipped_in(model: Path, tmp_path: Path) -> None:
    """Editing the root inside a signed bundle breaks the signature (the root is signed)."""
    priv, pub = _keys(tmp_path, "k")
    sig = tmp_path / "model.sig"
    assert (
        runner.invoke(
            app, ["attest", "sign", str(model), "--private-key", str(priv), "-o", str(sig)]
        ).exit_code
        == 0
    )
    bundle = json.loads(sig.read_text())
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["relgateTensorMerkleBlake3V1"]["root"] = "00" * 32
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    sig.write_text(json.dumps(bundle))
    r = runner.invoke(
        app, ["attest", "verify", str(model), "--oms", str(sig), "--public-key", str(pub)]
    )
    assert r.exit_code != 0 and "model_signing verification failed" in r.output


def test_not_a_bundle_is_a_clear_error(model: Path, tmp_path: Path) -> None:
    _, pub = _keys(tmp_path, "k")
    bad = tmp_path / "bad.sig"
    bad.write_text("{not json")
    r = runner.invoke(
        app, ["attest", "verify", str(model), "--oms", str(bad), "--public-key", str(pub)]
    )
    assert r.exit_code != 0 and "not a model_signing bundle" in r.output
    r = runner.invoke(app, ["attest", "verify", str(model), "--oms", str(bad)])
    assert r.exit_code != 0 and "--public-key" in r.output


def _export(model: Path, att_file: Path) -> list[str]:
    return ["attest", "export", str(model), "--attestation", str(att_file)]


def test_export_an_attestation_file_as_a_bundle_stock_verifies(model: Path, tmp_path: Path) -> None:
    priv, pub = _keys(tmp_path, "k")
    att_file = tmp_path / "att.json"
    r = runner.invoke(app, ["attest", str(model), "-o", str(att_file)])
    assert r.exit_code == 0, r.output
    root = json.loads(att_file.read_text())["root"]
    sig = tmp_path / "exported.sig"
    r = runner.invoke(
        app,
        [*_export(model, att_file), "--oms", str(sig), "--private-key", str(priv), "--json"],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["root"] == root
    stock = _stock_verify(model, sig, pub)
    assert stock.returncode == 0, stock.stdout + stock.stderr
    assert oms.verify(model, sig, pub).tensor_root == root

    statement = tmp_path / "statement.json"
    r = runner.invoke(
        app,
        [
            "attest",
            "export",
            str(model),
            "--attestation",
            str(att_file),
            "--in-toto",
            str(statement),
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(statement.read_text())["subject"][0]["digest"] == {
        "tensorMerkleBlake3V1": root
    }


def test_export_refuses_an_attestation_the_bytes_do_not_have(model: Path, tmp_path: Path) -> None:
    """An export signs the bytes on disk: an attestation of other bytes is refused, both roots
    named, and no bundle is written."""
    priv, _ = _keys(tmp_path, "k")
    att_file = tmp_path / "att.json"
    assert runner.invoke(app, ["attest", str(model), "-o", str(att_file)]).exit_code == 0
    rng = np.random.default_rng(12)
    save_file(
        {"l0.w": rng.standard_normal((16, 8)).astype(np.float32)},
        str(model / "model-00001-of-00002.safetensors"),
    )
    sig = tmp_path / "exported.sig"
    r = runner.invoke(
        app,
        [*_export(model, att_file), "--oms", str(sig), "--private-key", str(priv)],
    )
    assert r.exit_code == 7, r.output
    assert "not the checkpoint this attestation describes" in r.output
    assert json.loads(att_file.read_text())["root"] in r.output
    assert not sig.exists()


def test_export_needs_one_format_and_a_key(model: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["attest", "export", str(model)])
    assert r.exit_code == 3 and "--oms BUNDLE or --in-toto FILE" in r.output
    r = runner.invoke(app, ["attest", "export", str(model), "--oms", str(tmp_path / "x.sig")])
    assert r.exit_code == 3 and "--private-key" in r.output
    assert not (tmp_path / "x.sig").exists()
