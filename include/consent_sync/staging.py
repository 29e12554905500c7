"""Where a run's rows live between tasks: Parquet files under one folder per DAG run.

The root is any ``ObjectStoragePath`` (a local folder by default, ``s3://...`` when workers run on
several machines). Paths are derived from the run id alone, so every task, on any worker, and a
retry of it, finds the same files without asking XCom for them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

CANDIDATES = "candidates.parquet"
VALID = "valid.parquet"
INVALID = "invalid.parquet"
VALIDATION_REPORT = "validation.json"
PLANNED = "planned.parquet"  # rows decided at plan time (skipped, dry run, given up)
BATCHES = "batches"
RESULTS = "results"
FAILURES = "failures"  # one note per failed task: why it failed, for the run record
DAILY_LIMIT = "daily_limit_reached.txt"  # a push met HubSpot's daily limit: send nothing more


def run_folder(root: Any, dag_id: str, run_id: str) -> Any:
    """The folder of one DAG run under the staging root (``root`` is an ObjectStoragePath)."""
    safe_run_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return root / dag_id / safe_run_id


def write_table(table, path) -> None:
    """Write an Arrow table as one Parquet file, creating the parent folder."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pq.write_table(table, handle, compression="zstd")


def read_table(path, schema=None):
    """Read one Parquet file; ``schema`` gives the empty table to return when it is missing."""
    import pyarrow.parquet as pq

    if not path.exists():
        if schema is None:
            raise FileNotFoundError(f"staged file {path} does not exist")
        return schema.empty_table()
    with path.open("rb") as handle:
        return pq.read_table(handle)


class ResultJournal:
    """Per-row results of one batch (a push's, a reconcile read's): JSON lines, each durable
    before the next request starts.

    Every attempt of the task writes its own ``journal-<uuid>.jsonl`` in the batch's results
    folder. On a local folder each answer's rows are written, flushed and fsynced together as it
    arrives, so a task killed with SIGKILL loses at most the answers still in flight. Object
    stores cannot append: there the lines are written as a new object every ``flush_every_rows``
    rows or ``flush_every_s`` seconds, and a kill loses at most that many answers. A retry reads
    every journal and skips those rows; a line cut short by the kill is ignored (that row is sent
    again, and status writes and reads are idempotent).
    """

    def __init__(self, folder, schema) -> None:
        self.folder = folder
        self.schema = schema

    def files(self) -> list:
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.iterdir() if p.name.endswith(".jsonl"))

    def read(self):
        """Every journaled row. A retry skips journaled rows, so no change_id appears twice."""
        import io

        import pyarrow as pa
        import pyarrow.json as pj

        tables = []
        options = pj.ParseOptions(explicit_schema=self.schema)
        for path in self.files():
            with path.open("rb") as handle:
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]  # a torn last line: the kill cut it
            if len(complete) < len(data):
                log.warning("ignoring a torn last line in %s", path.name)
            if complete:
                tables.append(pj.read_json(io.BytesIO(complete), parse_options=options))
        return pa.concat_tables(tables) if tables else self.schema.empty_table()

    def writer(self, flush_every_rows: int = 200, flush_every_s: float = 5.0) -> JournalWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        return JournalWriter(
            self.folder / f"journal-{uuid.uuid4().hex}.jsonl", flush_every_rows, flush_every_s
        )

    def append(self, rows: list[dict]) -> None:
        """Journal ``rows`` at once (tests and tools; a task uses one :meth:`writer`)."""
        with self.writer() as journal:
            journal.write_rows(rows)


class JournalWriter:
    """One attempt's journal file; see :class:`ResultJournal`."""

    def __init__(self, path, flush_every_rows: int, flush_every_s: float) -> None:
        self.path = path
        self.local = getattr(path, "protocol", "file") in ("file", "local")
        self.flush_every_rows = flush_every_rows
        self.flush_every_s = flush_every_s
        self.pending: list[bytes] = []
        self.flushed_at = time.monotonic()
        self.part = 0
        # Local: one file, appended and fsynced per answer. Object store: a new object per flush.
        self.handle = (
            open(path.path if hasattr(path, "path") else path, "ab") if self.local else None
        )

    def write(self, row: dict) -> None:
        self.write_rows([row])

    def write_rows(self, rows: list[dict]) -> None:
        """Journal the rows of one answer together: locally one write, flush and fsync for all
        (an fsync per row of a 100-contact read would cost more than the request)."""
        lines = [
            (json.dumps(row, default=_json_value, separators=(",", ":")) + "\n").encode()
            for row in rows
        ]
        if self.handle is not None:
            self.handle.write(b"".join(lines))
            self.handle.flush()
            os.fsync(self.handle.fileno())
            return
        self.pending.extend(lines)
        if (
            len(self.pending) >= self.flush_every_rows
            or time.monotonic() - self.flushed_at > self.flush_every_s
        ):
            self.flush()

    def flush(self) -> None:
        if self.pending:
            target = self.path.with_name(f"{self.path.stem}-{self.part:06d}.jsonl")
            with target.open("wb") as handle:
                handle.write(b"".join(self.pending))
            self.part += 1
            self.pending = []
        self.flushed_at = time.monotonic()

    def close(self) -> None:
        self.flush()
        if self.handle is not None:
            self.handle.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot journal {type(value).__name__} {value!r}")


def clear_derived(folder) -> None:
    """Remove what a previous try of this run derived, keeping pushed results.

    Pushed results stay so that a re-run never sends a row twice. The daily-limit marker goes: a
    re-run (usually a later day) may send again.
    """
    for name in (CANDIDATES, VALID, INVALID, VALIDATION_REPORT, PLANNED, BATCHES, DAILY_LIMIT):
        path = folder / name
        if path.exists():
            path.rmdir(recursive=True) if path.is_dir() else path.unlink()
