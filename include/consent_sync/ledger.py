"""Ledger rows: exactly one per change a run considered, whatever stage the run reached."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from include.consent_sync.contract import Outcome

NOT_PUSHED = "not sent: the run stopped before this change was pushed; a later run sends it"
NOT_VALIDATED = "not sent: the run stopped before validation finished; a later run retries it"


@dataclass(frozen=True)
class RunFacts:
    dag_run_id: str
    interval_start: datetime | None
    interval_end: datetime | None
    recorded_at: datetime
    max_attempts: int


def _with_identity(table):
    """Give every row a usable ``change_id`` and keep one row per id.

    A missing change_id gets a stable stand-in derived from the row, so the row still has its
    ledger entry; rows sharing a change_id collapse into one (they are INVALID together anyway).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from include.consent_sync.contract import source_schema

    if table["change_id"].null_count:
        ids = table["change_id"].to_pylist()
        rows = table.select(source_schema().names).to_pylist()
        ids = [
            i
            if i is not None
            else "missing-change-id:"
            + hashlib.sha256(repr(list(r.values())).encode()).hexdigest()[:16]
            for i, r in zip(ids, rows, strict=True)
        ]
        table = table.set_column(
            table.schema.get_field_index("change_id"), "change_id", pa.array(ids, pa.string())
        )
    if pc.count_distinct(table["change_id"]).as_py() == table.num_rows:
        return table
    numbered = table.select(["change_id"]).append_column("_row", pa.array(range(table.num_rows)))
    firsts = numbered.group_by("change_id", use_threads=False).aggregate([("_row", "min")])[
        "_row_min"
    ]
    return table.take(pc.take(firsts, pc.sort_indices(firsts)))


def outcome_rows(table, outcome: Outcome, category: str, message):
    """Result rows (result schema) for every row of ``table`` with one outcome."""
    import pyarrow as pa

    from include.consent_sync.contract import result_schema

    n = table.num_rows
    if not isinstance(message, pa.ChunkedArray | pa.Array):
        message = pa.repeat(pa.scalar(message, pa.string()), n)
    columns = {
        "change_id": table["change_id"],
        "outcome": pa.repeat(pa.scalar(str(outcome), pa.string()), n),
        "error_category": pa.repeat(pa.scalar(category, pa.string()), n),
        "error_message": message,
        "attempts": pa.repeat(pa.scalar(0, pa.int32()), n),
    }
    schema = result_schema()
    return pa.table(
        {f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in schema}, schema=schema
    )


def assemble_ledger(candidates, valid, invalid, decided, pushed, facts: RunFacts):
    """Build the run's ledger rows (ledger schema, one per considered change).

    :param candidates: every extracted row (with ``failed_runs``), or None if extract failed.
    :param valid: validated rows, or None if validation did not finish.
    :param invalid: quarantined rows with ``error_message``, or None.
    :param decided: result rows decided at plan time (skips, dry run).
    :param pushed: result rows staged by the push tasks.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from include.consent_sync.contract import ledger_schema, result_schema, source_schema

    schema = ledger_schema()
    if candidates is None or candidates.num_rows == 0:
        return schema.empty_table()
    source_names = source_schema().names
    if valid is None:
        # Validation never finished: every candidate waits for a later run.
        subjects = _with_identity(candidates.select(source_names))
        results = outcome_rows(subjects, Outcome.DEFERRED, "RUN_STOPPED", NOT_VALIDATED)
    else:
        quarantined = _with_identity(invalid.select(source_names + ["error_message"]))
        invalid_results = outcome_rows(
            quarantined, Outcome.INVALID, "VALIDATION", quarantined["error_message"]
        )
        known = pa.concat_tables([decided.cast(result_schema()), pushed.cast(result_schema())])
        # Staged results win over nothing; a change has at most one of them (plan or push).
        known = _with_identity(known)
        valid_rows = valid.select(source_names)
        missing = valid_rows.filter(
            pc.invert(pc.is_in(valid_rows["change_id"], known["change_id"]))
        )
        results = pa.concat_tables(
            [
                invalid_results,
                known.filter(pc.is_in(known["change_id"], valid_rows["change_id"])),
                outcome_rows(missing, Outcome.DEFERRED, "RUN_STOPPED", NOT_PUSHED),
            ]
        )
        subjects = pa.concat_tables([quarantined.select(source_names), valid_rows])

    results = _give_up_after_max_attempts(results, candidates, facts.max_attempts)
    # Both sides hold each change_id once: a lookup and a take cost far less memory than a join.
    subject_rows = subjects.take(pc.index_in(results["change_id"], value_set=subjects["change_id"]))
    rows = {name: subject_rows[name] for name in source_names} | {
        name: results[name] for name in results.column_names if name != "change_id"
    }
    n = results.num_rows

    def constant(value, type_):
        return pa.repeat(pa.scalar(value, type_), n)

    extra = {
        "dag_run_id": constant(facts.dag_run_id, pa.string()),
        "interval_start": constant(facts.interval_start, schema.field("interval_start").type),
        "interval_end": constant(facts.interval_end, schema.field("interval_end").type),
        "recorded_at": constant(facts.recorded_at, schema.field("recorded_at").type),
    }
    return pa.table(
        {f.name: extra[f.name] if f.name in extra else rows[f.name].cast(f.type) for f in schema},
        schema=schema,
    )


def _give_up_after_max_attempts(results, candidates, max_attempts: int):
    """A change FAILED in ``max_attempts`` runs (this one included) becomes REJECTED."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "failed_runs" not in candidates.column_names:
        return results
    prior = candidates.select(["change_id", "failed_runs"]).filter(
        pc.is_valid(candidates["change_id"])
    )
    prior = _with_identity(prior)
    earlier = pc.take(
        prior["failed_runs"], pc.index_in(results["change_id"], value_set=prior["change_id"])
    )
    failed_runs = pc.add(pc.fill_null(earlier, 0), 1)
    give_up = pc.and_(
        pc.equal(results["outcome"], str(Outcome.FAILED)),
        pc.greater_equal(failed_runs, max_attempts),
    )
    message = pc.binary_join_element_wise(
        pc.binary_join_element_wise(
            "gave up: failed in ",
            pc.cast(failed_runs, pa.string()),
            f" runs (max_attempts={max_attempts}); last error: ",
            "",
        ),
        pc.fill_null(results["error_message"], "unknown"),
        "",
    )
    for name, value in (
        ("outcome", str(Outcome.REJECTED)),
        ("error_category", "MAX_ATTEMPTS"),
        ("error_message", message),
    ):
        column = results.schema.get_field_index(name)
        results = results.set_column(column, name, pc.if_else(give_up, value, results[name]))
    return results
