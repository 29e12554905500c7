"""Ledger assembly: exactly one row per considered change, whatever stage the run reached."""

from datetime import UTC, datetime

import pyarrow as pa

from include.consent_sync.contract import Outcome, result_schema, source_schema
from include.consent_sync.ledger import RunFacts, assemble_ledger, outcome_rows
from include.consent_sync.pipeline import candidate_schema
from tests.conftest import INTERVAL_END, INTERVAL_START, change

FACTS = RunFacts("run-1", INTERVAL_START, INTERVAL_END, datetime(2026, 11, 21, 3, tzinfo=UTC), 3)


def source(*rows):
    return pa.Table.from_pylist(
        [dict(zip(source_schema().names, r, strict=True)) for r in rows], schema=source_schema()
    )


def candidates(*rows, failed_runs=None):
    table = source(*rows)
    n = table.num_rows
    failed = [(failed_runs or {}).get(r[0], 0) for r in rows]
    return pa.table(
        {
            **{name: table[name] for name in table.column_names},
            "key_latest_change_id": pa.array([r[0] for r in rows], pa.string()),
            "failed_runs": pa.array(failed, pa.int64()),
            "key_synced_changed_at": pa.nulls(n, pa.timestamp("us", tz="UTC")),
            "key_sent_unsubscribed_at": pa.nulls(n, pa.timestamp("us", tz="UTC")),
        },
        schema=candidate_schema(),
    )


def invalid(*rows, message="email: malformed"):
    table = source(*rows)
    return table.append_column("error_message", pa.array([message] * table.num_rows, pa.string()))


def pushed(**outcomes):
    return pa.Table.from_pylist(
        [
            {
                "change_id": cid,
                "outcome": outcome,
                "attempts": 1,
                "error_message": f"{outcome} detail",
            }
            for cid, outcome in outcomes.items()
        ],
        schema=result_schema(),
    )


def by_id(table):
    return {row["change_id"]: row for row in table.to_pylist()}


def test_every_stage_contributes_and_unfinished_pushes_are_deferred():
    rows = [
        change("ok"),
        change("skip", email="b@x.com"),
        change("gone", email="c@x.com"),
        change("bad", email="nope"),
    ]
    skip = outcome_rows(source(rows[1]), Outcome.SKIPPED_SUPERSEDED, "NEWER_CHANGE", "newer exists")
    ledger = by_id(
        assemble_ledger(
            candidates=candidates(*rows),
            valid=source(*rows[:3]),
            invalid=invalid(rows[3]),
            decided=skip,
            pushed=pushed(ok="SYNCED"),
            facts=FACTS,
        )
    )
    assert {k: v["outcome"] for k, v in ledger.items()} == {
        "ok": "SYNCED",
        "skip": "SKIPPED_SUPERSEDED",
        "gone": "DEFERRED",
        "bad": "INVALID",
    }
    assert ledger["bad"]["error_message"] == "email: malformed"
    assert ledger["gone"]["error_category"] == "RUN_STOPPED"
    assert all(
        r["dag_run_id"] == "run-1" and r["interval_end"] == INTERVAL_END for r in ledger.values()
    )


def test_a_run_stopped_before_validation_defers_every_candidate():
    ledger = assemble_ledger(
        candidates(change("a"), change("b", email="b@x.com")),
        None,
        None,
        result_schema().empty_table(),
        result_schema().empty_table(),
        FACTS,
    )
    assert ledger["outcome"].to_pylist() == ["DEFERRED", "DEFERRED"]


def test_rows_without_or_with_shared_change_ids_still_get_one_row_each_id():
    rows = [
        change(None, email="a@x.com"),
        change(None, email="b@x.com"),
        change("dup"),
        change("dup", email="z@x.com"),
    ]
    ledger = assemble_ledger(
        candidates(*rows),
        source(),
        invalid(*rows, message="change_id: missing or duplicated"),
        result_schema().empty_table(),
        result_schema().empty_table(),
        FACTS,
    )
    ids = ledger["change_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 3
    assert sum(i.startswith("missing-change-id:") for i in ids) == 2
    # The stand-in id is stable, so a re-run of the run replaces the same rows.
    again = assemble_ledger(
        candidates(*rows),
        source(),
        invalid(*rows),
        result_schema().empty_table(),
        result_schema().empty_table(),
        FACTS,
    )
    assert sorted(again["change_id"].to_pylist()) == sorted(ids)


def test_a_change_failed_in_max_attempts_runs_is_rejected():
    rows = [change("third-fail"), change("second-fail", email="b@x.com")]
    ledger = by_id(
        assemble_ledger(
            candidates(*rows, failed_runs={"third-fail": 2, "second-fail": 1}),
            source(*rows),
            invalid(),
            result_schema().empty_table(),
            pushed(**{"third-fail": "FAILED", "second-fail": "FAILED"}),
            FACTS,
        )
    )
    assert ledger["third-fail"]["outcome"] == "REJECTED"
    assert ledger["third-fail"]["error_category"] == "MAX_ATTEMPTS"
    assert ledger["third-fail"]["error_message"].startswith(
        "gave up: failed in 3 runs (max_attempts=3)"
    )
    assert ledger["second-fail"]["outcome"] == "FAILED"
