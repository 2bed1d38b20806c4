"""AttestationService: attest a checkpoint the server can read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from relgate._proto.relgate.v1 import attestation_pb2
from relgate.access import Role
from relgate.attest import attest
from relgate.canonical import canonical_json
from relgate.errors import InvalidInputError, NotFoundError
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

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation. Releaser: it reads the server's disk."""
        return {"Attest": Rpc(Role.RELEASER, unary=self.attest)}

    async def attest(
        self, request: attestation_pb2.AttestRequest, call: Call
    ) -> attestation_pb2.AttestResponse:
        """Measure the weights at `path`."""
        if not request.path.strip():
            raise InvalidInputError("path is required")
        path = Path(request.path).expanduser()
        if not path.exists():
            raise NotFoundError(f"no such file or directory: {path}")

        record = await asyncio.to_thread(lambda: attest(path).to_dict())
        root, tensors, total = _summary(record)
        return attestation_pb2.AttestResponse(
            root_hex=root,
            tensors=tensors,
            total_bytes=total,
            attestation_json=canonical_json(record).decode("utf-8"),
        )
