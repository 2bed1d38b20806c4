"""Gating from the release's endpoint asks the model only what the release changed: a request
byte for byte the one the previous release sent (messages, settings, per-request seed) to the
same endpoint and the same attested weights takes the previous release's answer. A TEST BACKEND
stands in for the model (it counts what it is asked); the releases are the real-model demo's
v1 and v2, which differ only in the legal class's stop sequence."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from relgate.app.gates import GateOptions
from relgate.canonical import canonical_json
from relgate.client import RelgateClient, answer_source
from relgate.demo.real import release_manifests, write_subset
from relgate.service.server import BackgroundServer
from relgate.suite import load_suite
from relgate.testing.backends import TestBackend
from relgate.testing.judges import WordOverlapJudge


@contextlib.contextmanager
def _backend() -> Iterator[TestBackend]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    backend = TestBackend("model")
    asyncio.run_coroutine_threadsafe(backend.start(), loop).result(30)
    try:
        yield backend
    finally:
        asyncio.run_coroutine_threadsafe(backend.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _world(tmp: Path, backend: TestBackend) -> tuple[Path, dict[str, dict[str, Any]], set[str]]:
    from safetensors.numpy import save_file

    weights = tmp / "weights"
    weights.mkdir()
    model = weights / "model.safetensors"
    save_file({"w": np.arange(64, dtype=np.float32)}, str(model))
    suite_path, _ = write_subset(tmp / "suites")
    suite = load_suite(suite_path)
    law = {i for i, s in suite.slice_of().items() if s == "Law"}
    return weights, release_manifests(backend.base_url, model), law


def _gate(c: RelgateClient, sha: str) -> None:
    c.run_gate(sha, answers=answer_source(endpoint=True))


def _fact(server: Any, sha: str) -> dict[str, Any]:
    return server.store.facts(sha, "gate_result", tenant="default")[-1].payload


@pytest.mark.parametrize("reuse", [True, False])
def test_a_gate_asks_the_model_only_what_the_release_changed(tmp_path: Path, reuse: bool) -> None:
    judge = WordOverlapJudge("ab" * 32)
    with _backend() as backend:
        weights, docs, law = _world(tmp_path, backend)
        options = GateOptions(
            suites_dir=tmp_path / "suites", judge_factory=lambda _c: judge, reuse_answers=reuse
        )
        with BackgroundServer(
            tmp_path / "server", gateway_port=None, gate=options, weights_root=weights
        ) as server:
            assert server.admin_key_path is not None
            key = server.admin_key_path.read_text().strip()
            with contextlib.closing(RelgateClient(server.address, api_key=key)) as c:
                shas: dict[str, str] = {}
                prev = None
                for tag in ("v1", "v2"):
                    doc = {**docs[tag], "previous_release": prev}
                    shas[tag] = prev = c.register_release(canonical_json(doc)).release.sha256
                _gate(c, shas["v1"])
                items = len(backend.received)
                assert items == 103 and _fact(server, shas["v1"])["answers_reused"] == 0
                # v1's stored scores re-applied (its latest fact now): its answers' source stays.
                c.run_gate(shas["v1"], reuse_scores=True)
                assert len(backend.received) == items
                assert _fact(server, shas["v1"])["answers_source"] == "endpoint"
                _gate(c, shas["v2"])
                asked = len(backend.received) - items
                v1, v2 = _fact(server, shas["v1"]), _fact(server, shas["v2"])
                assert v2["answers_source"] == "endpoint"
                if not reuse:
                    assert asked == 103 and v2["answers_reused"] == 0
                    return
                # Only the legal class renders differently (its stop sequence): the rest is v1's.
                assert asked == len(law) and v2["answers_reused"] == 103 - len(law)
                assert v2["previous_answers_sha256"] == v1["candidate_answers_sha256"]

                # Another served model name: another request; nothing is reused.
                v3 = {**docs["v2"], "previous_release": shas["v2"]}
                v3["model"] = {**v3["model"], "served_name": "smollm2-b"}
                sha3 = c.register_release(canonical_json(v3)).release.sha256
                before = len(backend.received)
                _gate(c, sha3)
                assert len(backend.received) - before == 103
                assert _fact(server, sha3)["answers_reused"] == 0
