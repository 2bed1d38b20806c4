"""The routing snapshot: which release serves which request.

A :class:`RoutingSnapshot` is one immutable value (frozen dataclasses and tuples all the way
down) holding the stable release, the candidate release with its weight, the shadow flag and a
version number. The gateway keeps exactly one reference to the live snapshot and replaces it
atomically; a request reads that reference once, at admission, and everything it then uses
(model name, endpoint, prompt template, routing) comes from that one value, so a response can
never mix the prompt of one release with the model of another.

Split: ``bucket = H(session key) mod 10000`` where ``H`` is the first 8 bytes of SHA-256 of the
UTF-8 session key read as a big-endian unsigned integer. A request goes to the candidate iff the
candidate's routing matchers accept it and ``bucket < weight_bp``. The split is sticky (same key,
same bucket) and monotone (a key on the candidate at ``w`` stays on it at every ``w' > w``).

Session key, in order: header ``x-relgate-session``, the request's ``user`` field, the client
address. Slice, in order: header ``x-relgate-slice``, ``metadata.slice``, the value of the first
routing matcher (candidate's, then stable's) that the request's metadata satisfies, else
``"default"``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from relgate.access import DEFAULT_TENANT
from relgate.errors import InvalidInputError
from relgate.manifest import (
    Generation,
    PromptTemplate,
    ReleaseClass,
    ReleaseManifest,
    Rendered,
    Routing,
    matcher_slice,
    traffic_class,
)
from relgate.prompt import render_request

#: Weights are basis points: integers in [0, FULL_WEIGHT_BP] (10,000 = 100%). The sticky split
#: and every rollout step speak this one unit.
FULL_WEIGHT_BP = 10_000
SESSION_HEADER = "x-relgate-session"
SLICE_HEADER = "x-relgate-slice"
RELEASE_HEADER = "x-relgate-release"
TRACE_HEADER = "x-relgate-trace-id"
DEFAULT_SLICE = "default"

#: Which side of a snapshot served a request.
Arm = Literal["stable", "candidate"]


def session_bucket(session_key: str) -> int:
    """Return ``H(session_key) mod 10000`` (H: first 8 bytes of SHA-256, big-endian)."""
    digest = hashlib.sha256(session_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % FULL_WEIGHT_BP


@dataclass(frozen=True, slots=True)
class ReleaseRoute:
    """Everything the gateway needs to serve one release.

    ``endpoint`` is an OpenAI-compatible base URL (``http://host:port/v1``): the gateway posts
    to ``endpoint + "/chat/completions"``. ``routing`` None means all traffic. ``generation``
    and ``classes`` are the release's generation settings and per-class overrides
    (``relgate.prompt``), applied by :meth:`render`.
    """

    release_sha256: str
    endpoint: str
    model: str
    prompt_template: PromptTemplate
    routing: Routing | None = None
    generation: Generation | None = None
    classes: tuple[tuple[str, ReleaseClass], ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.release_sha256):
            raise InvalidInputError(
                f"release_sha256: not a sha256 hex digest: {self.release_sha256!r}"
            )
        if not self.endpoint.startswith(("http://", "https://")):
            raise InvalidInputError(f"endpoint: not an http(s) URL: {self.endpoint!r}")

    @property
    def completions_url(self) -> str:
        """The URL chat completions are posted to."""
        return self.endpoint.rstrip("/") + "/chat/completions"

    def accepts(self, attrs: Mapping[str, str]) -> bool:
        """True when the release's routing accepts the request (no routing: all traffic)."""
        return self.routing is None or self.routing.accepts(attrs)

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        metadata: Mapping[str, Any] | None,
        attrs: Mapping[str, str],
    ) -> Rendered:
        """The request this release sends for ``messages``: the template and settings of the
        class ``attrs`` (request labels with ``slice``) selects, else the release's own; the
        same function the gate renders suite items with (``ReleaseManifest.render``)."""
        return render_request(
            self.prompt_template, self.generation, dict(self.classes), messages, metadata, attrs
        )

    @classmethod
    def from_manifest(cls, manifest: ReleaseManifest) -> ReleaseRoute:
        """The route of a registered release: its endpoint, served model name, prompt
        template and routing, from the one manifest (docs/design.md §2)."""
        return cls(
            manifest.sha256,
            manifest.model.endpoint,
            manifest.served_model,
            manifest.prompt_template,
            manifest.routing,
            manifest.generation,
            tuple(sorted((manifest.classes or {}).items())),
        )


@dataclass(frozen=True, slots=True)
class Classification:
    """What the gateway learned about a request before choosing a release."""

    traffic_class: str
    slice: str
    session_key: str
    bucket: int
    attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RoutingSnapshot:
    """One immutable routing state of one tenant. Build a new one (with a higher version) to
    change it.

    ``weight_bp`` is the candidate's share in basis points (0..10000). With ``shadow`` set the
    candidate serves nothing: eligible requests (same split rule) are mirrored to it and only
    recorded.
    """

    version: int
    stable: ReleaseRoute
    candidate: ReleaseRoute | None = None
    weight_bp: int = 0
    shadow: bool = False
    tenant: str = DEFAULT_TENANT

    def __post_init__(self) -> None:
        if not 0 <= self.weight_bp <= FULL_WEIGHT_BP:
            raise InvalidInputError(f"weight_bp: {self.weight_bp} outside 0..{FULL_WEIGHT_BP}")
        if self.version < 0:
            raise InvalidInputError("version: must be >= 0")
        if self.candidate is None and (self.weight_bp or self.shadow):
            raise InvalidInputError("weight_bp/shadow need a candidate")
        if (
            self.candidate is not None
            and self.candidate.release_sha256 == self.stable.release_sha256
        ):
            raise InvalidInputError("candidate and stable are the same release")

    def routes(self) -> tuple[ReleaseRoute, ...]:
        """The releases this snapshot can reach."""
        return (self.stable,) if self.candidate is None else (self.stable, self.candidate)

    def with_weight(self, weight_bp: int) -> RoutingSnapshot:
        """The next snapshot with the candidate at ``weight_bp``."""
        return replace(self, version=self.version + 1, weight_bp=weight_bp)

    def promoted(self) -> RoutingSnapshot:
        """The next snapshot with the candidate made stable and no candidate."""
        if self.candidate is None:
            raise InvalidInputError("no candidate to promote")
        return RoutingSnapshot(self.version + 1, self.candidate)

    def switched_to(self, route: ReleaseRoute) -> RoutingSnapshot:
        """The next snapshot serving only ``route`` (rollback: route of ``previous_release``)."""
        return RoutingSnapshot(self.version + 1, route)

    def classify(
        self,
        headers: Mapping[str, str],
        body: Mapping[str, Any],
        client_address: str,
    ) -> Classification:
        """Derive traffic class, slice, session key and bucket for one request.

        ``headers`` must be case-insensitive (aiohttp's are) or use lower-case names.
        """
        raw_meta = body.get("metadata")
        attrs: dict[str, str] = (
            {k: v for k, v in raw_meta.items() if isinstance(k, str) and isinstance(v, str)}
            if isinstance(raw_meta, Mapping)
            else {}
        )
        user = body.get("user")
        session = (
            headers.get(SESSION_HEADER)
            or (user if isinstance(user, str) and user else None)
            or client_address
            or "anonymous"
        )
        routings = [r.routing for r in (self.candidate, self.stable) if r is not None and r.routing]
        hit = next((m for r in routings if (m := r.match(attrs)) is not None), None)
        slice_name = headers.get(SLICE_HEADER) or attrs.get("slice")
        if not slice_name:
            slice_name = (matcher_slice(hit) if hit is not None else None) or DEFAULT_SLICE
        if not routings:
            klass = "all"
        elif hit is not None:
            klass = traffic_class(hit)
        else:
            klass = "unmatched"
        return Classification(klass, slice_name, session, session_bucket(session), attrs)

    def choose(self, c: Classification) -> tuple[ReleaseRoute, Arm]:
        """The release that serves a classified request (never the candidate in shadow mode)."""
        if self.candidate is not None and not self.shadow and self._eligible(c):
            return self.candidate, "candidate"
        return self.stable, "stable"

    def mirror_target(self, c: Classification) -> ReleaseRoute | None:
        """In shadow mode, the candidate a request is mirrored to (else None)."""
        if self.candidate is not None and self.shadow and self._eligible(c):
            return self.candidate
        return None

    def _eligible(self, c: Classification) -> bool:
        assert self.candidate is not None
        return c.bucket < self.weight_bp and self.candidate.accepts(c.attrs)


__all__ = [
    "DEFAULT_SLICE",
    "DEFAULT_TENANT",
    "FULL_WEIGHT_BP",
    "RELEASE_HEADER",
    "SESSION_HEADER",
    "SLICE_HEADER",
    "TRACE_HEADER",
    "Arm",
    "Classification",
    "DrainResult",
    "FleetAcks",
    "ReleaseRoute",
    "RoutingChange",
    "RoutingSnapshot",
    "SwapRecord",
    "session_bucket",
]


@dataclass(frozen=True, slots=True)
class SwapRecord:
    """A gateway made a snapshot live: the tenant, the versions, and the gateway-clock time
    from which every admitted request reads the new one."""

    tenant: str
    old_version: int | None
    new_version: int
    at: float


@dataclass(frozen=True, slots=True)
class DrainResult:
    """Outcome of waiting for requests pinned to snapshots older than ``before_version``."""

    before_version: int
    waited_for: int
    finished: int
    cut_off: int
    elapsed_s: float

    @property
    def complete(self) -> bool:
        """True when every old request finished before the deadline."""
        return self.cut_off == 0


@dataclass(frozen=True, slots=True)
class FleetAcks:
    """How a fleet of gateway replicas took one snapshot: which replicas acked it and how long
    each took from publication (seconds), which did not before the deadline, and whether the
    swap is complete (every replica live at publication acked). In-process gateways count."""

    tenant: str
    version: int
    acked: tuple[tuple[str, float], ...]
    missing: tuple[str, ...]
    deadline_s: float
    elapsed_s: float

    @property
    def complete(self) -> bool:
        """True when no replica is missing."""
        return not self.missing

    def evidence(self) -> dict[str, object]:
        """The receipt's evidence (names sorted; times in milliseconds)."""
        return {
            "version": self.version,
            "acked": {name: round(s * 1e3, 3) for name, s in sorted(self.acked)},
            "missing": sorted(self.missing),
            "deadline_s": self.deadline_s,
            "elapsed_ms": round(self.elapsed_s * 1e3, 3),
            "complete": self.complete,
        }


@dataclass(frozen=True, slots=True)
class RoutingChange:
    """One published change of a tenant's routing: what the new snapshot serves, when it was
    published, how long the swap took, and (once known) how the drain before it went."""

    tenant: str
    version: int
    serves: str
    candidate: str | None
    weight_bp: int
    shadow: bool
    published_at: float
    swap_s: float
    drain: DrainResult | None = None
    acks: FleetAcks | None = None

    @classmethod
    def of(cls, snap: RoutingSnapshot, published_at: float, swap_s: float) -> RoutingChange:
        """The change that published ``snap``."""
        return cls(
            tenant=snap.tenant,
            version=snap.version,
            serves=snap.stable.release_sha256,
            candidate=None if snap.candidate is None else snap.candidate.release_sha256,
            weight_bp=snap.weight_bp,
            shadow=snap.shadow,
            published_at=published_at,
            swap_s=swap_s,
        )
