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
from typing import Any, Literal, Protocol

from relgate.errors import InvalidInputError, ManifestError

#: Basis points: weights are integers in [0, BUCKETS].
BUCKETS = 10_000
SESSION_HEADER = "x-relgate-session"
SLICE_HEADER = "x-relgate-slice"
RELEASE_HEADER = "x-relgate-release"
TRACE_HEADER = "x-relgate-trace-id"
DEFAULT_SLICE = "default"

Role = Literal["stable", "candidate"]


def session_bucket(session_key: str) -> int:
    """Return ``H(session_key) mod 10000`` (H: first 8 bytes of SHA-256, big-endian)."""
    digest = hashlib.sha256(session_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


# `{name}` and `{{ name }}` are placeholders (the two spellings the manifest accepts). Only
# declared names are replaced; values are inserted verbatim and never re-scanned, and there are
# no attribute or index lookups (unlike str.format), so user text cannot reach Python objects.
_PLACEHOLDER = re.compile(
    r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}|\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}"
)


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A release's prompt: system message, template text and the variable names it uses.

    ``template`` uses ``{name}`` or ``{{ name }}`` placeholders for the declared ``variables``;
    any other brace text (undeclared names, JSON examples) is left as is.
    """

    system: str
    template: str
    variables: tuple[str, ...]
    ref: str = ""

    def __post_init__(self) -> None:
        for name in self.variables:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ManifestError(f"prompt_template.variables: {name!r} is not an identifier")
        if len(set(self.variables)) != len(self.variables):
            raise ManifestError("prompt_template.variables: duplicate names")

    def render(self, values: Mapping[str, str]) -> str:
        """Fill the template; a declared variable missing from ``values`` is an error."""
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise InvalidInputError(f"prompt variables missing: {', '.join(missing)}")
        declared = set(self.variables)

        def sub(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            return values[name] if name in declared else m.group(0)

        return _PLACEHOLDER.sub(sub, self.template)

    def render_messages(
        self, messages: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Render this template into an OpenAI ``messages`` list.

        The release's system message comes first; the client's messages follow unchanged except
        the last user message, whose text becomes the rendered template. Variables are taken
        from ``metadata`` (string values); the last user message fills ``input`` when declared,
        else the one declared variable that metadata left unfilled; when no variable takes it,
        the rendered template is followed by a blank line and the user's text.
        """
        if not all(isinstance(m, Mapping) for m in messages):
            raise InvalidInputError("messages: every message must be an object")
        msgs = [dict(m) for m in messages]
        last_user = next(
            (i for i in range(len(msgs) - 1, -1, -1) if msgs[i].get("role") == "user"), None
        )
        if last_user is None:
            raise InvalidInputError("messages: no user message")
        user_text = message_text(msgs[last_user])
        values = {
            k: v for k, v in (metadata or {}).items() if k in self.variables and isinstance(v, str)
        }
        unfilled = [v for v in self.variables if v not in values]
        takes_user = "input" if "input" in unfilled else unfilled[0] if len(unfilled) == 1 else None
        if takes_user is not None:
            values[takes_user] = user_text
        rendered = self.render(values)
        if takes_user is None:
            # No variable takes the user's text: the template leads, the text follows.
            rendered = f"{rendered}\n\n{user_text}" if rendered else user_text
        msgs[last_user] = {**msgs[last_user], "content": rendered}
        if self.system:
            msgs.insert(0, {"role": "system", "content": self.system})
        return msgs


def last_user_text(messages: Sequence[Any]) -> str:
    """The text of the last user message ("" when there is none)."""
    for m in reversed(messages):
        if isinstance(m, Mapping) and m.get("role") == "user":
            return message_text(m)
    return ""


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one chat message (string content, or the text parts of a content list)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "".join(p for p in parts if isinstance(p, str))
    raise InvalidInputError("messages: a message has no text content")


@dataclass(frozen=True, slots=True)
class Matcher:
    """One traffic-class matcher: the request's labels must equal every ``(key, value)`` pair.

    An empty matcher accepts all traffic (the manifest's catch-all ``{}``).
    """

    pairs: tuple[tuple[str, str], ...]

    def accepts(self, attrs: Mapping[str, str]) -> bool:
        """True when every pair is present in ``attrs`` with that value."""
        return all(attrs.get(k) == v for k, v in self.pairs)

    @property
    def traffic_class(self) -> str:
        """A stable name for the class this matcher selects (``"all"`` for the catch-all)."""
        return ",".join(f"{k}={v}" for k, v in self.pairs) or "all"

    @property
    def slice(self) -> str | None:
        """The slice this matcher implies: its ``slice`` label, else its only value."""
        d = dict(self.pairs)
        if "slice" in d:
            return d["slice"]
        return self.pairs[0][1] if len(self.pairs) == 1 else None


def matchers_from_routing(routing: Any) -> tuple[Matcher, ...]:
    """Matchers from a manifest's ``routing``, in any of the forms the manifest accepts.

    ``{"matchers": [{"domain": "legal"}, ...]}`` (the canonical form), a bare list of matcher
    objects, or the narrative's shorthand ``{"domain": "legal"}`` (one matcher). A request is
    in the release's traffic when any matcher accepts it.
    """
    if isinstance(routing, Mapping) and "matchers" in routing:
        routing = routing["matchers"]
    if isinstance(routing, Mapping):
        routing = [routing]
    if not isinstance(routing, list | tuple):
        raise ManifestError(
            "routing: expected {'matchers': [...]}, a list of matchers or one matcher"
        )
    out: list[Matcher] = []
    for i, m in enumerate(routing):
        if not isinstance(m, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in m.items()
        ):
            raise ManifestError(f"routing.matchers[{i}]: expected an object of string labels")
        out.append(Matcher(tuple(sorted(m.items()))))
    return tuple(out)


class ManifestLike(Protocol):
    """What :meth:`ReleaseRoute.from_manifest` needs of a :class:`relgate.ReleaseManifest`."""

    @property
    def sha256(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ReleaseRoute:
    """Everything the gateway needs to serve one release.

    ``endpoint`` is an OpenAI-compatible base URL (``http://host:port/v1``): the gateway posts
    to ``endpoint + "/chat/completions"``.
    """

    release_sha256: str
    endpoint: str
    model: str
    prompt_template: PromptTemplate
    matchers: tuple[Matcher, ...] = ()

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
        """True when any matcher accepts the request (no matchers at all: all traffic)."""
        return not self.matchers or any(m.accepts(attrs) for m in self.matchers)

    @classmethod
    def from_manifest(
        cls, manifest: ManifestLike | Mapping[str, Any], release_sha256: str | None = None
    ) -> ReleaseRoute:
        """Build a route from a :class:`relgate.ReleaseManifest` (or its ``to_dict()`` form
        plus ``release_sha256``), DESIGN section 2 field names.

        The endpoint is ``model.endpoint``; the served model name is ``model.served_name``,
        else ``model.model`` (api), ``model.repo`` (hf) or ``model.path`` (local).
        """
        if isinstance(manifest, Mapping):
            data: Mapping[str, Any] = manifest
            if release_sha256 is None:
                raise InvalidInputError("release_sha256 is required with a plain mapping")
        else:
            data = manifest.to_dict()
            release_sha256 = release_sha256 or manifest.sha256
        model = data.get("model")
        if not isinstance(model, Mapping):
            raise ManifestError("model: missing")
        endpoint = model.get("endpoint", data.get("endpoint"))
        if not isinstance(endpoint, str):
            raise ManifestError("model.endpoint: missing")
        keys = ("served_name", "model", "repo", "path")
        name = next((model[k] for k in keys if isinstance(model.get(k), str)), None)
        if name is None:
            raise ManifestError("model: no model name (served_name, model, repo or path)")
        pt = data.get("prompt_template")
        if not isinstance(pt, Mapping):
            raise ManifestError("prompt_template: missing")
        template = PromptTemplate(
            system=str(pt.get("system", "")),
            template=str(pt.get("template", "{input}")),
            variables=tuple(pt.get("variables", ("input",))),
            ref=str(pt.get("ref", "")),
        )
        routing = data.get("routing") or {"matchers": [{}]}
        return cls(release_sha256, endpoint, name, template, matchers_from_routing(routing))


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
    """One immutable routing state. Build a new one (with a higher version) to change it.

    ``weight_bp`` is the candidate's share in basis points (0..10000). With ``shadow`` set the
    candidate serves nothing: eligible requests (same split rule) are mirrored to it and only
    recorded.
    """

    version: int
    stable: ReleaseRoute
    candidate: ReleaseRoute | None = None
    weight_bp: int = 0
    shadow: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.weight_bp <= BUCKETS:
            raise InvalidInputError(f"weight_bp: {self.weight_bp} outside 0..{BUCKETS}")
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
        matchers = (*(self.candidate.matchers if self.candidate else ()), *self.stable.matchers)
        hit = next((m for m in matchers if m.accepts(attrs)), None)
        slice_name = headers.get(SLICE_HEADER) or attrs.get("slice")
        if not slice_name:
            slice_name = (hit.slice if hit is not None else None) or DEFAULT_SLICE
        if not matchers:
            traffic_class = "all"
        elif hit is not None:
            traffic_class = hit.traffic_class
        else:
            traffic_class = "unmatched"
        return Classification(traffic_class, slice_name, session, session_bucket(session), attrs)

    def choose(self, c: Classification) -> tuple[ReleaseRoute, Role]:
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
    "BUCKETS",
    "DEFAULT_SLICE",
    "RELEASE_HEADER",
    "SESSION_HEADER",
    "SLICE_HEADER",
    "TRACE_HEADER",
    "Classification",
    "ManifestLike",
    "Matcher",
    "PromptTemplate",
    "ReleaseRoute",
    "Role",
    "RoutingSnapshot",
    "last_user_text",
    "matchers_from_routing",
    "message_text",
    "session_bucket",
]
