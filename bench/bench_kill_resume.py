"""What a SIGKILLed push sends again, and what journaling every answer costs.

A push process sends a 400-row batch to the sandbox (15 ms latency, ``max_in_flight`` 4) and is
killed with SIGKILL once HubSpot has answered 150 writes; a second ``push_batch`` resumes the
batch. The sandbox's request log counts the writes per contact. Then 2,000 journal lines are
written (each flushed and fsynced, as the push does) and read back.

    .venv/bin/python bench/bench_kill_resume.py [--trials 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "plugins")]

ROWS = 400
KILL_AFTER_WRITES = 150
JOURNAL_LINES = 2_000

PUSH = """
import logging, sys
from pathlib import Path
sys.path[:0] = [{project!r}, {plugins!r}]
from hubspot_provider.hooks.hubspot import HubSpotHook
from include.consent_sync.push import push_batch
push_batch(HubSpotHook(), rows_path=Path({rows!r}), results_path=Path({results!r}), label="push",
           resubscribe_guard=False, log=logging.getLogger("push"))
"""


def batch_table():
    import pyarrow as pa

    from include.consent_sync.contract import source_schema

    changed_at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    rows = [
        dict(
            change_id=f"c{i:04d}",
            email=f"user{i}@example.com",
            subscription_id=1001,
            channel="EMAIL",
            status_state="SUBSCRIBED",
            legal_basis=None,
            legal_basis_explanation=None,
            changed_at=changed_at,
        )
        for i in range(ROWS)
    ]
    table = pa.Table.from_pylist(rows, schema=source_schema())
    return table.append_column(
        "key_sent_unsubscribed_at", pa.array([None] * ROWS, pa.timestamp("us", tz="UTC"))
    )


def kill_and_resume() -> dict[str, int]:
    from dev.hubspot_sandbox import SandboxServer
    from hubspot_provider.hooks.hubspot import HubSpotHook
    from include.consent_sync.contract import result_schema
    from include.consent_sync.push import push_batch
    from include.consent_sync.staging import ResultJournal, write_table

    folder = Path(tempfile.mkdtemp())
    rows_path, results_path = folder / "rows.parquet", folder / "results"
    write_table(batch_table(), rows_path)
    with SandboxServer(token="sandbox-token", port=0, latency_ms=15) as sandbox:
        os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps(
            {
                "conn_type": "http",
                "host": sandbox.url,
                "password": "sandbox-token",
                "extra": {"rate_limit_per_10s": 5000, "max_in_flight": 4},
            }
        )

        def writes():
            return [r["email"] for r in sandbox.requests() if r["email"]]

        code = PUSH.format(
            project=str(PROJECT),
            plugins=str(PROJECT / "plugins"),
            rows=str(rows_path),
            results=str(results_path),
        )
        process = subprocess.Popen([sys.executable, "-c", code])
        while len(writes()) < KILL_AFTER_WRITES:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        at_kill = len(writes())
        staged = ResultJournal(results_path, result_schema()).read().num_rows
        push_batch(
            HubSpotHook(),
            rows_path=rows_path,
            results_path=results_path,
            label="resume",
            resubscribe_guard=False,
            log=logging.getLogger("resume"),
        )
        per_contact = Counter(writes())
    return {
        "writes_at_kill": at_kill,
        "journaled_at_kill": staged,
        "writes_total": sum(per_contact.values()),
        "contacts_written_twice": sum(1 for n in per_contact.values() if n > 1),
    }


def journal_cost() -> tuple[float, float]:
    from include.consent_sync.contract import result_schema
    from include.consent_sync.staging import ResultJournal

    journal = ResultJournal(Path(tempfile.mkdtemp()) / "results", result_schema())
    row = dict.fromkeys(result_schema().names) | {
        "outcome": "SYNCED",
        "http_status": 200,
        "attempts": 1,
        "correlation_id": "0" * 36,
        "sent_at": datetime.now(UTC),
    }
    start = time.perf_counter()
    with journal.writer() as writer:
        for i in range(JOURNAL_LINES):
            writer.write(row | {"change_id": f"c{i}"})
    written = time.perf_counter() - start
    start = time.perf_counter()
    assert journal.read().num_rows == JOURNAL_LINES
    return written / JOURNAL_LINES * 1e3, (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for trial in range(1, args.trials + 1):
        result = kill_and_resume()
        print(f"trial {trial}: {result}, re-sent {result['writes_total'] - ROWS}")
    per_line_ms, read_ms = journal_cost()
    print(
        f"journal: {per_line_ms:.2f} ms per answer (write+flush+fsync); "
        f"read {JOURNAL_LINES:,} lines in {read_ms:.0f} ms"
    )


if __name__ == "__main__":
    main()
