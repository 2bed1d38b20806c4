"""Hostile JSON and YAML get a one-line error naming the bound, never a RecursionError or an
exponential walk."""

from __future__ import annotations

import time

import pytest
from relgate.documents import MAX_DEPTH, check_shape, load_json, load_yaml
from relgate.errors import InvalidInputError, ManifestError
from relgate.manifest import ReleaseManifest

DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_YAML = "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 1500))
FLOW_YAML = "[" * 100_000 + "]" * 100_000
# Nine levels of nine aliases: 9**9 (387 million) leaves for a walker that follows them.
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize("text", [DEEP_JSON, "[" * 100 + "]" * 100])
def test_deep_json(text: str) -> None:
    with pytest.raises(InvalidInputError, match="nests"):
        load_json(text, "doc")


@pytest.mark.parametrize("text", [DEEP_YAML, FLOW_YAML])
def test_deep_yaml(text: str) -> None:
    with pytest.raises(InvalidInputError, match="nests"):
        load_yaml(text, "doc")


def test_alias_bomb_stops_at_the_node_bound() -> None:
    start = time.monotonic()
    with pytest.raises(InvalidInputError, match="more than 200000 values"):
        load_yaml(BOMB, "doc")
    assert time.monotonic() - start < 5


def test_bounds_are_exact() -> None:
    nested: list = []
    inner = nested
    for _ in range(MAX_DEPTH - 1):
        inner.append([])
        inner = inner[0]
    assert check_shape(nested, "doc") is nested  # MAX_DEPTH levels: fine
    inner.append([])
    with pytest.raises(InvalidInputError, match=f"deeper than {MAX_DEPTH} levels"):
        check_shape(nested, "doc")
    with pytest.raises(InvalidInputError, match="more than 10 values"):
        check_shape(list(range(10)), "doc", max_nodes=10)
    assert load_json('{"a": [1, 2]}', "doc") == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("text", "fmt"), [(DEEP_JSON, "json"), (DEEP_YAML, "yaml"), (BOMB, "yaml"), (DEEP_JSON, None)]
)
def test_manifest_parse_names_the_problem(text: str, fmt: str | None) -> None:
    with pytest.raises(ManifestError, match=r"manifest (nests|has more than)"):
        ReleaseManifest.parse(text.encode(), fmt=fmt)  # type: ignore[arg-type]
