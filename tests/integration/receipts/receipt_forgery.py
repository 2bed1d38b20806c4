"""Helpers for the forgery tests: a local RFC 3161 TSA under a test root CA, and the
attacks of issue 15 built as an attacker would (no key of the server's is used)."""

from __future__ import annotations

import copy
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relgate.canonical import canonical_json, sha256_hex
from relgate.receipts import BODY_FIELDS, MerkleLevels, TreeHeadSigner, leaf_hashes
from relgate.receipts.bundle import assemble_bundle
from relgate.service.server import RunningServer

TSA_CONFIG = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
serial = {serial}
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@dataclass(frozen=True)
class Tsa:
    """A TSA on 127.0.0.1: its URL and the PEM of the root its certificate chains to."""

    url: str
    root_pem: Path


def _openssl(*args: Any) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_tsa_certs(d: Path, name: str) -> tuple[Path, Path, Path]:
    """A root CA and a TSA certificate it issued (critical timeStamping EKU): returns
    (root PEM, TSA certificate PEM, TSA key PEM)."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", d / "root.key", "-out", d / "root.pem", "-days", "2",
        "-subj", f"/CN={name} root", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _openssl("req", *ec, "-keyout", d / "tsa.key", "-out", d / "tsa.csr", "-subj", f"/CN={name}")
    (d / "ext.cnf").write_text(
        "extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n"
        "basicConstraints=CA:FALSE\n"
    )
    _openssl(
        "x509", "-req", "-in", d / "tsa.csr", "-CA", d / "root.pem", "-CAkey", d / "root.key",
        "-CAcreateserial", "-out", d / "tsa.pem", "-days", "1", "-extfile", d / "ext.cnf",
    )  # fmt: skip
    (d / "serial").write_text("01\n")
    (d / "ts.cnf").write_text(TSA_CONFIG.format(serial=d / "serial"))
    return d / "root.pem", d / "tsa.pem", d / "tsa.key"


@contextmanager
def local_tsa(d: Path, name: str = "relgate test TSA") -> Iterator[Tsa]:
    """An RFC 3161 TSA over HTTP answering with ``openssl ts -reply``."""
    if shutil.which("openssl") is None:
        import pytest

        pytest.skip("openssl CLI not installed")
    root, cert, key = make_tsa_certs(d, name)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:  # openssl keeps its serial number in a file
                (d / "q.tsq").write_bytes(query)
                _openssl(
                    "ts", "-reply", "-queryfile", d / "q.tsq", "-signer", cert, "-inkey", key,
                    "-config", d / "ts.cnf", "-out", d / "r.tsr",
                )  # fmt: skip
                reply = (d / "r.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Tsa(f"http://127.0.0.1:{server.server_address[1]}/tsa", root)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class World:
    """What every forgery test starts from (built once per module by ``conftest.world``)."""

    server: RunningServer
    env: dict[str, str]
    #: The server's tree-head key, as `relgate receipts key` printed it.
    key: str
    bundle_path: Path
    anchor_dir: Path
    tsa: Tsa

    def bundle(self) -> dict[str, Any]:
        """A fresh copy of the genuine bundle."""
        loaded: dict[str, Any] = json.loads(self.bundle_path.read_text())
        return loaded


class NoKey:
    """Where a signer is asked for but the attacker holds none: only heads signed before
    may be reused."""

    def __init__(self, public_key_b64: str) -> None:
        self.public_key_b64 = public_key_b64

    def sign(self, **_: Any) -> Any:
        raise AssertionError("the attacker holds no key of the server's")


def _rows(receipts: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [
        (e["seq"], e["receipt_sha256"], canonical_json({k: e[k] for k in BODY_FIELDS}).decode())
        for e in receipts
    ]


def forge_gate_pass(bundle: dict[str, Any], mallory: TreeHeadSigner) -> dict[str, Any]:
    """Attack (a): the first gate_fail becomes a gate_pass; every later receipt's chain
    links, every hash, the tree, the proofs and every head are recomputed and signed with
    mallory's key. Anchors cannot be forged, so they are dropped."""
    receipts = copy.deepcopy(bundle["receipts"])
    target = next(e for e in receipts if e["kind"] == "gate_fail")
    target["kind"] = "gate_pass"
    target["evidence"] = {**target["evidence"], "verdict": "PASS"}
    renamed: dict[str, str] = {}
    for entry in receipts[target["seq"] :]:
        for link in ("prev_receipt_sha256", "prev_release_receipt_sha256"):
            entry[link] = renamed.get(entry[link], entry[link])
        new = sha256_hex(canonical_json({k: entry[k] for k in BODY_FIELDS}))
        renamed[entry["receipt_sha256"]] = new
        entry["receipt_sha256"] = new
    levels = MerkleLevels(leaf_hashes([e["receipt_sha256"] for e in receipts]))
    heads = [
        mallory.sign(
            tenant=h["tenant"],
            tree_size=h["tree_size"],
            root_hex=levels.prefix_root(h["tree_size"]).hex(),
            timestamp=h["timestamp"],
        ).to_dict()
        for h in bundle["tree_heads"]
    ]
    forged, _ = assemble_bundle(
        tenant=bundle["tenant"],
        rows=_rows(receipts),
        signer=mallory,
        stored_heads=heads,
        anchors=[],
        timestamp=bundle["exported_at"],
    )
    return forged


def cut_back(bundle: dict[str, Any], k: int) -> dict[str, Any]:
    """Attack (b): the first ``k`` receipts and the genuine head of size ``k``, with proofs
    recomputed from the receipts (which needs no key); anchors of later heads dropped."""
    heads = [h for h in bundle["tree_heads"] if h["tree_size"] <= k]
    assert heads and heads[-1]["tree_size"] == k, "no genuine head of that size"
    cut, fresh = assemble_bundle(
        tenant=bundle["tenant"],
        rows=_rows(bundle["receipts"][:k]),
        signer=NoKey(bundle["public_key_b64"]),  # type: ignore[arg-type]
        stored_heads=heads,
        anchors=[a for a in bundle["anchors"] if a["tree_size"] <= k],
        timestamp=bundle["exported_at"],
    )
    assert fresh is None
    return cut
