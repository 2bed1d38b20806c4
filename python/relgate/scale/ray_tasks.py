"""Batch work as Ray tasks: one task per checkpoint (re-attestation) or per suite shard
(judging). The tasks run the same functions as the in-process commands
(``relgate.scale.reattest.reattest_one``, ``relgate.scale.judge_batch.judge_shard``), and
results are gathered as they finish into the same report formats.

``address`` is a Ray cluster address (``ray://host:10001`` or ``host:6379``) or ``"local"`` /
None: a local Ray instance on loopback with two CPUs and no dashboard. An already initialized
Ray (a test session's, or the caller's) is reused. Ray is imported only here, and only when
called. Paths (checkpoints, suites) must be readable at the same path on every node.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from relgate.errors import RelgateError

if TYPE_CHECKING:
    from relgate.scale.judge_batch import BatchRows, Shard
    from relgate.scale.reattest import ReattestEntry

__all__ = ["init_ray", "ray_judge_batch", "ray_reattest"]

LOCAL = "local"


def _ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise RelgateError("--ray needs Ray: pip install 'relgate[ray]'") from exc


def init_ray(address: str | None = None, *, num_cpus: int = 2) -> Any:
    """The ``ray`` module, connected to ``address`` (None / "local": a local instance)."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    if address in (None, "", LOCAL):
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    return ray


def _as_completed(ray: Any, refs: Sequence[Any]) -> Any:
    """Yield (index, result) as tasks finish (streamed, not all at the end)."""
    index = {ref: i for i, ref in enumerate(refs)}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            yield index[ref], ray.get(ref)


def ray_reattest(
    paths: Sequence[str],
    expect: Mapping[str, str],
    *,
    address: str | None = None,
    on_done: Callable[[ReattestEntry], None] | None = None,
    cache_dir: str | None = None,
) -> list[ReattestEntry]:
    """Re-attest each checkpoint in its own Ray task; entries keep the input order.
    ``cache_dir`` is the leaf cache every task uses (a directory every node can reach, e.g.
    on the shared filesystem the checkpoints are on; None: hash every byte)."""
    from relgate.scale.reattest import reattest_one

    ray = init_ray(address)
    task = ray.remote(num_cpus=1)(reattest_one)
    expected = dict(expect)
    refs = [task.remote(p, expected, cache_dir) for p in paths]
    entries: dict[int, ReattestEntry] = {}
    for i, entry in _as_completed(ray, refs):
        entries[i] = entry
        if on_done is not None:
            on_done(entry)
    return [entries[i] for i in range(len(refs))]


def ray_judge_batch(
    rows: BatchRows,
    backend: str,
    options: Mapping[str, Any],
    *,
    shard_rows: int = 1024,
    address: str | None = None,
    on_shard: Callable[[Shard], None] | None = None,
) -> tuple[str, list[float]]:
    """Judge each shard in its own Ray task: ``(judge_sha256, scores)`` in row order."""
    from relgate.scale.judge_batch import judge_shard, shards

    ray = init_ray(address)
    task = ray.remote(num_cpus=1)(judge_shard)
    cut = shards(len(rows.answers), shard_rows)
    refs = [
        task.remote(
            backend,
            dict(options),
            rows.answers[s.start : s.stop],
            rows.references[s.start : s.stop],
        )
        for s in cut
    ]
    parts: dict[int, list[float]] = {}
    shas: set[str] = set()
    for i, (sha, scores) in _as_completed(ray, refs):
        parts[i] = scores
        shas.add(sha)
        if on_shard is not None:
            on_shard(cut[i])
    if len(shas) > 1:
        # Nodes with different weights or settings: one report must be one judge.
        raise RelgateError(f"Ray workers ran different judges: {sorted(shas)}")
    sha = shas.pop() if shas else ""
    return sha, [x for i in range(len(cut)) for x in parts[i]]
