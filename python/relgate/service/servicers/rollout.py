"""RolloutService: declared with its roles now; the rollout issue fills in the
implementations. Until then every method authenticates and authorizes, then answers
UNIMPLEMENTED.
"""

from __future__ import annotations

from relgate._proto.relgate.v1 import rollout_pb2
from relgate.service.auth import Role
from relgate.service.rpc import Rpc


class RolloutServicer:
    """relgate.v1.RolloutService."""

    descriptor = rollout_pb2.DESCRIPTOR.services_by_name["RolloutService"]

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role (implementations pending)."""
        mutate = Rpc(Role.RELEASER)
        return {
            "StartRollout": mutate,
            "GetRollout": Rpc(Role.VIEWER),
            "WatchRollout": Rpc(Role.VIEWER),
            "Pause": mutate,
            "Resume": mutate,
            "Promote": mutate,
            "Abort": mutate,
            "Rollback": mutate,
        }
