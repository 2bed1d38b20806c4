"""gRPC client verbs of the RolloutService (the CLI's ``relgate roll`` and ``relgate rollback``).

``RolloutClient`` is a ``relgate.client.RelgateClient`` with the rollout verbs added; errors
are the ``relgate.errors`` classes the server raised.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import grpc

from relgate._proto.relgate.v1 import rollout_pb2
from relgate.client import RelgateClient, rpc_error

__all__ = ["RolloutClient"]

_SERVICE = "/relgate.v1.RolloutService/"


class RolloutClient(RelgateClient):
    """``RelgateClient`` plus StartRollout, GetRollout, WatchRollout, the human controls and
    Rollback."""

    def start_rollout(
        self,
        release_sha256: str,
        *,
        overrides: Mapping[str, Any] | None = None,
        stable_release_sha256: str = "",
        tenant: str = "",
        reason: str = "",
    ) -> rollout_pb2.Rollout:
        """Start a canary (or shadow) of a gated release; ``overrides`` follow
        ``RolloutSpec.to_dict`` (steps, thresholds, observer, shadow_s)."""
        spec = rollout_pb2.RolloutSpec(overrides_json=json.dumps(dict(overrides or {})))
        return self.call(
            _SERVICE + "StartRollout",
            rollout_pb2.StartRolloutRequest(
                release_sha256=release_sha256,
                spec=spec,
                stable_release_sha256=stable_release_sha256,
                tenant=tenant,
                reason=reason,
            ),
            rollout_pb2.Rollout,
        )

    def get_rollout(self, rollout_id: str) -> rollout_pb2.Rollout:
        """The rollout now."""
        return self.call(
            _SERVICE + "GetRollout",
            rollout_pb2.GetRolloutRequest(rollout_id=rollout_id),
            rollout_pb2.Rollout,
        )

    def control(self, verb: str, rollout_id: str, reason: str = "") -> rollout_pb2.Rollout:
        """``verb`` is Pause, Resume, Promote or Abort."""
        return self.call(
            _SERVICE + verb,
            rollout_pb2.RolloutControlRequest(rollout_id=rollout_id, reason=reason),
            rollout_pb2.Rollout,
        )

    def rollback(
        self, target_release_sha256: str, reason: str, *, tenant: str = ""
    ) -> rollout_pb2.RollbackResponse:
        """Swap the routing to an earlier release (manual_rollback receipt)."""
        return self.call(
            _SERVICE + "Rollback",
            rollout_pb2.RollbackRequest(
                target_release_sha256=target_release_sha256, reason=reason, tenant=tenant
            ),
            rollout_pb2.RollbackResponse,
        )

    def watch_rollout(
        self, rollout_id: str, *, timeout: float | None = None
    ) -> Iterator[rollout_pb2.RolloutEvent]:
        """The rollout now, then every change until it is over (server streaming)."""
        stub = self._channel.unary_stream(
            _SERVICE + "WatchRollout",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=rollout_pb2.RolloutEvent.FromString,
        )
        try:
            yield from stub(
                rollout_pb2.WatchRolloutRequest(rollout_id=rollout_id),
                metadata=self._metadata,
                timeout=timeout,
            )
        except grpc.RpcError as exc:
            raise rpc_error(exc, self.server) from None
