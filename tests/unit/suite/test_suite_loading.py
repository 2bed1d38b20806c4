"""Suite loading: formats, the canonical sha256, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relgate.errors import InvalidInputError, NotFoundError
from relgate.suite import Suite, load_suite

ROWS = [
    {
        "item_id": "q1",
        "slice": "Law",
        "prompt": "Is X legal?",
        "reference": "Yes",
        "human_grade": 1,
    },
    {"item_id": "q1", "slice": "Law", "prompt": "Is X legal?", "reference": "No", "human_grade": 0},
    {
        "item_id": "q2",
        "slice": "Health",
        "prompt": "Is Y safe?",
        "reference": "Yes, it is safe",
        "human_grade": 0.5,
    },
    {
        "item_id": "q2",
        "slice": "Health",
        "prompt": "Is Y safe?",
        "reference": "Never",
        "human_grade": 0,
    },
]


def write_csv(tmp_path: Path, rows: list[dict[str, object]], name: str = "s.csv") -> Path:
    path = tmp_path / name
    pl.DataFrame(rows).write_csv(path)
    return path


def test_same_rows_same_sha_in_every_format_and_order(tmp_path: Path) -> None:
    csv = write_csv(tmp_path, ROWS)
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in reversed(ROWS)))
    parquet = tmp_path / "s.parquet"
    pl.DataFrame(ROWS).with_columns(pl.col("human_grade").cast(pl.Float64)).write_parquet(parquet)
    shas = {load_suite(p).sha256 for p in (csv, jsonl, parquet)}
    assert len(shas) == 1


def test_sha_changes_with_any_field() -> None:
    base = Suite.from_frame(pl.DataFrame(ROWS)).sha256
    for key, value in (("reference", "Maybe"), ("human_grade", 0.25), ("slice", "Tax")):
        rows = [dict(r) for r in ROWS]
        for row in rows[:2]:  # both rows of item q1 (an item has one slice)
            row[key] = value if key != "reference" else f"{value} {row['reference']}"
        assert Suite.from_frame(pl.DataFrame(rows)).sha256 != base, key


def test_integer_item_ids_match_their_string_form() -> None:
    as_int = [{**r, "item_id": int(str(r["item_id"])[1:])} for r in ROWS]
    as_str = [{**r, "item_id": str(r["item_id"])[1:]} for r in ROWS]
    assert Suite.from_frame(pl.DataFrame(as_int)).sha256 == (
        Suite.from_frame(pl.DataFrame(as_str)).sha256
    )


def test_layout_groups_rows_by_slice_and_items_into_clusters() -> None:
    suite = Suite.from_frame(pl.DataFrame(ROWS))
    assert suite.slices == ("Health", "Law")
    assert suite.offsets.tolist() == [0, 2, 4]
    assert suite.clusters.tolist() == [0, 0, 1, 1]
    assert suite.prompts() == {"q2": "Is Y safe?", "q1": "Is X legal?"}
    assert suite.grades().tolist() == [0.0, 0.5, 0.0, 1.0]


def test_round_trip_through_every_format(tmp_path: Path) -> None:
    suite = Suite.from_frame(pl.DataFrame(ROWS))
    for name in ("a.csv", "a.jsonl", "a.parquet"):
        assert load_suite(suite.write(tmp_path / name)).sha256 == suite.sha256


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda rows: [{k: v for k, v in r.items() if k != "slice"} for r in rows],
            "missing column(s) slice",
        ),
        (
            lambda rows: [{**r, "human_grade": 1.5} if i == 2 else r for i, r in enumerate(rows)],
            "row 3 has 1.5",
        ),
        (
            lambda rows: [{**r, "human_grade": -0.1} if i == 0 else r for i, r in enumerate(rows)],
            "row 1 has -0.1",
        ),
        (
            lambda rows: [{**r, "slice": " "} if i == 1 else r for i, r in enumerate(rows)],
            "column slice is blank at row 2",
        ),
        (lambda rows: [*rows, dict(rows[0])], "duplicate row: item_id 'q1'"),
        (
            lambda rows: [{**r, "slice": "Tax"} if i == 1 else r for i, r in enumerate(rows)],
            "item_id 'q1' has more than one slice",
        ),
        (
            lambda rows: [{**r, "prompt": "other"} if i == 1 else r for i, r in enumerate(rows)],
            "more than one prompt",
        ),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, mutate: object, message: str) -> None:
    rows = mutate(ROWS)  # type: ignore[operator]
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_suite(write_csv(tmp_path, rows))


def test_non_numeric_grade_in_csv_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("item_id,slice,prompt,reference,human_grade\nq1,Law,p,a,1\nq1,Law,p,b,high\n")
    with pytest.raises(InvalidInputError, match="human_grade must hold numbers; row 2 has 'high'"):
        load_suite(path)


def test_wrong_types_in_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({**ROWS[0], "reference": 3}) + "\n")
    with pytest.raises(InvalidInputError, match="column reference must hold strings"):
        load_suite(path)
    path.write_text(json.dumps({**ROWS[0], "human_grade": True}) + "\n")
    with pytest.raises(InvalidInputError, match="human_grade must hold numbers"):
        load_suite(path)


def test_null_values_are_named(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({**ROWS[1], "reference": None}) + "\n")
    with pytest.raises(InvalidInputError, match="column reference is empty \\(null\\) at row 2"):
        load_suite(path)


def test_missing_file_unknown_format_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_suite(tmp_path / "absent.csv")
    odd = tmp_path / "s.xlsx"
    odd.write_text("x")
    with pytest.raises(InvalidInputError, match="unknown format"):
        load_suite(odd)
    empty = tmp_path / "e.csv"
    empty.write_text("item_id,slice,prompt,reference,human_grade\n")
    with pytest.raises(InvalidInputError, match="no rows"):
        load_suite(empty)


def test_extra_columns_are_ignored_and_origin_is_part_of_identity() -> None:
    plain = Suite.from_frame(pl.DataFrame(ROWS)).sha256
    noted = Suite.from_frame(pl.DataFrame([{**r, "note": "x"} for r in ROWS])).sha256
    origin = Suite.from_frame(pl.DataFrame([{**r, "origin": "rubric:hedge"} for r in ROWS]))
    assert noted == plain
    assert origin.sha256 != plain


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(len(ROWS))))
def test_sha_is_independent_of_row_order(order: list[int]) -> None:
    rows = [ROWS[i] for i in order]
    assert (
        Suite.from_frame(pl.DataFrame(rows)).sha256 == Suite.from_frame(pl.DataFrame(ROWS)).sha256
    )


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip() != "")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(TEXT, st.floats(0.0, 1.0, allow_nan=False)),
        min_size=1,
        max_size=8,
        unique_by=lambda t: t[0],
    ),
    TEXT,
)
def test_any_text_survives_every_format_with_the_same_sha(
    tmp_path_factory: pytest.TempPathFactory, refs: list[tuple[str, float]], prompt: str
) -> None:
    rows = [
        {"item_id": "i", "slice": 'S,"q"', "prompt": prompt, "reference": r, "human_grade": g}
        for r, g in refs
    ]
    suite = Suite.from_frame(pl.DataFrame(rows))
    out = tmp_path_factory.mktemp("fmt")
    for name in ("s.csv", "s.jsonl", "s.parquet"):
        assert load_suite(suite.write(out / name)).sha256 == suite.sha256, name


def test_select_slices_keeps_rows_and_rehashes() -> None:
    suite = Suite.from_frame(pl.DataFrame(ROWS))
    law = suite.select_slices(["Law"])
    assert law.slices == ("Law",) and law.n_rows == 2 and law.sha256 != suite.sha256
    with pytest.raises(NotFoundError, match="no slice"):
        suite.select_slices(["Tax"])
