"""Batch re-attestation: many checkpoints, each attested and compared with the root it is
expected to have (``relgate reattest``; on Ray one task per checkpoint runs ``reattest_one``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from relgate import errors
from relgate.attest import attest

__all__ = ["ReattestEntry", "read_expectations", "reattest_one", "run_reattest", "write_report"]


@dataclass(frozen=True, slots=True)
class ReattestEntry:
    """One checkpoint of a batch: its root now, the expected one and the verdict
    (``ok``, ``drift``, ``new`` when nothing was expected, ``error``)."""

    path: str
    status: str
    root: str | None
    expected: str | None
    tensors: int | None
    bytes: int | None
    seconds: float
    error: str | None = None


def read_expectations(path: Path) -> dict[str, str]:
    """Expected roots: a JSON object {path: root}, a JSON list of {"path", "root"} (a
    previous `reattest --report` JSON), or lines `ROOT  PATH` (b3sum style)."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        out = {}
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise errors.InvalidInputError(f"{path}:{n}: expected 'ROOT  PATH'") from None
            out[parts[1].strip()] = parts[0].lower()
        return out
    if isinstance(data, Mapping):
        return {str(k): str(v).lower() for k, v in data.items()}
    if isinstance(data, list):
        return {
            str(e["path"]): str(e["root"]).lower()
            for e in data
            if isinstance(e, Mapping) and e.get("root")
        }
    raise errors.InvalidInputError(f"{path}: not an expectation file")


def reattest_one(p: str, expect: Mapping[str, str], cache_dir: str | None = None) -> ReattestEntry:
    """Attest one checkpoint and compare its root with its expectation (also what each Ray
    task of `relgate reattest --ray` runs). With ``cache_dir`` (a leaf cache shared by every
    worker, see :mod:`relgate.attest.cache`) unchanged files are not read again."""
    expected = expect.get(p) or expect.get(str(Path(p).resolve()))
    start = time.perf_counter()
    try:
        att = attest(p, file_digests=False, cache_dir=cache_dir)
    except errors.RelgateError as exc:
        return ReattestEntry(
            p, "error", None, expected, None, None, time.perf_counter() - start, str(exc)
        )
    status = "new" if expected is None else ("ok" if expected == att.root else "drift")
    return ReattestEntry(
        p, status, att.root, expected, att.tensors, att.bytes, time.perf_counter() - start
    )


def run_reattest(
    paths: Iterable[str],
    expect: Mapping[str, str],
    *,
    workers: int = 2,
    on_done: Any = None,
    cache_dir: str | None = None,
) -> list[ReattestEntry]:
    """Attest many checkpoints in parallel (threads; the hashing releases the GIL) and
    compare each root with its expectation. Results keep the input order. ``cache_dir``:
    the leaf cache (None: hash every byte)."""
    paths = list(paths)

    def one(p: str) -> ReattestEntry:
        return reattest_one(p, expect, cache_dir)

    results: dict[str, ReattestEntry] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(one, p): p for p in paths}
        for fut in as_completed(futures):
            entry = fut.result()
            results[futures[fut]] = entry
            if on_done is not None:
                on_done(entry)
    return [results[p] for p in paths]


def write_report(entries: list[ReattestEntry], out: Path) -> None:
    """JSON (a list of entries) or, for a .parquet suffix, a polars-written table."""
    rows = [asdict(e) for e in entries]
    if out.suffix == ".parquet":
        import polars as pl

        schema = {
            "path": pl.String,
            "status": pl.String,
            "root": pl.String,
            "expected": pl.String,
            "tensors": pl.Int64,
            "bytes": pl.Int64,
            "seconds": pl.Float64,
            "error": pl.String,
        }
        pl.DataFrame(rows, schema=schema, orient="row").write_parquet(out)
    else:
        out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
