"""Validation of ``consent_changes``: the schema gate, the row split and the invalid-share gate.

Pure logic, called by the validate task and unit-tested without Airflow:

- :func:`check_source_schema` stops a run whose source table broke the contract, naming every
  problem at once.
- :func:`validate_changes` normalises emails, runs the GX Core suite of
  :mod:`include.consent_sync.validation_suite` and splits rows into valid ones and INVALID ones with
  every reason each failed, plus a JSON-serialisable report (emails masked).
- :func:`check_invalid_share` stops a run when too many rows are invalid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from include.consent_sync.contract import SOURCE_COLUMNS, SOURCE_TABLE, source_schema
from include.consent_sync.email_key import key_emails
from include.consent_sync.masking import mask_email
from include.consent_sync.validation_suite import EXPLANATION_IF_BASIS_SET, checks, run_suite

ERROR_SEPARATOR = "; "
SAMPLE_SIZE = 5
SAMPLE_MAX_CHARS = 40


class SchemaContractError(ValueError):
    """The source table does not have the contract's columns and types."""


class InvalidShareExceeded(ValueError):
    """Too many rows of this run failed validation; nothing was sent."""


# --------------------------------------------------------------------------------------------
# 1. Schema contract gate
# --------------------------------------------------------------------------------------------

_EXPECTED = {
    "text": "a text type (VARCHAR/TEXT)",
    "integer": "an integer type (BIGINT/INTEGER)",
    "timestamp": "a timestamp type (TIMESTAMP WITH TIME ZONE/TIMESTAMP)",
}

# Type names as DuckDB's and PostgreSQL's information_schema spell them (compared upper-cased,
# without a "(n)" / "(p,s)" suffix), plus common aliases.
_TEXT = {
    "VARCHAR", "TEXT", "STRING", "CHAR", "CHARACTER", "BPCHAR", "CHARACTER VARYING", "NVARCHAR",
    "NCHAR",
}  # fmt: skip
_INTEGER = {
    "TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "INT1", "INT2", "INT4", "INT8",
    "INT16", "INT32", "INT64", "SHORT", "LONG", "SIGNED", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "UHUGEINT", "SMALLSERIAL", "SERIAL", "BIGSERIAL",
}  # fmt: skip
_TIMESTAMP = {
    "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITHOUT TIME ZONE", "TIMESTAMPTZ",
    "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP_US", "DATETIME",
}  # fmt: skip
_PARAMETERS = re.compile(r"\s*\(([^)]*)\)")


def type_family(sql_type: object) -> str | None:
    """``"text"``, ``"integer"`` or ``"timestamp"`` for a warehouse type name, else None.

    ``DECIMAL(p,0)``/``NUMERIC(p,0)`` with ``p <= 18`` count as integer (every value fits
    BIGINT); a decimal with a scale, or without a stated precision (PostgreSQL's plain
    ``numeric``), does not. ``DATE`` and ``TIME`` are not timestamps.
    """
    if not isinstance(sql_type, str):
        return None
    name = " ".join(sql_type.strip().upper().split())
    parameters = _PARAMETERS.search(name)
    base = " ".join(_PARAMETERS.sub(" ", name).split())
    if base in _TEXT:
        return "text"
    if base in _INTEGER:
        return "integer"
    if base in _TIMESTAMP:
        return "timestamp"
    if base in {"DECIMAL", "NUMERIC"} and parameters:
        parts = [part.strip() for part in parameters.group(1).split(",")]
        if len(parts) == 2 and parts[1] == "0" and parts[0].isdigit() and int(parts[0]) <= 18:
            return "integer"
    return None


def check_source_schema(columns: Mapping[str, str]) -> None:
    """Raise :class:`SchemaContractError` unless every contract column is there, well typed.

    :param columns: column name to SQL type name, as the warehouse's information_schema reports
        them. Extra columns are fine.
    """
    problems = []
    for column, family in SOURCE_COLUMNS.items():
        where = f"{SOURCE_TABLE}.{column}"
        if column not in columns:
            near = [name for name in columns if name.lower() == column.lower()]
            hint = f" (found {', '.join(near)}: names are case-sensitive)" if near else ""
            problems.append(f"{where} is missing{hint}")
            continue
        found = columns[column]
        if type_family(found) != family:
            problems.append(f"{where} has type {found}, expected {_EXPECTED[family]}")
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise SchemaContractError(
            f"{SOURCE_TABLE} does not match the contract ({len(problems)} "
            f"problem{'s' if len(problems) != 1 else ''}); nothing was read or sent:\n{listing}"
        )


# --------------------------------------------------------------------------------------------
# 2. Row-level validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of :func:`validate_changes`.

    :param valid: rows that passed, in the source schema, with normalised emails.
    :param invalid: rows that failed, source columns with their original values, plus
        ``error_message`` listing every failed check (``"; "``-joined, in suite order).
    :param report: JSON-serialisable counts and masked samples per check.
    """

    valid: Any  # pa.Table
    invalid: Any  # pa.Table
    report: dict[str, Any]


def invalid_schema():
    """Arrow schema of :attr:`ValidationResult.invalid`."""
    import pyarrow as pa

    return source_schema().append(pa.field("error_message", pa.string()))


def _conform(table):
    """``table``'s source columns in contract order and types, or SchemaContractError."""
    import pyarrow as pa

    schema = source_schema()
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise SchemaContractError(f"candidates lack the columns {', '.join(missing)}")
    table = table.select(schema.names)
    if not table.schema.equals(schema):
        try:
            table = table.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as error:
            raise SchemaContractError(
                f"candidates do not have the source schema ({table.schema} vs {schema}): {error}"
            ) from error
    return table


def _validation_frame(table, emails):
    """The DataFrame the suite runs on: RangeIndex, normalised values, one computed column."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    def blank_to_null(values):
        return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)

    basis = table["legal_basis"]
    basis_set = pc.fill_null(pc.not_equal(basis, ""), False)
    explanation = pc.fill_null(pc.utf8_trim_whitespace(table["legal_basis_explanation"]), "")
    # Required-when-set as a computed column rather than a GX row_condition: one vectorised pass,
    # no DataFrame.query() copy per expectation, and no reliance on row_condition's syntax, which
    # changed within GX 1.x (strings to Condition objects).
    explanation_if_set = pc.if_else(basis_set, explanation, pa.scalar(None, pa.string()))
    frame_table = table.set_column(
        table.schema.get_field_index("email"), "email", blank_to_null(emails)
    )
    frame_table = frame_table.set_column(
        frame_table.schema.get_field_index("change_id"),
        "change_id",
        blank_to_null(table["change_id"]),
    )
    frame_table = frame_table.append_column(EXPLANATION_IF_BASIS_SET, explanation_if_set)
    frame = frame_table.to_pandas()
    # GX's unexpected_index_list holds index labels: under a RangeIndex they are row positions.
    if not frame.index.equals(pd.RangeIndex(len(frame))):
        raise RuntimeError("the validation frame must have a RangeIndex")
    return frame


def _display(value: Any, *, is_email: bool) -> Any:
    """A sample value safe for the log and the report: emails masked, long text truncated."""
    if value is None:
        return None
    if is_email:
        value = mask_email(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        shown = value[:SAMPLE_MAX_CHARS]
        if not shown.isprintable():  # keep control characters out of log lines
            shown = shown.encode("unicode_escape").decode("ascii")
        if len(value) > SAMPLE_MAX_CHARS:
            return f"{shown}... ({len(value)} chars)"
        return shown
    if isinstance(value, int | float | bool):
        return value
    return str(value)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def validate_changes(table, *, now: datetime) -> ValidationResult:
    """Normalise and validate candidate changes, splitting them into valid and INVALID rows.

    :param table: a ``pyarrow.Table`` with :func:`contract.source_schema` (extra columns are
        ignored).
    :param now: timezone-aware; a ``changed_at`` after it is invalid.
    :raises SchemaContractError: when ``table`` lacks the source columns or types.
    :raises SuiteError: when GX could not evaluate an expectation (never a silent pass).
    """
    import numpy as np
    import pyarrow as pa

    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    # A plain datetime in UTC (not a pendulum or zoneinfo subclass/zone) for GX's parameters.
    utc = now.astimezone(UTC)
    now = datetime.combine(utc.date(), utc.time(), tzinfo=UTC)
    table = _conform(table)
    all_checks = checks(now)
    emails = key_emails(table["email"])
    total = table.num_rows

    if total:
        failing = run_suite(_validation_frame(table, emails), all_checks)
    else:
        failing = [[] for _ in all_checks]

    # One bit per check and row; a row is invalid when any bit is set.
    assert len(all_checks) <= 32
    bits = np.zeros(total, dtype=np.uint32)
    positions = []
    for number, rows in enumerate(failing):
        rows = np.asarray(rows, dtype=np.int64)
        positions.append(rows)
        bits[rows] |= np.uint32(1 << number)

    invalid_rows = np.flatnonzero(bits)
    codes, inverse = np.unique(bits[invalid_rows], return_inverse=True)
    messages = [
        ERROR_SEPARATOR.join(
            check.reason for number, check in enumerate(all_checks) if int(code) >> number & 1
        )
        for code in codes
    ]
    error_message = pa.array(np.asarray(messages, dtype=object)[inverse], type=pa.string())
    invalid = table.take(pa.array(invalid_rows, type=pa.int64())).append_column(
        "error_message", error_message
    )
    valid = table.set_column(table.schema.get_field_index("email"), "email", emails).filter(
        pa.array(bits == 0)
    )

    report = _report(table, all_checks, positions, total, len(invalid_rows), now)
    return ValidationResult(valid=valid, invalid=invalid, report=report)


def _report(table, all_checks, positions, total: int, invalid: int, now: datetime) -> dict:
    import pyarrow as pa

    expectations = []
    for check, rows in zip(all_checks, positions, strict=True):
        column = check.sample_column
        sample = table[column].take(pa.array(rows[:SAMPLE_SIZE], type=pa.int64())).to_pylist()
        expectations.append(
            {
                "reason": check.reason,
                "expectation": _snake(check.kind),
                "column": column,
                "unexpected_count": int(len(rows)),
                "sample": [_display(value, is_email=column == "email") for value in sample],
            }
        )
    ranked = sorted(
        (item for item in expectations if item["unexpected_count"]),
        key=lambda item: -item["unexpected_count"],
    )
    return {
        "total_rows": total,
        "valid_rows": total - invalid,
        "invalid_rows": invalid,
        "invalid_share": invalid / total if total else 0.0,
        "now": now.isoformat(),
        "expectations": expectations,
        "reasons_ranked": [
            {"reason": item["reason"], "count": item["unexpected_count"]} for item in ranked
        ],
    }


def summarise(report: Mapping[str, Any], *, max_reasons: int = 5) -> str:
    """A few readable lines for the task log (no emails: the report's samples are masked)."""
    total = report["total_rows"]
    invalid = report["invalid_rows"]
    share = f" ({invalid / total:.2%})" if total else ""
    lines = [
        f"{total:,} rows validated: {report['valid_rows']:,} valid, {invalid:,} INVALID{share}"
    ]
    ranked = report.get("reasons_ranked", [])
    for item in ranked[:max_reasons]:
        lines.append(f"  {item['count']:>10,}  {item['reason']}")
    if len(ranked) > max_reasons:
        lines.append(f"  ... and {len(ranked) - max_reasons} more reasons (see the report)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# 3. Invalid-share gate
# --------------------------------------------------------------------------------------------


def check_invalid_share(report: Mapping[str, Any], max_invalid_share: float) -> None:
    """Raise :class:`InvalidShareExceeded` when invalid/total exceeds ``max_invalid_share``.

    Exactly at the threshold passes; a run without rows passes.
    """
    if not 0 <= max_invalid_share <= 1:
        raise ValueError(f"max_invalid_share must be between 0 and 1, got {max_invalid_share!r}")
    total = report["total_rows"]
    invalid = report["invalid_rows"]
    if not total or invalid / total <= max_invalid_share:
        return
    top = report.get("reasons_ranked", [])[:3]
    reasons = "; ".join(f"{item['reason']} ({item['count']:,})" for item in top) or "unknown"
    raise InvalidShareExceeded(
        f"{invalid:,} of {total:,} rows ({invalid / total:.2%}) failed validation, more than "
        f"max_invalid_share {max_invalid_share:g} ({max_invalid_share:.2%}); nothing was sent. "
        f"Most common reasons: {reasons}. The INVALID rows are staged with their reasons. Fix "
        f"the rows in {SOURCE_TABLE}, or, if this share is expected, trigger the run again with "
        f"a higher DAG param max_invalid_share (e.g. --conf "
        f"'{{\"max_invalid_share\": {min(1.0, round(invalid / total + 0.005, 2)):g}}}')."
    )
