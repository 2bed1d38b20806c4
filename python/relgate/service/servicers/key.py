"""KeyService: create, list and revoke API keys (admin of the tenant; operator across tenants)."""

from __future__ import annotations

import asyncio
import secrets

from relgate._proto.relgate.v1 import key_pb2
from relgate.access import Role
from relgate.errors import AuthError, InvalidInputError
from relgate.service.auth import Authenticator, issue_key
from relgate.service.rpc import Call, Rpc
from relgate.service.servicers._convert import receipt_pb, timestamp
from relgate.store.keys import KeyRecords
from relgate.store.records import ApiKey

_MAX_NAME = 128
_MAX_REASON = 2000


class KeyServicer:
    """relgate.v1.KeyService."""

    descriptor = key_pb2.DESCRIPTOR.services_by_name["KeyService"]

    def __init__(self, keys: KeyRecords, authenticator: Authenticator) -> None:
        self._keys = keys
        self._auth = authenticator

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation."""
        return {
            "CreateKey": Rpc(Role.ADMIN, unary=self.create),
            "ListKeys": Rpc(Role.ADMIN, unary=self.list),
            "RevokeKey": Rpc(Role.ADMIN, unary=self.revoke),
        }

    async def create(
        self, request: key_pb2.CreateKeyRequest, call: Call
    ) -> key_pb2.CreateKeyResponse:
        """A new key with a role; the plaintext is in the response and nowhere else."""
        if request.role not in Role._value2member_map_:
            raise InvalidInputError(f"role must be one of {', '.join(Role.labels())}")
        role = Role(request.role)
        _check_power(call, role, "create")
        tenant = await call.tenant(request.tenant)
        name = request.name.strip() or f"{role.label}-{secrets.token_hex(3)}"
        if len(name) > _MAX_NAME:
            raise InvalidInputError(f"key name must be at most {_MAX_NAME} characters")
        key, receipt = await asyncio.to_thread(
            issue_key, self._keys, role=role, name=name, tenant=tenant, actor=call.actor
        )
        created = await asyncio.to_thread(self._keys.find, receipt.evidence["key_sha256"])
        assert created is not None
        return key_pb2.CreateKeyResponse(
            key=key,
            role=request.role,
            name=name,
            tenant=tenant,
            key_sha256=created.key_hash,
            receipt=receipt_pb(receipt),
        )

    async def list(self, request: key_pb2.ListKeysRequest, call: Call) -> key_pb2.ListKeysResponse:
        """The tenant's keys (hashes, never plaintext), revoked ones marked."""
        tenant = await call.tenant(request.tenant)
        keys = await asyncio.to_thread(self._keys.list, tenant=tenant)
        return key_pb2.ListKeysResponse(keys=[_key_info(k) for k in keys])

    async def revoke(
        self, request: key_pb2.RevokeKeyRequest, call: Call
    ) -> key_pb2.RevokeKeyResponse:
        """Revoke a key of the tenant; it stops working here at once, elsewhere within the
        authenticator's cache lifetime."""
        tenant = await call.tenant(request.tenant)
        reason = request.reason.strip()
        if not reason:
            raise InvalidInputError("a revocation needs a reason (--reason)")
        if len(reason) > _MAX_REASON:
            raise InvalidInputError(f"reason must be at most {_MAX_REASON} characters")
        key = await asyncio.to_thread(self._keys.resolve, request.key_sha256, tenant=tenant)
        _check_power(call, Role.parse(key.role), "revoke")
        receipt = await asyncio.to_thread(self._keys.revoke, key, actor=call.actor, reason=reason)
        self._auth.forget(key.key_hash)
        revoked = await asyncio.to_thread(self._keys.find, key.key_hash)
        assert revoked is not None
        return key_pb2.RevokeKeyResponse(key=_key_info(revoked), receipt=receipt_pb(receipt))


def _check_power(call: Call, role: Role, verb: str) -> None:
    """Only an operator creates or revokes operator keys: an admin cannot mint (or remove)
    more power than a tenant has."""
    if role is Role.OPERATOR and call.principal.role is not Role.OPERATOR:
        raise AuthError(f"only an operator key may {verb} operator keys")


def _key_info(key: ApiKey) -> key_pb2.KeyInfo:
    return key_pb2.KeyInfo(
        key_sha256=key.key_hash,
        role=Role.parse(key.role).value,  # type: ignore[arg-type]
        name=key.name,
        tenant=key.tenant,
        created_at=timestamp(key.created_at),
        revoked=key.revoked_at is not None,
        revoked_at=timestamp(key.revoked_at) if key.revoked_at is not None else "",
        revoked_by=key.revoked_by or "",
        revoke_reason=key.revoke_reason or "",
    )
