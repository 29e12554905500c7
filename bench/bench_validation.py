"""Benchmark: validate 1,000,000 consent changes (~1% invalid) in a fresh process.

    .venv/bin/python bench/bench_validation.py [--rows N] [--max-seconds S] [--max-rss-mib M]

The parent generates the rows as a pyarrow table and stages them as Parquet; a fresh child
process reads them, imports GX and runs ``validate_changes``, so its peak RSS (ru_maxrss) is that
of a validate task alone. Exits 1 if validation takes ``--max-seconds`` (30) or more, or the child
peaks at ``--max-rss-mib`` (2048) or more.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)

# Kinds of bad rows, spread evenly over the ~1% invalid share.
BAD_KINDS = (
    "email_no_at",
    "email_two_ats",
    "email_space",
    "email_no_dot",
    "status_lowercase",
    "status_unknown",
    "channel_sms",
    "subscription_null",
    "subscription_negative",
    "basis_unknown",
    "basis_without_explanation",
    "changed_in_future",
    "changed_at_null",
    "duplicate_change_id",
)


def generate(rows: int, invalid_share: float = 0.01, seed: int = 7):
    """A realistic ``consent_changes`` extract with about ``invalid_share`` bad rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from include.consent_sync.contract import LEGAL_BASES, STATUS_STATES, source_schema

    rng = np.random.default_rng(seed)
    ids = np.arange(rows)
    change_id = pc.binary_join_element_wise("chg-", pa.array(ids.astype(str)), "")
    domains = np.array(["example.com", "mail.example.org", "corp.co.uk", "x.io", "Example.NET"])
    locals_ = np.array(["jane", "john.smith", "a+news", "o'brien", "First.Last", "x_y"])
    pads = np.array(["", "", "", "", " ", "  "])  # some emails come with surrounding spaces
    pad = pa.array(pads[rng.integers(0, len(pads), rows)])
    email = pc.binary_join_element_wise(
        pad,
        pa.array(locals_[rng.integers(0, len(locals_), rows)]),
        pa.array(ids.astype(str)),
        "@",
        pa.array(domains[rng.integers(0, len(domains), rows)]),
        pad,
        "",
    )
    subscription_id = rng.integers(1000, 1010, rows).astype(np.int64)
    states = np.array(STATUS_STATES)[rng.integers(0, 3, rows)]
    with_basis = rng.random(rows) < 0.3
    basis = np.where(with_basis, np.array(LEGAL_BASES)[rng.integers(0, 7, rows)], None)
    explanation = np.where(with_basis, "Customer agreed on the signup form", None)
    # Naive datetime64 values, read as UTC by pa.array(..., type=timestamp("us", tz="UTC")).
    base = np.datetime64(NOW.replace(tzinfo=None) - timedelta(days=1), "us")
    changed_at = base + rng.integers(0, 86_400_000_000, rows).astype("timedelta64[us]")
    columns = {
        "change_id": change_id.to_numpy(zero_copy_only=False).astype(object),
        "email": email.to_numpy(zero_copy_only=False).astype(object),
        "subscription_id": subscription_id.astype(object),
        "channel": np.full(rows, "EMAIL", dtype=object),
        "status_state": states.astype(object),
        "legal_basis": basis.astype(object),
        "legal_basis_explanation": explanation.astype(object),
        "changed_at": changed_at.astype("datetime64[us]"),
    }
    bad = rng.choice(rows, size=int(rows * invalid_share), replace=False)
    changed_null = []
    for number, row in enumerate(bad):
        kind = BAD_KINDS[number % len(BAD_KINDS)]
        if kind == "email_no_at":
            columns["email"][row] = f"user{row}.example.com"
        elif kind == "email_two_ats":
            columns["email"][row] = f"user{row}@x@example.com"
        elif kind == "email_space":
            columns["email"][row] = f"user {row}@example.com"
        elif kind == "email_no_dot":
            columns["email"][row] = f"user{row}@localhost"
        elif kind == "status_lowercase":
            columns["status_state"][row] = "subscribed"
        elif kind == "status_unknown":
            columns["status_state"][row] = "OPTED_OUT"
        elif kind == "channel_sms":
            columns["channel"][row] = "SMS"
        elif kind == "subscription_null":
            columns["subscription_id"][row] = None
        elif kind == "subscription_negative":
            columns["subscription_id"][row] = -5
        elif kind == "basis_unknown":
            columns["legal_basis"][row] = "BECAUSE"
            columns["legal_basis_explanation"][row] = "why not"
        elif kind == "basis_without_explanation":
            columns["legal_basis"][row] = "CONSENT_WITH_NOTICE"
            columns["legal_basis_explanation"][row] = None
        elif kind == "changed_in_future":
            columns["changed_at"][row] = np.datetime64(
                NOW.replace(tzinfo=None) + timedelta(days=3), "us"
            )
        elif kind == "changed_at_null":
            changed_null.append(row)
        elif kind == "duplicate_change_id":
            columns["change_id"][row] = columns["change_id"][(row + 1) % rows]
    changed_mask = np.zeros(rows, dtype=bool)
    changed_mask[changed_null] = True
    schema = source_schema()
    arrays = [
        pa.array(columns[name], type=schema.field(name).type)
        for name in schema.names
        if name != "changed_at"
    ]
    arrays.append(
        pa.array(columns["changed_at"], mask=changed_mask, type=schema.field("changed_at").type)
    )
    return pa.Table.from_arrays(arrays, schema=schema)


def worker(path: str) -> None:
    """Child: read the staged table, validate it, print figures as JSON."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    from include.consent_sync import validation, validation_suite

    validation_suite.import_gx()
    imported = time.perf_counter()
    table = pq.read_table(path)
    read = time.perf_counter()
    result = validation.validate_changes(table, now=NOW)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "rows": table.num_rows,
                "valid": result.valid.num_rows,
                "invalid": result.invalid.num_rows,
                "import_s": imported - started,
                "read_s": read - imported,
                "validate_s": done - read,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "reasons": result.report["reasons_ranked"],
                "summary": validation.summarise(result.report),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--invalid-share", type=float, default=0.01)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--max-rss-mib", type=float, default=2048.0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0

    import pyarrow.parquet as pq

    started = time.perf_counter()
    table = generate(args.rows, args.invalid_share)
    print(f"generated {table.num_rows:,} rows in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "candidates.parquet")
        pq.write_table(table, path)
        del table
        child = subprocess.run(
            [sys.executable, __file__, "--worker", path],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    print(figures["summary"])
    print(
        f"validate_changes: {figures['validate_s']:.2f} s wall "
        f"(GX import {figures['import_s']:.2f} s, Parquet read {figures['read_s']:.2f} s, "
        f"not included); peak RSS of the validating process {figures['peak_rss_mib']:.0f} MiB"
    )
    if child.stderr.strip():
        print(f"stderr of the validating process:\n{child.stderr}", file=sys.stderr)
    failures = []
    if figures["validate_s"] >= args.max_seconds:
        failures.append(f"took {figures['validate_s']:.1f} s, goal < {args.max_seconds:g} s")
    if figures["peak_rss_mib"] >= args.max_rss_mib:
        failures.append(f"peaked at {figures['peak_rss_mib']:.0f} MiB, goal < {args.max_rss_mib:g}")
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print(f"OK: under {args.max_seconds:g} s and {args.max_rss_mib:g} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
