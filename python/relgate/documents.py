"""Untrusted JSON and YAML, read with bounded work and one kind of error.

Python's parsers recurse once per nesting level (the C JSON scanner counts against the
interpreter's recursion limit, PyYAML's composer is plain recursion), so a document of
100,000 ``[`` would surface as a ``RecursionError`` deep in a caller. YAML adds aliases: a
few hundred bytes of ``&a [*b, *b, ...]`` expand to billions of nodes for whoever walks the
result (canonical JSON, validation). Every reader of a document that crosses a trust boundary
(manifests, key sets, witness state, anchor files, rollout specs) goes through here:

- ``load_json`` / ``load_yaml`` turn a parse failure or a recursion overflow into the caller's
  error class with a one-line message naming ``what`` was read;
- ``check_shape`` walks the result iteratively (aliases counted each time they are reached)
  and refuses it past ``max_depth`` levels or ``max_nodes`` nodes, stopping as soon as either
  bound is crossed.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from relgate.errors import InvalidInputError, RelgateError

__all__ = ["MAX_DEPTH", "MAX_NODES", "check_shape", "load_json", "load_yaml"]

#: Nesting levels a configuration document may have (a manifest uses about 6).
MAX_DEPTH = 64
#: Values (scalars and containers, aliases counted each time) in one configuration document.
MAX_NODES = 200_000


def check_shape(
    doc: Any,
    what: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
    error: type[RelgateError] = InvalidInputError,
) -> Any:
    """``doc`` itself when it nests at most ``max_depth`` deep and holds at most
    ``max_nodes`` values; else ``error`` naming the bound."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise error(f"{what} has more than {max_nodes} values (YAML aliases count each use)")
        if depth > max_depth:
            raise error(f"{what} nests deeper than {max_depth} levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
            nodes += len(value)  # the keys
        elif isinstance(value, list | tuple):
            stack.extend((v, depth + 1) for v in value)
    return doc


def load_json(
    data: bytes | str,
    what: str,
    *,
    error: type[RelgateError] = InvalidInputError,
    shape: bool = True,
) -> Any:
    """Parse JSON; ``error`` for bad JSON or nesting past the parser's depth, and (with
    ``shape``) past ``check_shape``'s bounds."""
    try:
        doc = json.loads(data)
    except RecursionError:
        raise error(f"{what} nests too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError and bad UTF-8
        raise error(f"{what} is not valid JSON: {exc}") from None
    return check_shape(doc, what, error=error) if shape else doc


def load_yaml(
    data: bytes | str, what: str, *, error: type[RelgateError] = InvalidInputError
) -> Any:
    """Parse YAML with the safe loader; ``error`` for bad YAML, deep nesting or a result past
    ``check_shape``'s bounds (alias bombs included)."""
    try:
        doc = yaml.safe_load(data)
    except RecursionError:
        raise error(f"{what} nests too deeply to read") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} is not valid YAML: {exc}") from None
    return check_shape(doc, what, error=error)
