"""AttestationService: attest a checkpoint under the server's weights root.

The path is resolved under the weights root (relgate.attest.paths: no ``..``, no absolute
path or symlink out of it), the work is bounded before any tensor byte is read
(``check_budget``: files, bytes, header size, declared tensors and metadata), and a file
that does not parse is reported by its rule only: nothing read from a file is echoed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from relgate._proto.relgate.v1 import attestation_pb2
from relgate.access import Role
from relgate.attest import attest
from relgate.attest.paths import Budget, check_budget, resolve_under
from relgate.canonical import canonical_json
from relgate.errors import IntegrityError, InvalidInputError
from relgate.service.rpc import Call, Rpc


def _summary(record: dict[str, Any]) -> tuple[str, int, int]:
    """Root, tensor count and byte total from an attestation record, as far as it says."""
    root = record.get("root") or record.get("root_hex") or ""
    tensors = record.get("tensor_count", record.get("tensors", 0))
    if isinstance(tensors, list | dict):
        tensors = len(tensors)
    total = record.get("bytes", record.get("total_bytes", 0))
    return (
        str(root),
        int(tensors) if isinstance(tensors, int) else 0,
        int(total) if isinstance(total, int) else 0,
    )


class AttestationServicer:
    """relgate.v1.AttestationService."""

    descriptor = attestation_pb2.DESCRIPTOR.services_by_name["AttestationService"]

    def __init__(self, weights_root: Path, budget: Budget | None = None) -> None:
        self._root = weights_root
        self._budget = budget or Budget()

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation. Releaser: it reads the server's disk."""
        return {"Attest": Rpc(Role.RELEASER, unary=self.attest)}

    def _measure(self, raw: str) -> dict[str, Any]:
        path = resolve_under(self._root, raw)
        check_budget(path, self._budget)
        try:
            return attest(path).to_dict()
        except IntegrityError as exc:
            raise IntegrityError(
                f"{raw}: not a valid checkpoint (rule {exc.rule or 'unknown'})", rule=exc.rule
            ) from None

    async def attest(
        self, request: attestation_pb2.AttestRequest, call: Call
    ) -> attestation_pb2.AttestResponse:
        """Measure the weights at `path` (under the server's weights root)."""
        if not request.path.strip():
            raise InvalidInputError("path is required")
        record = await asyncio.to_thread(self._measure, request.path)
        root, tensors, total = _summary(record)
        return attestation_pb2.AttestResponse(
            root_hex=root,
            tensors=tensors,
            total_bytes=total,
            attestation_json=canonical_json(record).decode("utf-8"),
        )
