"""Where a run's rows live between tasks: Parquet files under one folder per DAG run.

The root is any ``ObjectStoragePath`` (a local folder by default, ``s3://...`` when workers run on
several machines). Paths are derived from the run id alone, so every task, on any worker, and a
retry of it, finds the same files without asking XCom for them.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

log = logging.getLogger(__name__)

CANDIDATES = "candidates.parquet"
VALID = "valid.parquet"
INVALID = "invalid.parquet"
VALIDATION_REPORT = "validation.json"
PLANNED = "planned.parquet"  # rows decided at plan time (skipped, dry run, given up)
BATCHES = "batches"
RESULTS = "results"


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


class ResultParts:
    """Per-row push results of one batch, appended as small Parquet parts while the push runs.

    A retried push reads the parts already written and skips those rows, so a task killed
    mid-batch resumes where it stopped and no row is counted twice. A part cut short by the kill
    is unreadable and ignored: its rows are simply sent again (status writes are idempotent).
    """

    def __init__(self, folder, schema) -> None:
        self.folder = folder
        self.schema = schema

    def parts(self) -> list:
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.iterdir() if p.name.endswith(".parquet"))

    def read(self):
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = []
        for part in self.parts():
            try:
                with part.open("rb") as handle:
                    tables.append(pq.read_table(handle).cast(self.schema))
            except Exception as exc:  # noqa: BLE001 - a torn part must not block the resume
                log.warning("ignoring unreadable result part %s (%s)", part.name, exc)
        if not tables:
            return self.schema.empty_table()
        return pa.concat_tables(tables)

    def append(self, rows: list[dict]) -> None:
        import pyarrow as pa

        if not rows:
            return
        part = self.folder / f"part-{uuid.uuid4().hex}.parquet"
        write_table(pa.Table.from_pylist(rows, schema=self.schema), part)


def clear_derived(folder) -> None:
    """Remove what a previous try of this run derived, keeping pushed results.

    Pushed results stay so that a re-run never sends a row twice.
    """
    for name in (CANDIDATES, VALID, INVALID, VALIDATION_REPORT, PLANNED, BATCHES):
        path = folder / name
        if path.exists():
            path.rmdir(recursive=True) if path.is_dir() else path.unlink()
