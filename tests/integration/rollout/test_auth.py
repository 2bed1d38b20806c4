"""RolloutService authenticates, authorizes by role and tenant, and validates input."""

from __future__ import annotations

import grpc
import pytest
from relgate import errors
from relgate.client import RelgateClient
from rollout_helpers import Env


def _code(fn: object) -> grpc.StatusCode:
    try:
        fn()  # type: ignore[operator]
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    raise AssertionError("no error")


def test_roles_and_input(env: Env) -> None:
    env.register("v1", "b1")
    address = env.server.address
    with grpc.insecure_channel(address) as channel:
        stub = channel.unary_unary("/relgate.v1.RolloutService/StartRollout")
        assert _code(lambda: stub(b"")) is grpc.StatusCode.UNAUTHENTICATED
    viewer_key = env.client.create_key("viewer", name="v").key
    viewer = RelgateClient(address, api_key=viewer_key)
    try:
        with pytest.raises(errors.AuthError):
            viewer.start_rollout(env.shas["v1"])
        with pytest.raises(errors.AuthError):
            viewer.rollback(env.shas["v1"], "no")
        with pytest.raises(errors.NotFoundError):
            viewer.get_rollout("ro_unknown")
    finally:
        viewer.close()
    with pytest.raises(errors.InvalidInputError, match="is not a release sha256"):
        env.client.start_rollout("not-a-sha")
    with pytest.raises(errors.InvalidInputError, match="unknown field"):
        env.client.start_rollout(env.shas["v1"], overrides={"stepz": []})
    with pytest.raises(errors.NotFoundError):
        env.client.start_rollout("0" * 64)
    other_key = env.client.create_key("releaser", name="b", tenant="team-b").key
    other = RelgateClient(address, api_key=other_key)
    try:
        ro = env.client.start_rollout(env.shas["v1"], overrides={"shadow_s": 0})
        with pytest.raises(errors.NotFoundError):  # another tenant's rollout is absent
            other.get_rollout(ro.rollout_id)
        with pytest.raises(errors.NotFoundError):
            other.start_rollout(env.shas["v1"])
    finally:
        other.close()
