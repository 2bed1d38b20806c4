"""What a release sends its model for one request: the prompt template, the generation
settings, and the per-class overrides of both (docs/design.md §2, "Per-class settings").

A release may give a traffic class its own prompt template and generation settings
(``ReleaseManifest.classes``): the legal class a legal template, a stop sequence, a lower
``max_tokens``. :func:`render_request` is the one function that turns a prompt (or a chat
request) into the messages and settings sent to the release's endpoint; the gateway calls it
for live traffic and replays, the gate for every suite item, and ``answers.from_endpoint``
forwards what it returns. Values are part of the manifest, so they are hashed with it.

Class selection: a request's labels (its string ``metadata`` plus ``slice``, the slice the
gateway classified it into, or the suite item's slice in the gate) are tested against each
class in name order; the first class whose ``match`` labels all equal the request's, or whose
``slices`` name the request's slice, applies. A class's template replaces the release's; its
generation fields override the release's field by field.

Seeds: when the settings carry ``seed``, the seed sent with a request is derived from that
seed and the rendered messages (:func:`request_seed`), so the same release answers the same
prompt the same way in the gateway, the gate and a replay, and two releases that differ only
in their seed are an A/A pair.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from relgate.errors import InvalidInputError

__all__ = [
    "ClassName",
    "Generation",
    "Matcher",
    "PromptTemplate",
    "ReleaseClass",
    "Rendered",
    "last_user_text",
    "message_text",
    "render_request",
    "request_seed",
    "select_class",
]

_MAX_TEXT = 1024 * 1024
_MAX_LABEL = 256
_MAX_SAFE_INT = 2**53 - 1
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_label(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    if len(value) > _MAX_LABEL:
        raise ValueError(f"must be at most {_MAX_LABEL} characters")
    return value


Label = Annotated[str, AfterValidator(_check_label)]
Text = Annotated[str, Field(max_length=_MAX_TEXT)]
#: Request labels a class or a routing rule matches (all must be equal).
Matcher = Annotated[dict[Label, Label], Field(max_length=64)]
#: A class name: an identifier-like label (``legal``, ``medical-advice``).
ClassName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


# `{name}` and `{{ name }}` are placeholders (the two spellings a template may use). Only declared
# names are replaced; values are inserted verbatim and never re-scanned, and there are no
# attribute or index lookups (unlike str.format), so user text cannot reach Python objects.
_PLACEHOLDER = re.compile(
    r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}|\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}"
)


class PromptTemplate(_Frozen):
    """The full template content; ``ref`` is only a label, the content is what gets hashed.

    Variables are written ``{name}`` (or ``{{ name }}``) in ``template``; every declared
    variable must appear there. Any other brace text (undeclared names, JSON examples) is left
    as is when rendering.
    """

    ref: Label
    system: Text = ""
    template: Annotated[Text, Field(min_length=1)]
    variables: Annotated[
        tuple[Annotated[str, Field(pattern=_IDENT.pattern)], ...], Field(max_length=256)
    ] = ()

    @model_validator(mode="after")
    def _variables_used(self) -> PromptTemplate:
        if len(set(self.variables)) != len(self.variables):
            raise ValueError("variables: names must be unique")
        for name in self.variables:
            if not re.search(r"\{\{?\s*" + re.escape(name) + r"\s*\}\}?", self.template):
                raise ValueError(f"variables: {name!r} does not appear in template as {{{name}}}")
        return self

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

    def render_prompt(
        self, prompt: str, metadata: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The messages for one plain prompt (a suite item, a replayed trace)."""
        return self.render_messages([{"role": "user", "content": prompt}], metadata)


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one chat message (string content, or the text parts of a content list)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "".join(p for p in parts if isinstance(p, str))
    raise InvalidInputError("messages: a message has no text content")


def last_user_text(messages: Sequence[Any]) -> str:
    """The text of the last user message ("" when there is none)."""
    for m in reversed(messages):
        if isinstance(m, Mapping) and m.get("role") == "user":
            return message_text(m)
    return ""


def _check_stop(value: str) -> str:
    if value == "":
        raise ValueError("a stop sequence must not be empty")
    return value


StopSequence = Annotated[str, Field(max_length=64), AfterValidator(_check_stop)]


class Generation(_Frozen):
    """Generation settings a release sends with each request (every field optional: unset
    fields are left to the client's request, then to the server's defaults)."""

    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    stop: Annotated[tuple[StopSequence, ...], Field(max_length=8)] | None = None
    seed: Annotated[int, Field(ge=0, le=_MAX_SAFE_INT)] | None = None

    def fields(self) -> dict[str, Any]:
        """The set fields as request fields (``stop`` as a list)."""
        out = {k: v for k, v in self.model_dump().items() if v is not None}
        if "stop" in out:
            out["stop"] = list(out["stop"])
        return out

    def over(self, base: Generation | None) -> Generation:
        """These settings over ``base``, field by field (a set field here wins)."""
        if base is None:
            return self
        return Generation.model_validate({**base.model_dump(), **self.fields()}, strict=False)


class ReleaseClass(_Frozen):
    """What a release does differently for one traffic class: its own prompt template and/or
    generation settings, for requests whose labels equal ``match`` or whose slice is in
    ``slices`` (the suite slices of that class, so the gate renders them the same way)."""

    match: Matcher = {}
    slices: Annotated[tuple[Label, ...], Field(max_length=1024)] = ()
    prompt_template: PromptTemplate | None = None
    generation: Generation | None = None

    @model_validator(mode="after")
    def _selects_and_changes(self) -> ReleaseClass:
        if not self.match and not self.slices:
            raise ValueError("a class needs match labels or slices (it would select nothing)")
        if self.prompt_template is None and self.generation is None:
            raise ValueError("a class needs a prompt_template or generation (it changes nothing)")
        return self

    def selects(self, attrs: Mapping[str, str]) -> bool:
        """True when a request with these labels (``slice`` included) is in this class."""
        by_labels = bool(self.match) and all(attrs.get(k) == v for k, v in self.match.items())
        return by_labels or attrs.get("slice", "") in self.slices


def select_class(
    classes: Mapping[str, ReleaseClass] | None, attrs: Mapping[str, str]
) -> tuple[str, ReleaseClass] | None:
    """The first class, in name order, that selects a request with labels ``attrs``."""
    for name in sorted(classes or {}):
        assert classes is not None
        if classes[name].selects(attrs):
            return name, classes[name]
    return None


@dataclass(frozen=True, slots=True)
class Rendered:
    """One request as a release sends it: messages, generation fields, and the class applied
    (None: the release's defaults)."""

    messages: list[dict[str, Any]]
    generation: dict[str, Any]
    klass: str | None = None


def request_seed(seed: int, messages: Sequence[Mapping[str, Any]]) -> int:
    """The per-request seed: SHA-256 over the release seed and the messages' JSON, first 4
    bytes, masked to 31 bits (servers take a signed 32-bit seed)."""
    text = json.dumps([seed, list(map(dict, messages))], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def render_request(
    template: PromptTemplate,
    generation: Generation | None,
    classes: Mapping[str, ReleaseClass] | None,
    messages: Sequence[Mapping[str, Any]],
    metadata: Mapping[str, Any] | None = None,
    attrs: Mapping[str, str] | None = None,
) -> Rendered:
    """Render one request the way the release serves it (see the module docstring): the
    class selected by ``attrs`` (labels, ``slice`` included) supplies its template and
    settings; ``metadata`` fills template variables."""
    hit = select_class(classes, attrs or {})
    settings = generation
    if hit is not None:
        klass = hit[1]
        template = klass.prompt_template or template
        if klass.generation is not None:
            settings = klass.generation.over(generation)
    msgs = template.render_messages(messages, metadata)
    fields = settings.fields() if settings is not None else {}
    if "seed" in fields:
        fields["seed"] = request_seed(int(fields["seed"]), msgs)
    return Rendered(msgs, fields, None if hit is None else hit[0])
