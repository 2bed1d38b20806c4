"""Helpers for the gate's integration tests: servers over real SQLite with the real embedding
judge, the demo's manifests, and JUDGE DOUBLES (named as such) for the tests that must prove a
judge is not called. A uniquely named module: several test directories have a conftest."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from relgate.app.gates import GateOptions
from relgate.client import RelgateClient
from relgate.errors import JudgeUnavailableError
from relgate.gate.sources import JudgeChoice
from relgate.judge.base import Judge
from relgate.service.server import BackgroundServer, RunningServer

JudgeFactory = Callable[[JudgeChoice], Judge]


class RaisingJudgeDouble:
    """TEST DOUBLE: a judge with the real judge's identity whose every scoring call raises
    (and is counted), to prove that a code path never reaches a judge."""

    def __init__(self, judge_sha256: str) -> None:
        self._sha = judge_sha256
        self.calls = 0

    @property
    def judge_sha256(self) -> str:
        return self._sha

    @property
    def description(self) -> Mapping[str, Any]:
        return {"backend": "raising-test-double"}

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        self.calls += 1
        raise JudgeUnavailableError("RaisingJudgeDouble: this path must not call a judge")

    def agree(self, answer: str, reference: str) -> float:
        self.calls += 1
        raise JudgeUnavailableError("RaisingJudgeDouble: this path must not call a judge")


@dataclass
class GateEnv:
    """A running server and clients holding keys of each role."""

    server: RunningServer
    admin: RelgateClient
    admin_key: str
    clients: list[RelgateClient]

    def client(self, role: str, tenant: str = "") -> RelgateClient:
        key = self.admin.create_key(role, name=f"test-{role}", tenant=tenant).key
        made = RelgateClient(self.server.address, api_key=key, timeout=60)
        self.clients.append(made)
        return made


@contextmanager
def gate_env(
    data_dir: Path,
    judge_factory: JudgeFactory,
    *,
    suites_dir: Path | None = None,
    score_cache: Path | None = None,
) -> Iterator[GateEnv]:
    """A server (no gateway) whose gate uses ``judge_factory`` and ``score_cache``."""
    options = GateOptions(
        suites_dir=suites_dir, judge_factory=judge_factory, score_cache=score_cache
    )
    with BackgroundServer(data_dir, gateway_port=None, gate=options) as server:
        assert server.admin_key_path is not None
        key = server.admin_key_path.read_text().strip()
        admin = RelgateClient(server.address, api_key=key, timeout=60)
        env = GateEnv(server=server, admin=admin, admin_key=key, clients=[])
        try:
            yield env
        finally:
            for c in [admin, *env.clients]:
                c.close()


def manifest_json(
    tag: str, *, suite_ref: str, suite_sha256: str, previous: str | None, **extra: Any
) -> str:
    """A closed-weight release on a suite (answers come from recordings)."""
    from relgate.demo.gate import demo_manifest

    doc = demo_manifest(tag, suite_sha256, previous)
    doc["dataset"] = {"ref": suite_ref, "sha256": suite_sha256}
    doc.update(extra)
    return json.dumps(doc)


def first_table_row(text: str) -> str:
    """The first row under the first rule line of a printed per-slice table."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("-" * 20))
    return lines[rule + 1]
