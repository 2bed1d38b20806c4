"""Answers and suites reach the gate through the API: the client streams the file (chunked,
size-capped by the server, stored per tenant); the server-path form reads only files under
`--data-root` (no `..` or symlink escapes), and its errors never echo a file's contents."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from relgate.app.gate_inputs import UploadStore
from relgate.app.gates import GateOptions
from relgate.cli import app
from relgate.client import RelgateClient
from relgate.errors import InvalidInputError, JudgeUnavailableError, NotFoundError
from relgate.service.server import BackgroundServer, RunningServer
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]
ANSWERS = ROOT / "examples" / "answers" / "recorded.jsonl"
MANIFEST = ROOT / "examples" / "manifests" / "closed-weight-api.json"
SECRET = "do-not-echo-7f3a"


class RaisingJudge:
    """TEST DOUBLE: a judge that refuses to score, so a gate that got past its inputs stops
    at the judge (what these tests check is how far it got)."""

    judge_sha256 = "0" * 64
    description: Mapping[str, Any] = {"backend": "raising-test-double"}

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        raise JudgeUnavailableError("RaisingJudge: inputs accepted, judge not available")

    def agree(self, answer: str, reference: str) -> float:
        raise JudgeUnavailableError("RaisingJudge: inputs accepted, judge not available")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    root = tmp_path / "root"
    root.mkdir()
    options = GateOptions(
        data_root=root, max_upload_bytes=200_000, judge_factory=lambda choice: RaisingJudge()
    )
    with BackgroundServer(tmp_path / "data", gateway_port=None, gate=options) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[RelgateClient]:
    assert server.admin_key_path is not None
    key = server.admin_key_path.read_text().strip()
    with RelgateClient(server.address, api_key=key, timeout=60) as c:
        yield c


def _cli(server: RunningServer, *args: str) -> tuple[int, str]:
    assert server.admin_key_path is not None
    key = server.admin_key_path.read_text().strip()
    result = CliRunner().invoke(
        app, list(args), env={"RELGATE_SERVER": server.address, "RELGATE_API_KEY": key}
    )
    return result.exit_code, result.output


def test_upload_is_streamed_and_content_addressed(
    server: RunningServer, client: RelgateClient
) -> None:
    data = ANSWERS.read_bytes()
    reply = client.upload(ANSWERS, kind="answers", chunk_bytes=4096)  # many chunks
    sha = hashlib.sha256(data).hexdigest()
    assert reply.sha256 == sha and reply.size_bytes == len(data)
    assert reply.ref == f"upload:{sha}.jsonl"
    stored = server.data_dir / "gates" / "uploads" / "default" / f"{sha}.jsonl"
    assert stored.read_bytes() == data
    # Another tenant's ref is not this tenant's file.
    store = UploadStore(server.data_dir / "gates" / "uploads")
    with pytest.raises(NotFoundError):
        store.path(reply.ref, "acme")


def test_uploads_over_the_cap_or_of_the_wrong_kind_are_refused(
    server: RunningServer, client: RelgateClient, tmp_path: Path
) -> None:
    big = tmp_path / "big.jsonl"
    big.write_bytes(b'{"item_id": "x", "answer": "y"}\n' * 8000)  # 256 kB > 200 kB cap
    with pytest.raises(InvalidInputError, match="over the server's cap of 200000 bytes"):
        client.upload(big, kind="answers", chunk_bytes=8192)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InvalidInputError, match=r"must end in \.jsonl"):
        client.upload(text, kind="answers")
    with pytest.raises(InvalidInputError, match="answers or suite"):
        client.upload(text, kind="weights")
    uploads = server.data_dir / "gates" / "uploads" / "default"
    assert not list(uploads.glob("*")), "a refused upload left a file behind"


def test_server_paths_stay_under_the_data_root(
    server: RunningServer, client: RelgateClient, tmp_path: Path
) -> None:
    sha = client.register_release(MANIFEST.read_bytes()).release.sha256
    outside = tmp_path / "outside.jsonl"
    outside.write_text(f'{{"item_id": "{SECRET}", "answer": "{SECRET}"}}\n')
    root = tmp_path / "root"
    (root / "link.jsonl").symlink_to(outside)
    for path in ("../outside.jsonl", str(outside), "link.jsonl"):
        code, out = _cli(server, "gate", "run", sha[:8], "--answers", f"server:{path}")
        assert code == 3, out
        assert "not under the server's data root" in out and SECRET not in out
    # A local path that does not exist is said to be missing here, not sent to the server.
    code, out = _cli(server, "gate", "run", sha[:8], "--answers", str(tmp_path / "nope.jsonl"))
    assert code == 3 and "no such file here" in out, out
    # Unreadable contents are described, not quoted.
    garbage = root / "garbage.parquet"
    garbage.write_text(SECRET * 10)
    code, out = _cli(server, "gate", "run", sha[:8], "--answers", "server:garbage.parquet")
    assert code == 3 and SECRET not in out, out
    # Under the root, and uploaded: both get past their inputs to the judge (exit 9).
    (root / "answers.jsonl").write_bytes(ANSWERS.read_bytes())
    code, out = _cli(server, "gate", "run", sha[:8], "--answers", "server:answers.jsonl")
    assert code == 9 and "inputs accepted" in out, out
    code, out = _cli(server, "gate", "run", sha[:8], "--answers", str(ANSWERS), "--json")
    assert code == 9 and "inputs accepted" in out, out
