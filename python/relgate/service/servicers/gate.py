"""GateService: declared with its roles now; the gate issue fills in the implementations.

Until then every method authenticates and authorizes like a real one, then answers
UNIMPLEMENTED, so clients see the final auth behaviour already.
"""

from __future__ import annotations

from relgate._proto.relgate.v1 import gate_pb2
from relgate.service.auth import Role
from relgate.service.rpc import Rpc


class GateServicer:
    """relgate.v1.GateService."""

    descriptor = gate_pb2.DESCRIPTOR.services_by_name["GateService"]

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role (implementations pending)."""
        return {
            "RunGate": Rpc(Role.RELEASER),
            "GetGateResult": Rpc(Role.VIEWER),
            "OverrideGate": Rpc(Role.RELEASER),
        }
