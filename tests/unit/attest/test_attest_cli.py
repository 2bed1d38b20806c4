"""`relgate attest ...` and `relgate reattest` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import relgate
from relgate.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def _flip(src: Path, dst: Path, offset: int) -> None:
    raw = bytearray(src.read_bytes())
    raw[offset] ^= 0x80
    dst.write_bytes(bytes(raw))


def test_attest_json_and_outputs(checkpoint: Path, tmp_path: Path) -> None:
    out, st = tmp_path / "att.json", tmp_path / "st.json"
    result = runner.invoke(
        app,
        [
            "attest",
            str(checkpoint),
            "--json",
            "-o",
            str(out),
            "--in-toto",
            str(st),
            "--file-digests",
        ],
    )
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    att = relgate.attest(checkpoint, file_digests=True)
    assert d["root"] == att.root and d["scheme"] == "tensor-merkle-blake3-v1"
    assert d["tensors"] == 7 and d["bytes"] == att.bytes
    assert d["files"][0]["blake3"] == att.files[0].blake3
    assert json.loads(out.read_text()) == d
    assert json.loads(st.read_text())["subject"][0]["digest"]["tensorMerkleBlake3V1"] == att.root


def test_attest_human_and_spot_check(checkpoint: Path) -> None:
    result = runner.invoke(app, ["attest", str(checkpoint)])
    assert result.exit_code == 0 and "tensor-merkle-blake3-v1" in result.output
    result = runner.invoke(app, ["attest", str(checkpoint), "--spot-check", "2", "--json"])
    d = json.loads(result.stdout)
    assert d["root"] is None and sum(t["leaf"] is not None for t in d["leaves"]) == 2


def test_verify_exit_codes_and_named_tensors(checkpoint: Path, tmp_path: Path) -> None:
    att = relgate.attest(checkpoint)
    assert att.root is not None
    ok = runner.invoke(app, ["attest", "verify", str(checkpoint), "--root", att.root])
    assert ok.exit_code == 0 and "ok" in ok.output
    tampered = tmp_path / "t.safetensors"
    _flip(checkpoint, tampered, att.tensor("layer.0.weight").offset + 5)
    bad = runner.invoke(app, ["attest", "verify", str(tampered), "--root", att.root])
    assert bad.exit_code == 1 and "mismatch" in bad.output
    ref = tmp_path / "att.json"
    ref.write_text(json.dumps(att.to_dict()))
    named = runner.invoke(
        app, ["attest", "verify", str(tampered), "--root", att.root, "--against", str(ref)]
    )
    assert named.exit_code == 1
    assert "changed: layer.0.weight" in named.output
    as_json = runner.invoke(
        app,
        ["attest", "verify", str(tampered), "--root", att.root, "--against", str(ref), "--json"],
    )
    assert json.loads(as_json.stdout)["changed"] == ["layer.0.weight"]
    usage = runner.invoke(app, ["attest", "verify", str(tampered), "--root", "xyz"])
    assert usage.exit_code == 3


def test_prove_and_check_tensor(checkpoint: Path, tmp_path: Path) -> None:
    att = relgate.attest(checkpoint)
    assert att.root is not None
    proof_file = tmp_path / "proof.json"
    result = runner.invoke(
        app, ["attest", "prove", str(checkpoint), "--tensor", "scale", "-o", str(proof_file)]
    )
    assert result.exit_code == 0, result.output
    proof = json.loads(result.stdout)
    assert proof["name"] == "scale" and proof["root"] == att.root
    assert relgate.verify_inclusion(proof, att.root)
    check = ["attest", "check-tensor", str(checkpoint), "--proof", str(proof_file)]
    assert runner.invoke(app, [*check, "--root", att.root]).exit_code == 0
    assert runner.invoke(app, [*check, "--root", "0" * 64]).exit_code == 1
    missing = runner.invoke(app, ["attest", "prove", str(checkpoint), "--tensor", "nope"])
    assert missing.exit_code == 5
    wrong_root = runner.invoke(
        app, ["attest", "prove", str(checkpoint), "--tensor", "scale", "--root", "0" * 64]
    )
    assert wrong_root.exit_code == 7


def test_reattest_reports_drift(checkpoint: Path, tmp_path: Path) -> None:
    att = relgate.attest(checkpoint)
    copies = []
    for i in range(3):
        p = tmp_path / f"c{i}.safetensors"
        p.write_bytes(checkpoint.read_bytes())
        copies.append(p)
    _flip(checkpoint, copies[1], att.tensor("scale").offset)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x01\x02")
    expect = tmp_path / "expect.txt"
    expect.write_text("".join(f"{att.root}  {p}\n" for p in copies))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{copies[1]}\n{copies[2]}\n# comment\n")
    report = tmp_path / "report.parquet"
    result = runner.invoke(
        app,
        [
            "reattest",
            str(copies[0]),
            str(broken),
            "--list",
            str(listing),
            "--expect",
            str(expect),
            "--report",
            str(report),
            "--json",
            "--workers",
            "3",
        ],
    )
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert [r["status"] for r in rows] == ["ok", "error", "drift", "ok"]
    assert rows[2]["root"] != rows[2]["expected"] == att.root
    assert "file-too-small" in rows[1]["error"]
    df = pl.read_parquet(report)
    assert df["status"].to_list() == ["ok", "error", "drift", "ok"]
    # A previous JSON report works as the next run's expectations; all match now.
    report_json = tmp_path / "report.json"
    first = runner.invoke(app, ["reattest", str(copies[0]), "--report", str(report_json)])
    assert first.exit_code == 0 and "new" in first.output
    again = runner.invoke(app, ["reattest", str(copies[0]), "--expect", str(report_json), "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)[0]["status"] == "ok"
    assert runner.invoke(app, ["reattest"]).exit_code == 3
