"""Anchoring tree heads: a directory, a command, and an RFC 3161 timestamp authority.

The TSA test stands up a real one on 127.0.0.1: an HTTP handler that answers each query with
``openssl ts -reply`` and a throwaway certificate (skipped where the openssl CLI is missing).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from relgate.app.receipts import AnchorSchedule, anchor_now, export_bundle
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.receipts import AnchorPolicy, SignedTreeHead, TreeHeadSigner, Trust, verify_bundle
from relgate.receipts.anchors import (
    CommandSink,
    DirectorySink,
    Rfc3161Sink,
    anchor_tree_head,
    parse_sink,
)
from relgate.store import Store
from rfc3161_client import decode_timestamp_response


@pytest.fixture
def head(tmp_path: Path) -> SignedTreeHead:
    return TreeHeadSigner(tmp_path / "keys").sign(
        tenant="acme/eu", tree_size=7, root_hex="ab" * 32, timestamp="2026-11-26T12:00:00.000000Z"
    )


def test_directory_sink(head: SignedTreeHead, tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "anchors")
    ref = sink.anchor(head)
    assert Path(ref).name == "acme_eu-000000000007-abababababababab.json"
    assert SignedTreeHead.from_dict(json.loads(Path(ref).read_text())) == head
    assert [p.name for p in (tmp_path / "anchors").iterdir()] == [Path(ref).name]


def test_command_sink_gets_the_head_on_stdin(head: SignedTreeHead) -> None:
    code = "import json, sys; d = json.load(sys.stdin); print(d['tree_size'], d['root_hex'])"
    assert CommandSink([sys.executable, "-c", code]).anchor(head) == f"7 {'ab' * 32}"


def test_failing_sink_does_not_stop_the_others(head: SignedTreeHead, tmp_path: Path) -> None:
    sinks = [
        CommandSink([sys.executable, "-c", "import sys; sys.exit('no route to log')"]),
        DirectorySink(tmp_path / "anchors"),
    ]
    failed, written = anchor_tree_head(head, sinks)
    assert not failed.ok
    assert failed.error is not None and "no route to log" in failed.error
    assert written.ok and Path(written.ref).exists()
    assert (written.tree_size, written.root_hex, written.tenant) == (7, "ab" * 32, "acme/eu")


def test_command_sink_timeout(head: SignedTreeHead) -> None:
    sink = CommandSink([sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.2)
    with pytest.raises(InvalidInputError, match="timed out"):
        sink.anchor(head)
    with pytest.raises(InvalidInputError):
        CommandSink([])


def test_anchor_now_records_and_exports(
    store: Store, api_manifest: dict[str, Any], tmp_path: Path
) -> None:
    store.register_release(ReleaseManifest.parse(api_manifest), actor="alice")
    signer = TreeHeadSigner(store.data_dir)
    sth, records = anchor_now(store, signer, [DirectorySink(tmp_path / "anchors")])
    assert sth.tree_size == 1 and records[0].ok
    assert store.audit.anchors()[0]["ref"] == records[0].ref
    bundle = export_bundle(store)
    assert bundle["anchors"][0]["root_hex"] == sth.root_hex
    assert bundle["tree_heads"][0] == sth.to_dict()


def test_rfc3161_request(head: SignedTreeHead) -> None:
    request = Rfc3161Sink.build_request(head)
    assert request.message_imprint.message == hashlib.sha256(head.message()).digest()
    assert request.nonce is not None
    assert request.cert_req
    with pytest.raises(InvalidInputError):
        Rfc3161Sink("file:///etc/passwd")


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


@pytest.fixture
def local_tsa(tmp_path: Path) -> Iterator[str]:
    """URL of an RFC 3161 TSA on 127.0.0.1 backed by ``openssl ts -reply``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not installed")
    d = tmp_path / "tsa"
    d.mkdir()
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", d / "key.pem", "-out", d / "cert.pem", "-days", "1",
            "-subj", "/CN=relgate test TSA",
            "-addext", "extendedKeyUsage=critical,timeStamping",
            "-addext", "keyUsage=critical,digitalSignature",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (d / "serial").write_text("01\n")
    (d / "ts.cnf").write_text(TSA_CONFIG.format(serial=d / "serial"))
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:  # openssl keeps its serial number in a file
                (d / "q.tsq").write_bytes(query)
                subprocess.run(
                    [
                        openssl, "ts", "-reply", "-queryfile", d / "q.tsq", "-signer",
                        d / "cert.pem", "-inkey", d / "key.pem", "-config", d / "ts.cnf",
                        "-out", d / "r.tsr",
                    ],
                    check=True,
                    capture_output=True,
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
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_rfc3161_sink_against_a_local_tsa(head: SignedTreeHead, local_tsa: str) -> None:
    token = base64.b64decode(Rfc3161Sink(local_tsa).anchor(head))
    assert len(token) > 100
    # Each anchoring gets its own token (fresh nonce, fresh serial).
    again = Rfc3161Sink(local_tsa).anchor(head)
    assert base64.b64decode(again) != token


def test_rfc3161_sink_rejects_a_reply_for_other_data(
    head: SignedTreeHead, local_tsa: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Rfc3161Sink.build_request
    other = SignedTreeHead(**{**head.to_dict(), "tree_size": 8})
    sink = Rfc3161Sink(local_tsa)
    # The sink sends the query for another head but checks the reply against its own head.
    monkeypatch.setattr(Rfc3161Sink, "build_request", staticmethod(lambda _h: real(other)))
    with pytest.raises(Exception, match="different data"):
        sink.anchor(head)


def test_tsa_token_decodes(head: SignedTreeHead, local_tsa: str) -> None:
    import urllib.request

    request = Rfc3161Sink.build_request(head)
    http = urllib.request.Request(
        local_tsa, data=request.as_bytes(), headers={"Content-Type": "application/timestamp-query"}
    )
    with urllib.request.urlopen(http, timeout=10) as reply:
        response = decode_timestamp_response(reply.read())
    assert response.tst_info.nonce == request.nonce
    assert response.tst_info.message_imprint.message == hashlib.sha256(head.message()).digest()


def test_rfc3161_anchor_verified_offline(
    store: Store, api_manifest: dict[str, Any], local_tsa: str, tmp_path: Path
) -> None:
    """A token from the TSA verifies to its root (signature, chain, imprint of the head's
    signed bytes); against another root, or altered, it does not."""
    store.register_release(ReleaseManifest.parse(api_manifest), actor="alice")
    signer = TreeHeadSigner(store.data_dir)
    anchor_now(store, signer, [Rfc3161Sink(local_tsa)])
    bundle = export_bundle(store)
    trust = Trust.pinned([signer.public_key_b64])
    root = tmp_path / "tsa" / "cert.pem"
    report = verify_bundle(bundle, trust=trust, anchors=AnchorPolicy.build(tsa_root_files=[root]))
    assert report.ok, report.first_error
    assert [(a.sink, a.status) for a in report.anchors] == [("rfc3161", "verified")]
    assert verify_bundle(bundle, trust=trust).anchors[0].status == "not checked"
    # Another TSA's root: the chain does not verify.
    other = tmp_path / "other.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", tmp_path / "other.key", "-out", other, "-days", "1",
            "-subj", "/CN=another TSA",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    wrong = verify_bundle(bundle, trust=trust, anchors=AnchorPolicy.build(tsa_root_files=[other]))
    assert wrong.first_error is not None and wrong.first_error.reason == "bad anchor"
    assert "does not verify" in wrong.first_error.detail
    # A flipped byte in the token's signature.
    token = bytearray(base64.b64decode(bundle["anchors"][0]["ref"]))
    token[-5] ^= 0x01
    bundle["anchors"][0]["ref"] = base64.b64encode(bytes(token)).decode()
    bad = verify_bundle(bundle, trust=trust, anchors=AnchorPolicy.build(tsa_root_files=[root]))
    assert bad.first_error is not None and bad.first_error.reason == "bad anchor"
    bundle["anchors"][0]["ref"] = "not a token"
    bad = verify_bundle(bundle, trust=trust, anchors=AnchorPolicy.build(tsa_root_files=[root]))
    assert bad.first_error is not None and "not an RFC 3161 token" in bad.first_error.detail


def test_parse_sink(tmp_path: Path) -> None:
    assert isinstance(parse_sink(f"dir:{tmp_path}"), DirectorySink)
    assert isinstance(parse_sink("tsa:http://127.0.0.1:1/tsa"), Rfc3161Sink)
    cmd = parse_sink("cmd:logger -t 'relgate sth'")
    assert isinstance(cmd, CommandSink) and cmd.argv == ["logger", "-t", "relgate sth"]
    for bad in ("dir:", "nowhere", "ftp:x"):
        with pytest.raises(InvalidInputError):
            parse_sink(bad)


def test_anchor_periodically(store: Store, api_manifest: dict[str, Any], tmp_path: Path) -> None:
    store.register_release(ReleaseManifest.parse(api_manifest), actor="alice")
    store.register_release(
        ReleaseManifest.parse({**api_manifest, "previous_release": None, "routing": [{}]}),
        actor="alice",
        tenant="acme",
    )
    out = tmp_path / "anchors"
    signer = TreeHeadSigner(store.data_dir)

    async def run() -> None:
        schedule = AnchorSchedule(store, signer, [DirectorySink(out)], interval=0.01)
        schedule.start()
        task = schedule._task
        assert task is not None

        async def wait_for_files(n: int) -> None:
            deadline = time.monotonic() + 30
            while len(list(out.glob("*.json"))) < n:  # poll with a deadline
                assert time.monotonic() < deadline, "tree heads not anchored"
                assert not task.done(), task
                await asyncio.sleep(0.01)

        await wait_for_files(2)
        # Only a tree that grew is anchored again.
        await asyncio.to_thread(
            store.record_decision,
            tenant="default",
            release_sha=ReleaseManifest.parse(api_manifest).sha256,
            kind="gate_pass",
            evidence={},
            actor="gate",
            reason="",
        )
        await wait_for_files(3)
        assert [h["tree_size"] for h in store.audit.tree_heads()] == [1, 2]
        assert [h["tree_size"] for h in store.audit.tree_heads(tenant="acme")] == [1]
        await asyncio.wait_for(schedule.stop(), timeout=30)
        assert task.cancelled()

    asyncio.run(run())
    names = sorted(p.name for p in out.glob("*.json"))
    assert [n.split("-")[0] for n in names] == ["acme", "default", "default"]
    assert {a["sink"] for a in store.audit.anchors()} == {"directory"}
    with pytest.raises(InvalidInputError):
        AnchorSchedule(store, signer, [], interval=0)
