"""Scored-QA suites: graded reference sets the gate measures releases against.

A suite is a table of rows ``(item_id, slice, prompt, reference, human_grade)``: for each prompt
(item), several reference answers graded by humans in [0, 1]. An optional ``origin`` column
labels where a row came from (e.g. ``truthfulqa:correct`` or ``rubric:hedge`` for a reference the
suite's rubric added); every other column is ignored.

Identity. ``Suite.sha256`` is SHA-256 over the canonical form of the rows: each row becomes one
RFC 8785 (JCS) JSON object with the keys ``human_grade`` (a number), ``item_id``, ``prompt``,
``reference``, ``slice`` (strings) and ``origin`` when the row has one, followed by ``\\n``; the
lines are sorted bytewise and concatenated. So the same rows give the same sha256 whatever the
file format (CSV, JSONL, parquet), the row order or the extra columns. Integer item ids are
turned into their decimal string first, so a CSV that polars reads as integers and a JSONL with
strings agree; a grade of ``1`` and ``1.0`` are the same number.

Loading checks the schema and raises ``InvalidInputError`` naming the column and the (1-based)
row: missing columns, wrong types, empty or null values, grades outside [0, 1], an item that
changes slice or prompt, and duplicate ``(item_id, reference)`` rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from relgate.canonical import canonical_json
from relgate.errors import InvalidInputError, NotFoundError

__all__ = ["REQUIRED_COLUMNS", "Suite", "load_suite"]

REQUIRED_COLUMNS = ("item_id", "slice", "prompt", "reference", "human_grade")
_TEXT_COLUMNS = ("slice", "prompt", "reference")


def _fail(message: str) -> InvalidInputError:
    return InvalidInputError(f"suite: {message}")


def _first_row(mask: pl.Series) -> int:
    """1-based index of the first True in ``mask`` (rows are counted as in the file)."""
    return int(mask.arg_true()[0]) + 1


def _validate(frame: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise _fail(
            f"missing column(s) {', '.join(missing)}; a suite needs {', '.join(REQUIRED_COLUMNS)}"
        )
    if frame.height == 0:
        raise _fail("no rows")
    columns = list(REQUIRED_COLUMNS) + (["origin"] if "origin" in frame.columns else [])
    frame = frame.select(columns)

    item_dtype = frame.schema["item_id"]
    if item_dtype.is_integer():
        frame = frame.with_columns(pl.col("item_id").cast(pl.String))
    elif item_dtype != pl.String:
        raise _fail(f"column item_id must hold strings or integers, not {item_dtype}")
    for name in (*_TEXT_COLUMNS, *(["origin"] if "origin" in columns else [])):
        dtype = frame.schema[name]
        if dtype == pl.Null:  # an all-null column: reported below as a null value
            frame = frame.with_columns(pl.col(name).cast(pl.String))
        elif dtype != pl.String:
            raise _fail(f"column {name} must hold strings, not {dtype}")
    grade_dtype = frame.schema["human_grade"]
    if grade_dtype == pl.Boolean or not (grade_dtype.is_numeric() or grade_dtype == pl.Null):
        raise _fail(f"column human_grade must hold numbers in [0, 1], not {grade_dtype}")
    frame = frame.with_columns(pl.col("human_grade").cast(pl.Float64))

    for name in REQUIRED_COLUMNS:
        nulls = frame[name].is_null()
        if nulls.any():
            raise _fail(f"column {name} is empty (null) at row {_first_row(nulls)}")
    for name in ("item_id", *_TEXT_COLUMNS):
        blank = frame[name].str.strip_chars() == ""
        if blank.any():
            raise _fail(f"column {name} is blank at row {_first_row(blank)}")
    grades = frame["human_grade"]
    bad = grades.is_nan() | (grades < 0.0) | (grades > 1.0)
    if bad.any():
        row = _first_row(bad)
        raise _fail(f"column human_grade must be in [0, 1]; row {row} has {grades[row - 1]}")

    dup = frame.select(["item_id", "reference"]).is_duplicated()
    if dup.any():
        row = _first_row(dup)
        raise _fail(
            f"duplicate row: item_id {frame['item_id'][row - 1]!r} repeats the reference "
            f"{frame['reference'][row - 1]!r} (first at row {row})"
        )
    for name in ("slice", "prompt"):
        per_item = frame.group_by("item_id").agg(pl.col(name).n_unique().alias("n"))
        clash = per_item.filter(pl.col("n") > 1)
        if clash.height:
            raise _fail(f"item_id {clash['item_id'][0]!r} has more than one {name}")
    return frame


def _canonical_lines(frame: pl.DataFrame) -> list[bytes]:
    has_origin = "origin" in frame.columns
    lines = []
    for row in frame.iter_rows(named=True):
        grade = float(row["human_grade"])
        obj: dict[str, object] = {
            "human_grade": int(grade) if grade.is_integer() else grade,
            "item_id": row["item_id"],
            "prompt": row["prompt"],
            "reference": row["reference"],
            "slice": row["slice"],
        }
        if has_origin and row["origin"] is not None:
            obj["origin"] = row["origin"]
        lines.append(canonical_json(obj) + b"\n")
    lines.sort()
    return lines


@dataclass(frozen=True)
class Suite:
    """A validated scored-QA suite; build one with ``load_suite`` or ``Suite.from_frame``.

    ``frame`` is sorted by (slice, item_id, reference), so the rows of one slice are contiguous:
    ``offsets`` (CSR, int64) delimit the slices named in ``slices``, and ``clusters`` gives each
    row the index of its item (the unit the bootstrap resamples).
    """

    frame: pl.DataFrame
    sha256: str
    source: str | None = None
    slices: tuple[str, ...] = field(init=False)
    offsets: npt.NDArray[np.int64] = field(init=False, repr=False)
    clusters: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        counts = self.frame.group_by("slice", maintain_order=True).len()
        slices = tuple(counts["slice"].to_list())
        offsets = np.zeros(len(slices) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(counts["len"].to_numpy())
        # item index per row: rows are sorted by (slice, item_id), so a new cluster starts where
        # the item id changes.
        ids = self.frame["item_id"].to_numpy()
        starts = np.ones(len(ids), dtype=np.int64)
        starts[1:] = ids[1:] != ids[:-1]
        clusters = np.cumsum(starts) - 1
        object.__setattr__(self, "slices", slices)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "clusters", clusters.astype(np.int64))

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, *, source: str | None = None) -> Suite:
        """Validate ``frame`` and build a suite (see the module docstring for the checks)."""
        frame = _validate(frame)
        digest = hashlib.sha256(b"".join(_canonical_lines(frame))).hexdigest()
        frame = frame.sort(["slice", "item_id", "reference"])
        return cls(frame=frame, sha256=digest, source=source)

    @property
    def n_rows(self) -> int:
        """Number of graded reference rows."""
        return self.frame.height

    @property
    def item_ids(self) -> list[str]:
        """Item ids in suite order (each once)."""
        return list(self.frame["item_id"].unique(maintain_order=True).to_list())

    def prompts(self) -> dict[str, str]:
        """item_id -> prompt."""
        items = self.frame.select(["item_id", "prompt"]).unique("item_id", maintain_order=True)
        return dict(zip(items["item_id"].to_list(), items["prompt"].to_list(), strict=True))

    def slice_of(self) -> dict[str, str]:
        """item_id -> slice."""
        items = self.frame.select(["item_id", "slice"]).unique("item_id", maintain_order=True)
        return dict(zip(items["item_id"].to_list(), items["slice"].to_list(), strict=True))

    def grades(self) -> npt.NDArray[np.float64]:
        """human_grade per row, in suite order."""
        return self.frame["human_grade"].to_numpy().astype(np.float64)

    def select_slices(self, names: Sequence[str]) -> Suite:
        """A suite of only the named slices (its own sha256)."""
        unknown = sorted(set(names) - set(self.slices))
        if unknown:
            raise NotFoundError(f"suite has no slice(s) {', '.join(unknown)}")
        return Suite.from_frame(
            self.frame.filter(pl.col("slice").is_in(list(names))), source=self.source
        )

    def write(self, path: str | Path) -> Path:
        """Write the suite as CSV, JSONL or parquet (by extension)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            self.frame.write_csv(path)
        elif suffix in (".jsonl", ".ndjson"):
            self.frame.write_ndjson(path)
        elif suffix == ".parquet":
            self.frame.write_parquet(path)
        else:
            raise InvalidInputError(f"suite: unknown format {suffix!r} (csv, jsonl or parquet)")
        return path


def _read(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            # Strings stay strings: ids like "007" must not turn into 7.
            frame = pl.read_csv(path, infer_schema_length=0)
            if "human_grade" in frame.columns:
                frame = frame.with_columns(
                    pl.col("human_grade").cast(pl.Float64, strict=False).alias("_grade_num")
                )
            return frame
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path, infer_schema_length=None)
        if suffix == ".parquet":
            return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise NotFoundError(f"suite file not found: {path}") from exc
        raise _fail(f"{path}: cannot be read as {suffix[1:]}: {exc}") from exc
    raise InvalidInputError(f"suite: unknown format {suffix!r} for {path} (csv, jsonl, parquet)")


def _csv_grades(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV cells are read as text; a grade that is not a number is a type error with its row."""
    raw, num = frame["human_grade"], frame["_grade_num"]
    bad = raw.is_not_null() & num.is_null()
    if bad.any():
        row = _first_row(bad)
        raise _fail(f"column human_grade must hold numbers; row {row} has {raw[row - 1]!r}")
    return frame.drop("human_grade").rename({"_grade_num": "human_grade"})


def load_suite(path: str | Path) -> Suite:
    """Load and validate a suite from a CSV, JSONL or parquet file."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"suite file not found: {path}")
    frame = _read(path)
    if "_grade_num" in frame.columns:
        frame = _csv_grades(frame)
    return Suite.from_frame(frame, source=str(path))
