"""KeyService: create API keys (admin only)."""

from __future__ import annotations

import asyncio
import secrets

from relgate._proto.relgate.v1 import key_pb2
from relgate.access import Role
from relgate.errors import InvalidInputError
from relgate.service.auth import KeyStore, create_key, hash_key
from relgate.service.rpc import Call, Rpc


class KeyServicer:
    """relgate.v1.KeyService."""

    descriptor = key_pb2.DESCRIPTOR.services_by_name["KeyService"]

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation."""
        return {"CreateKey": Rpc(Role.ADMIN, unary=self.create)}

    async def create(
        self, request: key_pb2.CreateKeyRequest, call: Call
    ) -> key_pb2.CreateKeyResponse:
        """A new key with a role; the plaintext is in the response and nowhere else."""
        if request.role not in (
            key_pb2.ROLE_VIEWER, key_pb2.ROLE_RELEASER, key_pb2.ROLE_ADMIN, key_pb2.ROLE_WORKER
        ):  # fmt: skip
            raise InvalidInputError("role must be viewer, releaser, admin or worker")
        role = Role(request.role)
        tenant = call.tenant(request.tenant)
        name = request.name.strip() or f"{role.label}-{secrets.token_hex(3)}"
        if len(name) > 128:
            raise InvalidInputError("key name must be at most 128 characters")
        key = await asyncio.to_thread(create_key, self._store, role=role, name=name, tenant=tenant)
        return key_pb2.CreateKeyResponse(
            key=key, role=request.role, name=name, tenant=tenant, key_sha256=hash_key(key)
        )
