"""Where the files a gate reads may come from: uploads, and paths under a configured root.

A client uploads recorded answers or a suite (``GateService.Upload``, client-streamed in
chunks): ``UploadStore`` writes the bytes to a temporary file while hashing them, refuses a file
over its size cap, and keeps it content-addressed per tenant as
``DATA_DIR/gates/uploads/<tenant>/<sha256><suffix>``; the ref ``upload:<sha256><suffix>`` names
it in ``RunGate``, for the uploading tenant only.

The server-path form (a path the server reads itself) is kept only for files under the
server's ``--data-root`` and for the files the package ships (the demo answers): a path is
resolved (``..`` and symlinks followed) and refused unless it stays under one of those roots.
Errors name the path, never the file's contents.

``AnswerArchive`` keeps the answers each gate run collected, content-addressed, so a later gate
(the next release's comparison, a resumed run) reads them instead of asking a model again.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import polars as pl

from relgate.answers import Answers, load_answers
from relgate.errors import GateError, IntegrityError, InvalidInputError, NotFoundError

__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "UPLOAD_PREFIX",
    "AnswerArchive",
    "UploadStore",
    "resolve_server_path",
]

UPLOAD_PREFIX = "upload:"
#: A suite or an answers file of a few hundred thousand rows is well under this.
DEFAULT_MAX_UPLOAD_BYTES = 256 << 20
_SUFFIXES = {"answers": (".jsonl", ".ndjson", ".parquet"), "suite": (".csv", ".jsonl", ".parquet")}
_REF = re.compile(r"^upload:([0-9a-f]{64})(\.[a-z]+)$")
_TENANT = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def _shipped_data_dir() -> Path:
    import relgate.data

    return Path(relgate.data.__file__).resolve().parent


class UploadStore:
    """Content-addressed uploads, one directory per tenant."""

    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def _dir(self, tenant: str) -> Path:
        if not _TENANT.match(tenant):
            raise InvalidInputError(f"tenant {tenant!r} cannot name an upload directory")
        return self.root / tenant

    @staticmethod
    def suffix_of(kind: str, filename: str) -> str:
        """The stored suffix of an upload (its format), or InvalidInputError."""
        if kind not in _SUFFIXES:
            raise InvalidInputError(f"upload kind must be answers or suite, got {kind!r}")
        suffix = Path(filename).suffix.lower()
        if suffix not in _SUFFIXES[kind]:
            raise InvalidInputError(
                f"upload {filename!r}: a {kind} file must end in {', '.join(_SUFFIXES[kind])}"
            )
        return suffix

    async def receive(
        self, tenant: str, kind: str, filename: str, first: bytes, rest: AsyncIterator[bytes]
    ) -> tuple[str, str, int]:
        """Store the streamed bytes; (ref, sha256, size). Nothing is kept on a refusal."""
        suffix = self.suffix_of(kind, filename)
        directory = self._dir(tenant)
        directory.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=suffix)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                chunk: bytes | None = first
                while chunk is not None:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise InvalidInputError(
                            f"upload {filename!r} is over the server's cap of "
                            f"{self.max_bytes} bytes"
                        )
                    digest.update(chunk)
                    fh.write(chunk)
                    chunk = await anext(rest, None)
            if size == 0:
                raise InvalidInputError(f"upload {filename!r} is empty")
            sha = digest.hexdigest()
            tmp.replace(directory / f"{sha}{suffix}")
        finally:
            tmp.unlink(missing_ok=True)
        return f"{UPLOAD_PREFIX}{sha}{suffix}", sha, size

    def path(self, ref: str, tenant: str) -> Path:
        """The stored file of one of ``tenant``'s upload refs."""
        match = _REF.match(ref.strip())
        if match is None:
            raise InvalidInputError(f"{ref!r} is not an upload ref (upload:<sha256><suffix>)")
        path = self._dir(tenant) / f"{match.group(1)}{match.group(2)}"
        if not path.is_file():
            raise NotFoundError(f"no upload {ref} for this tenant: upload the file first")
        return path


def resolve_server_path(value: str, data_root: Path | None, what: str) -> Path:
    """A server-side path the gate may read: under ``data_root`` (relative paths are taken
    from it) or among the package's shipped files, after resolving ``..`` and symlinks."""
    raw = Path(value.strip()).expanduser()
    roots = [_shipped_data_dir()]
    if data_root is not None:
        roots.insert(0, data_root.resolve())
        if not raw.is_absolute():
            raw = data_root / raw
    resolved = raw.resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        where = f"--data-root {roots[0]}" if data_root is not None else "no --data-root"
        raise InvalidInputError(
            f"{what} {value!r} is not under the server's data root ({where}; or a file the "
            "package ships): upload it instead (`relgate gate run --answers FILE` streams it)"
        )
    if not resolved.is_file():
        raise NotFoundError(f"{what} {value!r} not found on the server")
    return resolved


class AnswerArchive:
    """The answers gate runs collected, as ``ROOT/<sha256>.parquet`` (written once, through a
    temporary file; checked against their name when read)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, answers_sha: str) -> Path:
        """Where the answers hashing to ``answers_sha`` are kept."""
        return self.root / f"{answers_sha}.parquet"

    def put(self, answers: Answers) -> None:
        """Keep ``answers`` (a no-op when they are kept already)."""
        path = self.path(answers.sha256)
        if path.is_file():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.parquet")
        items = sorted(answers)
        pl.DataFrame(
            {
                "item_id": items,
                "answer": [answers[i] for i in items],
                "answer_sha256": [answers.answer_sha256[i] for i in items],
            }
        ).write_parquet(tmp)
        tmp.replace(path)

    def get(self, answers_sha: str, release_sha: str) -> Answers:
        """The answers of ``release_sha`` that hash to ``answers_sha`` (``GateError`` when this
        server does not keep them, ``IntegrityError`` when the file does not hash to its name)."""
        path = self.path(answers_sha)
        if not path.is_file():
            raise GateError(
                f"the answers of release {release_sha} ({answers_sha}) are not stored on this "
                "server; gate that release here first"
            )
        answers = load_answers(path)
        if answers.sha256 != answers_sha:
            raise IntegrityError(
                f"stored answers of release {release_sha} do not hash to their name",
                path=str(path),
                rule="answers_sha256_mismatch",
                expected=answers_sha,
                actual=answers.sha256,
            )
        return answers
