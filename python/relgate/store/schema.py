"""The store's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Append-only by construction: the code has no UPDATE or DELETE path for releases, receipts,
facts, tree heads or anchors, and the schema refuses both anyway. Migration 0001 installs
BEFORE UPDATE and BEFORE DELETE triggers on each of those tables (SQLite:
``RAISE(ABORT, ...)``; PostgreSQL: a plpgsql function that raises, plus a BEFORE TRUNCATE
trigger), so a direct ``UPDATE receipts ...`` from any client fails.

Tenancy. ``releases`` holds manifests by content (the sha256 is the content's identity, so one
row per content whoever registered it; its ``tenant``/``actor`` columns record the first
registration and are never read as tenancy). What a tenant has registered is
``tenant_releases`` (PRIMARY KEY (tenant, sha256)): the same content registered by two tenants
is two releases with separate receipts and chains, and a ``previous_release`` must be a release
of the same tenant (a composite foreign key). Every lookup goes through ``tenant_releases``.

SQLite's ``INSERT OR REPLACE`` deletes the conflicting row without firing DELETE triggers, so
every append-only table also has a BEFORE INSERT trigger refusing an insert that collides with
a stored row on any unique key (PostgreSQL's ``ON CONFLICT DO UPDATE`` fires the UPDATE
trigger). API keys are append-only too: a key is revoked by a row in ``key_revocations``.

Chains cannot fork, whatever the code does: ``prev_receipt_sha256`` is NOT NULL (a tenant's
first receipt links to the ``GENESIS`` sentinel, not NULL, because NULLs never collide in a
UNIQUE index) and UNIQUE per tenant, so two receipts can never name the same predecessor; the
release chain has the same constraint per (tenant, release), and ``seq`` (the Merkle leaf
index) is UNIQUE per tenant. A release has at most one register receipt (a partial unique
index per tenant).
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from relgate.access import Role

__all__ = [
    "APPEND_ONLY_TABLES",
    "GENESIS",
    "UNIQUE_KEYS",
    "anchors",
    "api_keys",
    "facts",
    "gate_runs",
    "judge_jobs",
    "key_revocations",
    "leases",
    "metadata",
    "receipts",
    "releases",
    "rollout_evidence",
    "tenant_releases",
    "traces",
    "tree_heads",
]

#: Stands for "no previous receipt" in the database (the receipt body says null).
GENESIS = "0" * 64

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

SHA = 64

releases = Table(
    "releases",
    metadata,
    Column("sha256", String(SHA), primary_key=True),
    # Not unique: 48 bits of sha can collide (by chance at ~16M releases, or by design);
    # the sha256 is the identity, and an ambiguous short id is refused on lookup.
    Column("release_id", String(16), nullable=False, index=True),
    Column("tenant", String(256), nullable=False, index=True),
    # Canonical JSON of the manifest: exactly the bytes the sha256 is taken over.
    Column("manifest", Text, nullable=False),
    Column("previous_release", String(SHA), ForeignKey("releases.sha256"), nullable=True),
    Column("actor", String(256), nullable=False),
    Column("created_at", String(32), nullable=False),
)

tenant_releases = Table(
    "tenant_releases",
    metadata,
    Column("tenant", String(256), primary_key=True),
    Column("sha256", String(SHA), ForeignKey("releases.sha256"), primary_key=True),
    Column("release_id", String(16), nullable=False),
    Column("previous_release", String(SHA), nullable=True),
    Column("actor", String(256), nullable=False),
    Column("created_at", String(32), nullable=False),
    ForeignKeyConstraint(
        ["tenant", "previous_release"],
        ["tenant_releases.tenant", "tenant_releases.sha256"],
        name="fk_tenant_releases_previous_release",
    ),
    Index("ix_tenant_releases_tenant_release_id", "tenant", "release_id"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("receipt_sha256", String(SHA), primary_key=True),
    Column("tenant", String(256), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(64), nullable=False),
    # A release of the receipt's tenant, or TENANT_SUBJECT for a tenant-level receipt (checked
    # by the store: no key can say "a release of this tenant, or the sentinel").
    Column("release_sha256", String(SHA), nullable=False),
    Column("prev_receipt_sha256", String(SHA), nullable=False),
    Column("prev_release_receipt_sha256", String(SHA), nullable=False),
    # Canonical JSON of the body: receipt_sha256 is SHA-256 over these bytes.
    Column("body", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    CheckConstraint("seq >= 0", name="seq_nonnegative"),
    UniqueConstraint("tenant", "seq"),
    UniqueConstraint("tenant", "prev_receipt_sha256"),
    UniqueConstraint("tenant", "release_sha256", "prev_release_receipt_sha256"),
    Index(
        "uq_receipts_one_register_per_release",
        "tenant",
        "release_sha256",
        unique=True,
        sqlite_where=text("kind = 'register'"),
        postgresql_where=text("kind = 'register'"),
    ),
)

facts = Table(
    "facts",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("release_sha256", String(SHA), ForeignKey("releases.sha256"), nullable=False),
    Column("tenant", String(256), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("receipt_sha256", String(SHA), ForeignKey("receipts.receipt_sha256"), nullable=False),
    Column("created_at", String(32), nullable=False),
    Index("ix_facts_release_kind", "release_sha256", "kind"),
)

tree_heads = Table(
    "tree_heads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(256), nullable=False),
    Column("tree_size", Integer, nullable=False),
    Column("root_hex", String(SHA), nullable=False),
    Column("timestamp", String(32), nullable=False),
    Column("signature_b64", String(128), nullable=False),
    Column("public_key_b64", String(64), nullable=False),
    Index("ix_tree_heads_tenant_size", "tenant", "tree_size"),
)

anchors = Table(
    "anchors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(256), nullable=False),
    Column("tree_size", Integer, nullable=False),
    Column("root_hex", String(SHA), nullable=False),
    Column("sink", String(64), nullable=False),
    # Where the sink put it or what it answered (a file path, a token, command output).
    Column("ref", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("name", String(256), nullable=False),
    Column("tenant", String(256), nullable=False),
    Column("created_at", String(32), nullable=False),
    CheckConstraint(
        "role IN (" + ", ".join(f"'{label}'" for label in Role.labels()) + ")", name="role_known"
    ),
)

key_revocations = Table(
    "key_revocations",
    metadata,
    Column("key_hash", String(128), ForeignKey("api_keys.key_hash"), primary_key=True),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("revoked_at", String(32), nullable=False),
)

# ---- control plane (migration 0004): not append-only, and never a source of a receipt ----

#: The control plane's leader lease (one row per lease name). ``epoch`` is the fencing token: it
#: grows by one at every change of holder, and every decision write checks, in its own
#: transaction, that its epoch is still the lease's (``relgate.store.control``).
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("epoch", Integer, nullable=False),
    # Wall-clock seconds (the holder's clock): when a follower may take the lease over.
    Column("expires_at", Float, nullable=False),
    Column("acquired_at", Float, nullable=False),
    CheckConstraint("epoch > 0", name="epoch_positive"),
)

#: A rollout's readings and request counts between two decisions (the facts a decision
#: commits with its receipt later): ``n`` is the fact's index in the rollout's fact sequence.
#: Rows a receipt has since committed are deleted, so the table holds at most one step's worth.
rollout_evidence = Table(
    "rollout_evidence",
    metadata,
    Column("tenant", String(256), primary_key=True),
    Column("rollout_id", String(64), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("fact", Text, nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
)

# ---- durable work (migration 0005): not append-only ----------------------------------------

#: Gate runs (``relgate.store.gate_runs``): what a RunGate asked (decoded, as JSON), where it
#: stands and who works on it (``owner``, ``heartbeat_at``: a run whose owner stopped beating
#: is resumed by the leader), and its outcome (the ``gate_result`` fact's gate result sha256
#: and receipt, or the error). One unfinished run per tenant, release and request.
gate_runs = Table(
    "gate_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("tenant", String(256), nullable=False),
    Column("release_sha256", String(SHA), nullable=False),
    Column("request_sha256", String(SHA), nullable=False),
    Column("request", Text, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("answers_sha256", String(SHA)),
    Column("stage", String(32), nullable=False),
    Column("done", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("owner", String(128), nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("stats", Text, nullable=False),
    Column("error", Text),
    Column("gate_result_sha256", String(SHA)),
    Column("receipt_sha256", String(SHA)),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    CheckConstraint("state IN ('running', 'done', 'failed')", name="state_known"),
    Index("ix_gate_runs_tenant_release", "tenant", "release_sha256"),
    Index(
        "uq_gate_runs_one_running",
        "tenant",
        "release_sha256",
        "request_sha256",
        unique=True,
        sqlite_where=text("state = 'running'"),
        postgresql_where=text("state = 'running'"),
    ),
)

#: The judge-worker job queue (migration 0006): one row per job, content-addressed (``job_id`` is
#: the sha256 of tenant, judge and canonical spec), claimed with ``FOR UPDATE SKIP LOCKED`` on
#: PostgreSQL and under the write lock on SQLite (``relgate.store.jobs``). Rows change (claim,
#: renew, complete) and are deleted by retention: not an append-only table.
judge_jobs = Table(
    "judge_jobs",
    metadata,
    Column("job_id", String(SHA), primary_key=True),
    Column("tenant", String(256), nullable=False),
    Column("judge_sha256", String(SHA), nullable=False),
    Column("spec", Text, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("state", String(8), nullable=False),
    Column("worker_id", String(64)),
    # Wall-clock seconds: when another worker may take a leased job over.
    Column("lease_until", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("result", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    CheckConstraint("state IN ('queued', 'leased', 'done')", name="state_known"),
    Index("ix_judge_jobs_claim", "tenant", "judge_sha256", "state", "created_at"),
    Index("ix_judge_jobs_worker_id", "worker_id"),
    Index("ix_judge_jobs_state_updated_at", "state", "updated_at"),
)

#: The gateway traces the replay monitor samples (served and mirrored requests with an answer),
#: so a restarted control plane replays the traffic it had: ``trace`` is the trace's JSON. Rows
#: are bounded per (tenant, release, slice, shadow) and by age, oldest pruned first
#: (``relgate.store.traces``): not an append-only table.
traces = Table(
    "traces",
    metadata,
    Column("tenant", String(256), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("release_sha256", String(SHA), nullable=False),
    Column("slice", String(256), nullable=False),
    Column("shadow", Integer, nullable=False),
    Column("time", Float, nullable=False),
    Column("trace", Text, nullable=False),
    Index("ix_traces_tenant_release_sha256_slice_shadow_time",
          "tenant", "release_sha256", "slice", "shadow", "time"),
    Index("ix_traces_time", "time"),
)  # fmt: skip

#: Tables whose rows never change once written (triggers refuse UPDATE and DELETE).
APPEND_ONLY_TABLES: tuple[str, ...] = (
    "releases",
    "tenant_releases",
    "receipts",
    "facts",
    "tree_heads",
    "anchors",
    "api_keys",
    "key_revocations",
)

#: Every unique key of the append-only tables: (columns, partial-index condition or None). What
#: the SQLite insert triggers check so that INSERT OR REPLACE cannot delete a stored row.
UNIQUE_KEYS: dict[str, tuple[tuple[tuple[str, ...], str | None], ...]] = {
    "releases": ((("sha256",), None),),
    "tenant_releases": ((("tenant", "sha256"), None),),
    "receipts": (
        (("receipt_sha256",), None),
        (("tenant", "seq"), None),
        (("tenant", "prev_receipt_sha256"), None),
        (("tenant", "release_sha256", "prev_release_receipt_sha256"), None),
        (("tenant", "release_sha256"), "kind = 'register'"),
    ),
    "facts": ((("seq",), None),),
    "tree_heads": ((("id",), None),),
    "anchors": ((("id",), None),),
    "api_keys": ((("key_hash",), None),),
    "key_revocations": ((("key_hash",), None),),
}
