"""Use cases: the only room that combines domain values, the store and the data plane.

- ``gates``: run a release's gate against the store and record the decision; overrides.
- ``rollouts``: every rollout of a server (start, command, watch, rollback, the tick loop).
- ``rollout_runtime``: the store-backed fact log of one rollout and its routing adapter.
- ``probes``: the readings of one rollout (gateway windows, trace replay, observer minutes).
- ``receipts``: export bundles, sign tree heads, anchor them.
- ``jobs`` / ``remote_judge``: the judge-worker job queue and the judge that uses it.
"""
