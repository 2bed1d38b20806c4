"""The store: releases, receipts and facts; tree heads and anchors (``store.audit``) and API keys
(``store.keys``) beside them, on one database (``relgate.store.db``).

SQLAlchemy Core over SQLite (the default: ``DATA_DIR/relgate.db`` in WAL mode) or PostgreSQL
(by URL); the schema is created and upgraded by the bundled Alembic migrations on ``open``.

Guarantees:

- Append-only: there is no UPDATE or DELETE statement in this module, and the schema's
  triggers refuse them (see ``relgate.store.schema``).
- Atomic decisions: a receipt and the facts it records (or a release and its register
  receipt) commit in one transaction, so a crash leaves both or neither.
- No forks: every write transaction is serialized per tenant before it reads the chain head
  (SQLite: ``BEGIN IMMEDIATE``, which takes the database's write lock; PostgreSQL:
  ``pg_advisory_xact_lock`` on the tenant), and the schema's UNIQUE constraints reject a
  second receipt on the same predecessor even if that ever failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from relgate.access import DEFAULT_TENANT
from relgate.canonical import canonical_json
from relgate.errors import (
    IntegrityError,
    InvalidInputError,
    ManifestConflictError,
    NotFoundError,
)
from relgate.manifest import ReleaseManifest
from relgate.receipts.model import (
    TENANT_RECEIPT_KINDS,
    TENANT_SUBJECT,
    Receipt,
    weights_evidence,
)
from relgate.store import schema
from relgate.store.audit import AuditLog
from relgate.store.chain import append_receipt
from relgate.store.control import ControlRecords, Fence, check_fence
from relgate.store.db import Database, check_name
from relgate.store.engine import create_engine
from relgate.store.gate_runs import GateRunRecords
from relgate.store.jobs import JobRecords
from relgate.store.keys import KeyRecords
from relgate.store.migrate import upgrade_to_head
from relgate.store.records import RegisterResult, StoredFact, StoredRelease
from relgate.store.rows import (
    manifest_text,
    parse_stored_manifest,
    receipt_from_row,
    stored_release,
    tenant_release_row,
)
from relgate.store.traces import TraceRecords
from relgate.store.weights import (
    DEFAULT_SPOT_K,
    RECHECK_KIND,
    Rechecker,
    full_evidence,
    spot_check_evidence,
)

__all__ = ["Store"]

_RETRIES = 5


class Store:
    """Durable state of one relgate deployment. Thread-safe; open once per process."""

    def __init__(
        self,
        db: Database,
        *,
        data_dir: Path,
        weights_root: Path | None,
        spot_check_k: int = DEFAULT_SPOT_K,
        recheck_weights: bool = False,
    ) -> None:
        self.db = db
        self.data_dir = data_dir
        self._weights_root = weights_root
        self._spot_k = spot_check_k
        #: Background full re-checks of the weights (the server turns them on).
        self.rechecker = Rechecker(self._recheck) if recheck_weights else None
        #: Signed tree heads and where they were anchored.
        self.audit = AuditLog(db)
        #: API keys, by hash.
        self.keys = KeyRecords(db)
        #: The control plane's leader lease and rollout evidence between decisions.
        self.control = ControlRecords(db)
        #: Gate runs: request, state, owner and outcome (relgate.store.gate_runs).
        self.gate_runs = GateRunRecords(db)
        #: The judge-worker job queue (``relgate.app.jobs`` serves it to workers).
        self.jobs = JobRecords(db)
        #: The traces the replay monitor needs, bounded (``relgate.store.traces``).
        self.traces = TraceRecords(db)

    @property
    def weights_root(self) -> Path:
        """Where manifests' and the Attest RPC's weight paths resolve (and must stay)."""
        return self._weights_root if self._weights_root is not None else self.data_dir

    # ---- lifecycle ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        data_dir: Path,
        clock: Callable[[], datetime] | None = None,
        weights_root: Path | None = None,
        sync_commits: bool = True,
        spot_check_k: int = DEFAULT_SPOT_K,
        recheck_weights: bool = False,
    ) -> Store:
        """Open (creating and migrating as needed) the store.

        ``url`` None means ``sqlite:///DATA_DIR/relgate.db``; ``postgresql://...`` URLs use
        psycopg 3. ``clock`` (default: UTC now) stamps receipts; ``weights_root`` resolves
        relative weight paths in manifests (default: the data directory, so that what a
        manifest names does not depend on the server's working directory).
        ``sync_commits=False`` trades power-loss durability of the last commits for speed on
        SQLite (see ``relgate.store.engine.create_engine``); atomicity holds either way.
        ``spot_check_k`` is how many tensors a decision's weights spot check hashes;
        ``recheck_weights`` runs full re-checks in the background (``reattest`` receipts,
        relgate.store.weights).
        """
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        if url is None:
            url = f"sqlite:///{data_dir / 'relgate.db'}"
        db = Database(
            create_engine(url, sync_commits=sync_commits),
            clock or (lambda: datetime.now(UTC)),
        )
        store = cls(
            db,
            data_dir=data_dir,
            weights_root=weights_root if weights_root is not None else data_dir,
            spot_check_k=spot_check_k,
            recheck_weights=recheck_weights,
        )
        with db.transaction(lock_key="relgate-migrations") as conn:
            upgrade_to_head(conn)
        return store

    def close(self) -> None:
        """Stop the background re-checks and release all database connections."""
        if self.rechecker is not None:
            self.rechecker.close()
        self.db.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.db.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.db.engine.dialect.name

    def now(self) -> str:
        """The store clock's current time, RFC 3339 UTC (what receipts are stamped with)."""
        return self.db.now()

    # ---- releases -----------------------------------------------------------------------

    def register_release(
        self,
        manifest: ReleaseManifest,
        *,
        actor: str,
        tenant: str = DEFAULT_TENANT,
        expected_sha256: str | None = None,
        attest: bool = True,
    ) -> RegisterResult:
        """Register a release in ``tenant`` and write its register receipt, atomically.

        Open weights reachable from here are attested first (``attest=False`` skips that);
        a supplied attestation that differs from the measured one raises ``IntegrityError``.
        Idempotent per tenant: the same content registered again by the same tenant returns the
        stored release with ``created=False`` and its original receipt. Content another tenant
        registered is, for this tenant, a new release with its own receipt (nothing of the other
        tenant shows). ``expected_sha256`` that differs from the computed sha raises
        ``ManifestConflictError``; a ``previous_release`` that is not a release of this tenant
        raises ``NotFoundError``.
        """
        check_name("tenant", tenant)
        check_name("actor", actor)
        if attest:
            manifest = manifest.with_attestation(self.weights_root, confine=True)
        sha = manifest.sha256
        if expected_sha256 is not None and expected_sha256 != sha:
            raise ManifestConflictError(
                f"expected release {expected_sha256} but the manifest's content hashes to {sha}"
            )
        for attempt in range(_RETRIES):
            try:
                return self._register_once(manifest, actor=actor, tenant=tenant)
            except IntegrityError:
                # Another tenant's writer stored the same content between our read and our
                # insert (tenants do not serialize against each other on PostgreSQL): the
                # transaction rolled back, and the next attempt finds the content stored.
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _register_once(
        self, manifest: ReleaseManifest, *, actor: str, tenant: str
    ) -> RegisterResult:
        sha = manifest.sha256
        with self.db.transaction(lock_key=tenant) as conn:
            existing = tenant_release_row(conn, tenant, sha)
            if existing is not None:
                receipt_row = conn.execute(
                    sa.select(schema.receipts).where(
                        schema.receipts.c.tenant == tenant,
                        schema.receipts.c.release_sha256 == sha,
                        schema.receipts.c.kind == "register",
                    )
                ).one()
                return RegisterResult(
                    release=stored_release(existing, manifest_text(conn, sha)),
                    created=False,
                    receipt=receipt_from_row(receipt_row),
                )
            previous = manifest.previous_release
            if previous is not None and tenant_release_row(conn, tenant, previous) is None:
                raise NotFoundError(
                    f"previous_release {previous} is not a registered release of this tenant"
                )
            now = self.now()
            receipt = append_receipt(
                conn,
                kind="register",
                tenant=tenant,
                subject=sha,
                evidence={
                    "manifest_sha256": sha,
                    "release_id": manifest.release_id,
                    "previous_release": previous,
                    "weights": weights_evidence(manifest, manifest.weights_attestation),
                },
                actor=actor,
                reason="release registered",
                now=now,
            )
            if manifest_text(conn, sha) is None:
                # The content, stored once whoever registers it (its identity is its hash).
                conn.execute(
                    schema.releases.insert().values(
                        sha256=sha,
                        release_id=manifest.release_id,
                        tenant=tenant,
                        manifest=manifest.canonical_bytes().decode("utf-8"),
                        previous_release=previous,
                        actor=actor,
                        created_at=now,
                    )
                )
            conn.execute(
                schema.tenant_releases.insert().values(
                    tenant=tenant,
                    sha256=sha,
                    release_id=manifest.release_id,
                    previous_release=previous,
                    actor=actor,
                    created_at=now,
                )
            )
            stored = StoredRelease(
                sha256=sha,
                release_id=manifest.release_id,
                manifest=manifest,
                tenant=tenant,
                actor=actor,
                created_at=now,
            )
            return RegisterResult(release=stored, created=True, receipt=receipt)

    def get_release(self, handle: str, *, tenant: str) -> StoredRelease:
        """The tenant's release named by ``handle``: its sha256, a unique prefix of it (at
        least 6 hex characters, as git takes), or its ``rel_`` id. ``NotFoundError`` if the
        tenant has none (another tenant's releases do not exist here); ``InvalidInputError``
        for a malformed or ambiguous handle."""
        key = handle.strip().lower()
        tr = schema.tenant_releases.c
        if key.startswith("rel_") and _is_hex(key[4:]) and len(key) == 16:
            where = tr.release_id == key
        elif _is_hex(key) and len(key) == 64:
            where = tr.sha256 == key
        elif _is_hex(key) and 6 <= len(key) < 64:
            where = tr.sha256.startswith(key, autoescape=True)
        else:
            raise InvalidInputError(
                f"{handle!r} is not a release sha256 (64 hex, or a unique prefix of at least "
                "6), nor a rel_ id"
            )
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(schema.tenant_releases).where(tr.tenant == tenant, where).limit(2)
            ).all()
            if not rows:
                raise NotFoundError(f"no release {key}")
            if len(rows) > 1:
                raise InvalidInputError(
                    f"{key} names more than one release of this tenant: give more of the sha256"
                )
            return stored_release(rows[0], manifest_text(conn, rows[0].sha256))

    def manifest(self, sha256: str) -> ReleaseManifest:
        """The manifest with this content hash (content is immutable and global; what a tenant
        may see is ``get_release``). ``NotFoundError`` if no release has this content."""
        with self.db.read() as conn:
            text = manifest_text(conn, sha256)
        if text is None:
            raise NotFoundError(f"no release {sha256}")
        return parse_stored_manifest(sha256, text)

    def list_releases(
        self, *, tenant: str = DEFAULT_TENANT, limit: int = 100
    ) -> list[StoredRelease]:
        """The tenant's releases, newest first."""
        tr = schema.tenant_releases.c
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(schema.tenant_releases, schema.releases.c.manifest)
                .join(schema.releases, schema.releases.c.sha256 == tr.sha256)
                .where(tr.tenant == tenant)
                .order_by(tr.created_at.desc(), tr.sha256)
                .limit(max(0, limit))
            ).all()
        return [stored_release(r, r.manifest) for r in rows]

    # ---- decisions ----------------------------------------------------------------------

    def record_decision(
        self,
        *,
        tenant: str,
        release_sha: str,
        kind: str,
        evidence: dict[str, Any],
        actor: str,
        reason: str,
        facts: Sequence[tuple[str, dict[str, Any]]] = (),
        measure_weights: bool | str = "spot",
        fence: Fence | None = None,
    ) -> Receipt:
        """Write one decision's receipt and its facts in one transaction (both or neither).

        Unless ``evidence`` already has a ``weights`` entry, one is added (docs/design.md §6,
        docs/attestation.md): for open weights reachable from here, by default
        (``measure_weights="spot"``) a spot check of ``spot_check_k`` random tensors against
        the registered root with their inclusion proofs (no full hash on the decision path;
        with background re-checks on, a full one is queued); ``"full"`` (or True) hashes
        every byte now and compares the root; False records them as not measured. For API
        models: that weights cannot be attested and why.

        A tenant-level decision (a key created or revoked, an operator's access) has the subject
        ``TENANT_SUBJECT`` instead of a release, and no weights statement.

        ``fence``: the leader lease's epoch the writer holds; checked in the decision's own
        transaction, so a deposed leader's decision is refused (``LeaseLostError``) and nothing
        of it is written (``relgate.store.control``).

        The tenant chain is serialized, so concurrent decisions never fork it. Raises
        ``NotFoundError`` for a release the tenant does not have and ``InvalidInputError`` for
        bad fields.
        """
        check_name("tenant", tenant)
        check_name("actor", actor)
        if kind == "register":
            raise InvalidInputError("register receipts are written by register_release")
        if not isinstance(evidence, dict):
            raise InvalidInputError("evidence must be a JSON object")
        tenant_level = release_sha == TENANT_SUBJECT
        if tenant_level != (kind in TENANT_RECEIPT_KINDS):
            raise InvalidInputError(
                f"receipt kind {kind} is about "
                + ("the tenant, not a release" if kind in TENANT_RECEIPT_KINDS else "a release")
            )
        if "weights" not in evidence and not tenant_level:
            manifest = self.get_release(release_sha, tenant=tenant).manifest  # NotFoundError
            if measure_weights not in (True, False, "spot", "full"):
                raise InvalidInputError("measure_weights must be 'spot', 'full' or False")
            if measure_weights in (True, "full"):
                weights = full_evidence(manifest, self.weights_root, self.now)
            elif measure_weights == "spot":
                weights = spot_check_evidence(manifest, self.weights_root, self._spot_k, self.now)
                if self.rechecker is not None and weights.get("mode") == "spot_check":
                    self.rechecker.schedule(tenant, release_sha)
            else:
                weights = weights_evidence(
                    manifest, None, why="not measured for this decision (measure_weights=False)"
                )
            evidence = {**evidence, "weights": weights}
        fact_rows = []
        for fact_kind, payload in facts:
            if not isinstance(fact_kind, str) or not fact_kind or len(fact_kind) > 64:
                raise InvalidInputError("fact kind must be 1 to 64 characters")
            if not isinstance(payload, dict):
                raise InvalidInputError(f"fact {fact_kind!r}: payload must be a JSON object")
            fact_rows.append((fact_kind, canonical_json(payload).decode("utf-8")))
        with self.db.transaction(lock_key=tenant) as conn:
            check_fence(conn, fence)
            if not tenant_level and tenant_release_row(conn, tenant, release_sha) is None:
                raise NotFoundError(f"no release {release_sha}")
            if tenant_level and fact_rows:
                raise InvalidInputError("a tenant-level receipt records no release facts")
            now = self.now()
            receipt = append_receipt(
                conn,
                kind=kind,
                tenant=tenant,
                subject=release_sha,
                evidence=evidence,
                actor=actor,
                reason=reason,
                now=now,
            )
            for fact_kind, payload_json in fact_rows:
                conn.execute(
                    schema.facts.insert().values(
                        release_sha256=release_sha,
                        tenant=tenant,
                        kind=fact_kind,
                        payload=payload_json,
                        receipt_sha256=receipt.receipt_sha256,
                        created_at=now,
                    )
                )
            return receipt

    def _recheck(self, tenant: str, release_sha: str) -> None:
        """The background full re-check: every byte hashed, a ``reattest`` receipt."""
        manifest = self.get_release(release_sha, tenant=tenant).manifest
        weights = full_evidence(manifest, self.weights_root, self.now)
        self.record_decision(
            tenant=tenant,
            release_sha=release_sha,
            kind=RECHECK_KIND,
            evidence={"weights": weights},
            actor="relgate-recheck",
            reason="background full re-check of the weights",
        )

    def facts(self, release_sha: str, kind: str | None = None, *, tenant: str) -> list[StoredFact]:
        """Facts the tenant recorded about a release, in the order they were written,
        optionally of one kind."""
        f = schema.facts.c
        query = sa.select(schema.facts).where(f.tenant == tenant, f.release_sha256 == release_sha)
        if kind is not None:
            query = query.where(f.kind == kind)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(f.seq)).all()
        return [
            StoredFact(
                seq=row.seq,
                release_sha=row.release_sha256,
                kind=row.kind,
                payload=json.loads(row.payload),
                receipt_sha256=row.receipt_sha256,
                created_at=row.created_at,
            )
            for row in rows
        ]

    # ---- receipts -----------------------------------------------------------------------

    def list_receipts(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        release_sha: str | None = None,
        limit: int | None = None,
        after_seq: int | None = None,
    ) -> list[Receipt]:
        """The tenant's receipts in chain order (oldest first), optionally only those about
        one release, only those after ``after_seq``, and at most ``limit`` of them."""
        r = schema.receipts.c
        query = sa.select(schema.receipts).where(r.tenant == tenant)
        if release_sha is not None:
            query = query.where(r.release_sha256 == release_sha)
        if after_seq is not None:
            query = query.where(r.seq > after_seq)
        query = query.order_by(r.seq)
        if limit is not None:
            query = query.limit(max(0, limit))
        with self.db.read() as conn:
            return [receipt_from_row(row) for row in conn.execute(query)]

    def receipt_rows(self, *, tenant: str = DEFAULT_TENANT) -> list[tuple[int, str, str]]:
        """``(seq, receipt_sha256, stored canonical body)`` for every receipt of the tenant, in
        chain order, without parsing: what the Merkle tree and bundle export need."""
        r = schema.receipts.c
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(r.seq, r.receipt_sha256, r.body).where(r.tenant == tenant).order_by(r.seq)
            ).all()
        return [(row.seq, row.receipt_sha256, row.body) for row in rows]

    def receipt_shas(self, *, tenant: str = DEFAULT_TENANT) -> list[str]:
        """Every ``receipt_sha256`` of the tenant in chain order: the Merkle tree's leaves."""
        r = schema.receipts.c
        with self.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(r.receipt_sha256).where(r.tenant == tenant).order_by(r.seq)
                ).scalars()
            )

    def tenants(self) -> list[str]:
        """Every tenant that has at least one receipt."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(schema.receipts.c.tenant)
                    .distinct()
                    .order_by(schema.receipts.c.tenant)
                ).scalars()
            )


# ---- helpers ------------------------------------------------------------------------------


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)
