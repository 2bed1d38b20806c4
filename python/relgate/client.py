"""The gRPC client of relgate (what the CLI uses).

Server address: argument, else `RELGATE_SERVER`, else 127.0.0.1:50051. API key: argument,
else `RELGATE_API_KEY`. Failed calls raise the `relgate.errors` class the server raised
(the status table, reversed); an unreachable server raises `RelgateError` saying so.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

import grpc
from google.protobuf.message import Message

from relgate._proto.relgate.v1 import (
    attestation_pb2,
    common_pb2,
    key_pb2,
    receipt_pb2,
    release_pb2,
)
from relgate.errors import RelgateError
from relgate.service.status import ERROR_METADATA_KEY, error_from_status

DEFAULT_SERVER = "127.0.0.1:50051"
# Replies (release lists, receipt lists) may be larger than requests; bundles are streamed.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

R = TypeVar("R", bound=Message)

_FORMATS = {
    None: release_pb2.MANIFEST_FORMAT_UNSPECIFIED,
    "json": release_pb2.MANIFEST_FORMAT_JSON,
    "yaml": release_pb2.MANIFEST_FORMAT_YAML,
}
_ROLES = {
    "viewer": key_pb2.ROLE_VIEWER,
    "releaser": key_pb2.ROLE_RELEASER,
    "admin": key_pb2.ROLE_ADMIN,
    "worker": key_pb2.ROLE_WORKER,
}


def rpc_error(exc: grpc.RpcError, server: str) -> RelgateError:
    """The relgate error for a failed call."""
    if not isinstance(exc, grpc.Call):
        return RelgateError(f"call to {server} failed: {exc}")
    code = exc.code()
    details = exc.details() or code.name
    class_name = None
    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY:
            class_name = value if isinstance(value, str) else value.decode("utf-8", "replace")
    if code is grpc.StatusCode.UNAVAILABLE and class_name is None:
        return RelgateError(f"cannot reach the relgate server at {server}: {details}")
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return error_from_status(code, f"request too large: {details}", None)
    return error_from_status(code, details, class_name)


class RelgateClient:
    """A blocking client; use as a context manager or call `close`."""

    def __init__(
        self,
        server: str | None = None,
        *,
        api_key: str | None = None,
        tls: bool = False,
        tls_ca: Path | str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.server = server or os.environ.get("RELGATE_SERVER") or DEFAULT_SERVER
        key = api_key or os.environ.get("RELGATE_API_KEY")
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {key.strip()}"),) if key else ()
        )
        self.timeout = timeout
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls or tls_ca is not None:
            ca = Path(tls_ca).read_bytes() if tls_ca is not None else None
            credentials = grpc.ssl_channel_credentials(root_certificates=ca)
            self._channel = grpc.secure_channel(self.server, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self.server, options=options)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> RelgateClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- plumbing ----------------------------------------------------------------------------

    def call(self, method: str, request: Message, response_cls: type[R]) -> R:
        """One unary call to `/relgate.v1.Service/Method`."""
        stub = self._channel.unary_unary(
            method,
            request_serializer=_serialize,
            response_deserializer=response_cls.FromString,
        )
        try:
            response: R = stub(request, metadata=self._metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc, self.server) from None
        return response

    def call_raw(self, method: str, payload: bytes) -> bytes:
        """A unary call with a raw request body (tests send malformed payloads with it)."""
        stub = self._channel.unary_unary(
            method, request_serializer=None, response_deserializer=None
        )
        try:
            reply: bytes = stub(payload, metadata=self._metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc, self.server) from None
        return reply

    # ---- releases ----------------------------------------------------------------------------

    def register_release(
        self,
        manifest: bytes | str,
        *,
        fmt: Literal["json", "yaml"] | None = None,
        expected_sha256: str | None = None,
        tenant: str = "",
    ) -> release_pb2.RegisterReleaseResponse:
        """Register a manifest document (JSON or YAML text)."""
        data = manifest.encode("utf-8") if isinstance(manifest, str) else manifest
        request = release_pb2.RegisterReleaseRequest(
            manifest=data,
            format=_FORMATS[fmt],
            expected_sha256=expected_sha256 or "",
            tenant=tenant,
        )
        return self.call(
            "/relgate.v1.ReleaseService/RegisterRelease",
            request,
            release_pb2.RegisterReleaseResponse,
        )

    def get_release(self, handle: str) -> release_pb2.Release:
        """A release by sha256 or release id."""
        return self.call(
            "/relgate.v1.ReleaseService/GetRelease",
            release_pb2.GetReleaseRequest(sha256=handle),
            release_pb2.Release,
        )

    def list_releases(self, *, tenant: str = "", limit: int = 0) -> list[release_pb2.Release]:
        """Releases of a tenant."""
        response = self.call(
            "/relgate.v1.ReleaseService/ListReleases",
            release_pb2.ListReleasesRequest(tenant=tenant, limit=limit),
            release_pb2.ListReleasesResponse,
        )
        return list(response.releases)

    # ---- receipts ----------------------------------------------------------------------------

    def list_receipts(
        self, *, tenant: str = "", release_sha256: str = "", limit: int = 0
    ) -> list[common_pb2.Receipt]:
        """Receipts in chain order."""
        response = self.call(
            "/relgate.v1.ReceiptService/ListReceipts",
            receipt_pb2.ListReceiptsRequest(
                tenant=tenant, release_sha256=release_sha256, limit=limit
            ),
            receipt_pb2.ListReceiptsResponse,
        )
        return list(response.receipts)

    def export_receipts(self, *, tenant: str = "") -> bytes:
        """The tenant's self-contained receipt bundle (JSON bytes)."""
        stub = self._channel.unary_stream(
            "/relgate.v1.ReceiptService/ExportReceipts",
            request_serializer=_serialize,
            response_deserializer=receipt_pb2.ExportReceiptsChunk.FromString,
        )
        parts: list[bytes] = []
        try:
            for chunk in stub(
                receipt_pb2.ExportReceiptsRequest(tenant=tenant),
                metadata=self._metadata,
                timeout=self.timeout,
            ):
                parts.append(chunk.data)
        except grpc.RpcError as exc:
            raise rpc_error(exc, self.server) from None
        return b"".join(parts)

    def verify_receipts(self, *, tenant: str = "") -> receipt_pb2.VerifyReceiptsResponse:
        """Have the server verify its own chain, tree and signatures."""
        return self.call(
            "/relgate.v1.ReceiptService/VerifyReceipts",
            receipt_pb2.VerifyReceiptsRequest(tenant=tenant),
            receipt_pb2.VerifyReceiptsResponse,
        )

    # ---- keys and attestation ----------------------------------------------------------------

    def create_key(
        self, role: str, *, name: str = "", tenant: str = ""
    ) -> key_pb2.CreateKeyResponse:
        """Create an API key (admin only); the plaintext is in the response."""
        if role not in _ROLES:
            raise RelgateError(
                f"unknown role {role!r} (expected viewer, releaser, admin or worker)"
            )
        return self.call(
            "/relgate.v1.KeyService/CreateKey",
            key_pb2.CreateKeyRequest(role=_ROLES[role], name=name, tenant=tenant),
            key_pb2.CreateKeyResponse,
        )

    def attest(self, path: str) -> attestation_pb2.AttestResponse:
        """Attest a checkpoint on the server's file system."""
        return self.call(
            "/relgate.v1.AttestationService/Attest",
            attestation_pb2.AttestRequest(path=path),
            attestation_pb2.AttestResponse,
        )


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


__all__ = ["DEFAULT_SERVER", "RelgateClient", "rpc_error"]
