"""One wrapper around every RPC: decode, authenticate, authorize, run, map errors, count.

Handlers are built from the service descriptors rather than the generated `*_pb2_grpc`
classes, so that every method of every service goes through the same path and none can
forget auth or error mapping. Requests arrive as raw bytes and are decoded here, which
turns undecodable payloads (wrong wire types) and unknown fields into INVALID_ARGUMENT
instead of gRPC's generic INTERNAL / silent acceptance: a field this server does not know
may be a safety setting the client expects to be honoured, so it is refused, not ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import grpc.aio
from google.protobuf import message_factory, unknown_fields
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from relgate.access import Role
from relgate.errors import GRPC_ERROR_METADATA_KEY, InvalidInputError
from relgate.service.auth import Authenticator, Principal
from relgate.service.status import status_for
from relgate.service.web import Metrics

log = logging.getLogger("relgate.service")

Context = grpc.aio.ServicerContext[Any, Any]
UnaryImpl = Callable[[Any, "Call"], Awaitable[Message]]
StreamImpl = Callable[[Any, "Call"], AsyncIterator[Message]]
UploadImpl = Callable[[AsyncIterator[Any], "Call"], Awaitable[Message]]


#: Records that an operator key acted on another tenant: (principal, tenant, method). Blocking.
AccessAudit = Callable[[Principal, str, str], None]


@dataclass(frozen=True)
class Call:
    """What a servicer method gets besides its request: who calls, and the raw context."""

    principal: Principal
    role: Role
    context: Context
    method: str = ""
    audit: AccessAudit | None = None

    async def tenant(self, requested: str) -> str:
        """The tenant a request acts on: the one it names, else the key's own.

        AuthError (PERMISSION_DENIED) when the key may not act on the named tenant. An operator
        acting on a tenant other than its own is recorded (an ``operator_access`` receipt in
        that tenant's chain) before the request touches anything.
        """
        tenant = requested or self.principal.tenant
        Authenticator.authorize(self.principal, self.role, tenant)
        if tenant != self.principal.tenant and self.audit is not None:
            await asyncio.to_thread(self.audit, self.principal, tenant, self.method)
        return tenant

    @property
    def actor(self) -> str:
        """How receipts name the caller."""
        return self.principal.actor


@dataclass(frozen=True)
class Rpc:
    """One method: the role it needs and its implementation (None: UNIMPLEMENTED)."""

    role: Role
    unary: UnaryImpl | None = None
    stream: StreamImpl | None = None
    #: Client streaming: the implementation gets the decoded request messages as they come.
    upload: UploadImpl | None = None


@dataclass(frozen=True)
class RpcEnv:
    """Shared by all handlers of a server."""

    authenticator: Authenticator
    metrics: Metrics
    audit: AccessAudit | None = None


def decode(cls: type[Message], raw: bytes) -> Message:
    """Parse a request, refusing undecodable bytes and unknown fields (at any depth)."""
    msg = cls()
    try:
        msg.ParseFromString(raw)
    except DecodeError as exc:
        raise InvalidInputError(f"malformed {cls.DESCRIPTOR.full_name}: {exc}") from None
    _reject_unknown(msg, cls.DESCRIPTOR.full_name)
    return msg


def _reject_unknown(msg: Message, path: str) -> None:
    unknown = unknown_fields.UnknownFieldSet(msg)
    if len(unknown):
        numbers = sorted({unknown[i].field_number for i in range(len(unknown))})
        raise InvalidInputError(f"unknown field number(s) {numbers} in {path}")
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            _reject_unknown(value, f"{path}.{field.name}")
        else:
            for i, item in enumerate(value):
                if isinstance(item, Message):
                    _reject_unknown(item, f"{path}.{field.name}[{i}]")


async def _abort(
    context: Context, method: str, exc: BaseException, authenticated: bool
) -> NoReturn:
    """Abort the call for `exc` with its mapped status (raises grpc's AbortError)."""
    code = status_for(exc, authenticated=authenticated)
    if code is None:
        log.error("internal error in %s", method, exc_info=exc)
        await context.abort(
            grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"
        )
        raise AssertionError("unreachable")  # context.abort always raises
    await context.abort(
        code,
        str(exc) or type(exc).__name__,
        trailing_metadata=((GRPC_ERROR_METADATA_KEY, type(exc).__name__),),
    )
    raise AssertionError("unreachable")


async def _unimplemented(context: Context, method: str) -> NoReturn:
    await context.abort(
        grpc.StatusCode.UNIMPLEMENTED, f"{method} is part of the API but not implemented yet"
    )
    raise AssertionError("unreachable")


class _Guard:
    """Authentication, authorization and decoding for one call."""

    def __init__(self, env: RpcEnv, method: str, role: Role, request_cls: type[Message]) -> None:
        self.env = env
        self.method = method
        self.role = role
        self.request_cls = request_cls

    async def authenticate(self, context: Context) -> Principal:
        """The caller's principal (AuthError: UNAUTHENTICATED)."""
        metadata: tuple[tuple[str, str | bytes], ...] = tuple(
            (str(k), v) for k, v in (context.invocation_metadata() or ())
        )
        auth = self.env.authenticator
        principal = auth.cached(metadata)
        if principal is None:
            # A store query: keep it off the event loop.
            principal = await asyncio.to_thread(auth.authenticate, metadata)
        return principal

    def admit(self, raw: bytes, principal: Principal, context: Context) -> tuple[Message, Call]:
        """Role check (AuthError: PERMISSION_DENIED), then the decoded request."""
        Authenticator.authorize(principal, self.role)
        call = Call(
            principal=principal,
            role=self.role,
            context=context,
            method=self.method,
            audit=self.env.audit,
        )
        return decode(self.request_cls, raw), call


class _Outcome:
    """Records a call's code and latency exactly once, before the status leaves the server
    (a client that scrapes /metrics right after its call returns sees that call)."""

    def __init__(self, guard: _Guard) -> None:
        self._guard = guard
        self._start = time.perf_counter()
        self._done = False

    def record(self, code: str) -> None:
        if not self._done:
            self._done = True
            elapsed = time.perf_counter() - self._start
            self._guard.env.metrics.observe_rpc(self._guard.method, code, elapsed)


async def _fail(
    guard: _Guard, outcome: _Outcome, context: Context, exc: Exception, authenticated: bool
) -> NoReturn:
    outcome.record((status_for(exc, authenticated=authenticated) or _INTERNAL).name)
    await _abort(context, guard.method, exc, authenticated)


def _unary_behavior(guard: _Guard, impl: UnaryImpl | None) -> Callable[..., Awaitable[bytes]]:
    async def behavior(raw: bytes, context: Context) -> bytes:
        outcome = _Outcome(guard)
        principal: Principal | None = None
        try:
            try:
                principal = await guard.authenticate(context)
                request, call = guard.admit(raw, principal, context)
                if impl is None:
                    outcome.record("UNIMPLEMENTED")
                    await _unimplemented(context, guard.method)
                response = (await impl(request, call)).SerializeToString()
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _fail(guard, outcome, context, exc, principal is not None)
            outcome.record("OK")
            return response
        except asyncio.CancelledError:
            outcome.record("CANCELLED")
            raise
        finally:
            outcome.record("UNKNOWN")  # only if nothing above recorded (a handler's own abort)

    return behavior


def _stream_behavior(guard: _Guard, impl: StreamImpl | None) -> Callable[..., AsyncIterator[bytes]]:
    async def behavior(raw: bytes, context: Context) -> AsyncIterator[bytes]:
        outcome = _Outcome(guard)
        principal: Principal | None = None
        try:
            try:
                principal = await guard.authenticate(context)
                request, call = guard.admit(raw, principal, context)
                if impl is None:
                    outcome.record("UNIMPLEMENTED")
                    await _unimplemented(context, guard.method)
                async for item in impl(request, call):
                    yield item.SerializeToString()
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _fail(guard, outcome, context, exc, principal is not None)
            outcome.record("OK")
        except (asyncio.CancelledError, GeneratorExit):
            outcome.record("CANCELLED")
            raise
        finally:
            outcome.record("UNKNOWN")

    return behavior


def _upload_behavior(guard: _Guard, impl: UploadImpl | None) -> Callable[..., Awaitable[bytes]]:
    async def behavior(raw_requests: AsyncIterator[bytes], context: Context) -> bytes:
        outcome = _Outcome(guard)
        principal: Principal | None = None
        try:
            try:
                principal = await guard.authenticate(context)
                _, call = guard.admit(b"", principal, context)
                if impl is None:
                    outcome.record("UNIMPLEMENTED")
                    await _unimplemented(context, guard.method)

                async def decoded() -> AsyncIterator[Message]:
                    async for raw in raw_requests:
                        yield decode(guard.request_cls, raw)

                response = (await impl(decoded(), call)).SerializeToString()
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _fail(guard, outcome, context, exc, principal is not None)
            outcome.record("OK")
            return response
        except asyncio.CancelledError:
            outcome.record("CANCELLED")
            raise
        finally:
            outcome.record("UNKNOWN")

    return behavior


_INTERNAL = grpc.StatusCode.INTERNAL


def build_handler(
    service: ServiceDescriptor, rpcs: Mapping[str, Rpc], env: RpcEnv
) -> grpc.GenericRpcHandler[Any, Any]:
    """A generic handler serving every method of `service` through the guard.

    Every method of the service must be in `rpcs` (ValueError otherwise), so a method added
    to the proto cannot silently go unserved or unauthenticated.
    """
    missing = {m.name for m in service.methods} - set(rpcs)
    extra = set(rpcs) - {m.name for m in service.methods}
    if missing or extra:
        raise ValueError(f"{service.full_name}: missing {sorted(missing)}, unknown {sorted(extra)}")
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        rpc = rpcs[method.name]
        request_cls = message_factory.GetMessageClass(method.input_type)
        guard = _Guard(env, f"{service.full_name}/{method.name}", rpc.role, request_cls)
        if method.client_streaming and not method.server_streaming:
            handlers[method.name] = grpc.stream_unary_rpc_method_handler(
                _upload_behavior(guard, rpc.upload)
            )
        elif method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _stream_behavior(guard, rpc.stream)
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _unary_behavior(guard, rpc.unary)
            )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


__all__ = ["AccessAudit", "Call", "Rpc", "RpcEnv", "build_handler", "decode"]
