"""Validation: the schema gate, the GX row suite and the invalid-share gate (no Airflow)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from include.consent_sync.contract import LEGAL_BASES, SOURCE_COLUMNS, source_schema
from include.consent_sync.validation import (
    InvalidShareExceeded,
    SchemaContractError,
    ValidationResult,
    check_invalid_share,
    check_source_schema,
    invalid_schema,
    summarise,
    validate_changes,
)

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
EARLIER = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NAMES = source_schema().names

# Reason texts exactly as the ledger stores them.
CHANGE_ID_MISSING = "change_id: missing"
CHANGE_ID_LONG = "change_id: longer than 255 characters"
CHANGE_ID_DUPLICATE = "change_id: duplicated in this batch"
EMAIL_MISSING = "email: missing"
EMAIL_LONG = "email: longer than 254 characters"
EMAIL_MALFORMED = "email: malformed"
SUBSCRIPTION_MISSING = "subscription_id: missing"
SUBSCRIPTION_NOT_POSITIVE = "subscription_id: not a positive integer"
CHANNEL_MISSING = "channel: missing"
CHANNEL_UNKNOWN = "channel: not EMAIL"
STATE_MISSING = "status_state: missing"
STATE_UNKNOWN = "status_state: not one of SUBSCRIBED/UNSUBSCRIBED/NOT_SPECIFIED"
BASIS_UNKNOWN = "legal_basis: not one of HubSpot's legal bases"
EXPLANATION_MISSING = "legal_basis_explanation: missing while legal_basis is set"
EXPLANATION_LONG = "legal_basis_explanation: longer than 1000 characters"
CHANGED_AT_MISSING = "changed_at: missing"
CHANGED_AT_FUTURE = "changed_at: in the future"

SQL_INJECTION = "'; DROP TABLE consent_changes; --"
PATH_INJECTIONS = ("../../etc/passwd", "%2e%2e%2f")
BASIS = "CONSENT_WITH_NOTICE"


def table_of(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=source_schema())


def base_row(number: int) -> dict:
    """A valid row, unique per case (change_id and email) so results can be matched back."""
    return {
        "change_id": f"case-{number}",
        "email": f"user{number}@example.com",
        "subscription_id": 1000 + number,
        "channel": "EMAIL",
        "status_state": "SUBSCRIBED",
        "legal_basis": None,
        "legal_basis_explanation": None,
        "changed_at": EARLIER,
    }


# (case id, overrides of the base row, expected reasons in suite order ([] = valid)).
CORPUS: list[tuple[str, dict, list[str]]] = [
    # Valid but unusual emails: real addresses with RFC 5322 atext characters.
    ("plus tag", {"email": "a+tag@x.io"}, []),
    ("apostrophe", {"email": "o'brien@x.ie"}, []),
    ("slash", {"email": "a/b@x.com"}, []),
    ("hash", {"email": "a#b@x.com"}, []),
    ("question mark", {"email": "a?b@x.com"}, []),
    ("percent", {"email": "a%b@x.com"}, []),
    ("ampersand equals", {"email": "a&b=c@x.com"}, []),
    ("other atext", {"email": "a!b$c*d^e_f{g}h|i~j`k-l@x.com"}, []),
    ("dotted local", {"email": "first.last@x.com"}, []),
    ("subdomains", {"email": "a@mail.x.co.uk"}, []),
    ("hyphenated domain", {"email": "a@my-site.example"}, []),
    ("uppercase", {"email": "Jane.Doe@Example.COM"}, []),
    ("surrounding spaces", {"email": "  jane.spaces@example.com  "}, []),
    ("254 characters", {"email": "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 61}, []),
    # Malformed emails.
    ("no at", {"email": "jane.example.com"}, [EMAIL_MALFORMED]),
    ("two ats", {"email": "a@b@x.com"}, [EMAIL_MALFORMED]),
    ("no domain dot", {"email": "jane@localhost"}, [EMAIL_MALFORMED]),
    ("space inside", {"email": "ja ne@x.com"}, [EMAIL_MALFORMED]),
    ("tab inside", {"email": "ja\tne@x.com"}, [EMAIL_MALFORMED]),
    ("nul character", {"email": "jane\x00@x.com"}, [EMAIL_MALFORMED]),
    ("escape character", {"email": "jane@x\x1b.com"}, [EMAIL_MALFORMED]),
    ("trailing newline", {"email": "jane@x.com\n"}, [EMAIL_MALFORMED]),
    ("trailing dot", {"email": "jane@x.com."}, [EMAIL_MALFORMED]),
    ("empty local part", {"email": "@x.com"}, [EMAIL_MALFORMED]),
    ("leading dot", {"email": ".jane@x.com"}, [EMAIL_MALFORMED]),
    ("double dot", {"email": "ja..ne@x.com"}, [EMAIL_MALFORMED]),
    ("numeric tld", {"email": "jane@x.123"}, [EMAIL_MALFORMED]),
    ("one-letter tld", {"email": "jane@x.c"}, [EMAIL_MALFORMED]),
    ("label starts with hyphen", {"email": "jane@-x.com"}, [EMAIL_MALFORMED]),
    ("empty domain label", {"email": "jane@x..com"}, [EMAIL_MALFORMED]),
    ("quoted local", {"email": '"jane doe"@x.com'}, [EMAIL_MALFORMED]),
    ("non-ascii", {"email": "jürgen@x.de"}, [EMAIL_MALFORMED]),
    ("display name", {"email": "Jane <jane@x.com>"}, [EMAIL_MALFORMED]),
    ("empty", {"email": ""}, [EMAIL_MISSING]),
    ("only spaces", {"email": "   "}, [EMAIL_MISSING]),
    ("null email", {"email": None}, [EMAIL_MISSING]),
    (
        "255 characters",
        {"email": "a" * 65 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 61},
        [EMAIL_LONG],
    ),
    ("very long and malformed", {"email": "x" * 5000}, [EMAIL_LONG, EMAIL_MALFORMED]),
    ("sql injection in email", {"email": SQL_INJECTION}, [EMAIL_MALFORMED]),
    ("path injection in email", {"email": PATH_INJECTIONS[0]}, [EMAIL_MALFORMED]),
    ("encoded path in email", {"email": PATH_INJECTIONS[1]}, [EMAIL_MALFORMED]),
    # status_state: strict.
    ("unknown state", {"status_state": "OPTED_OUT"}, [STATE_UNKNOWN]),
    ("lowercase state", {"status_state": "subscribed"}, [STATE_UNKNOWN]),
    ("padded state", {"status_state": " SUBSCRIBED"}, [STATE_UNKNOWN]),
    ("empty state", {"status_state": ""}, [STATE_UNKNOWN]),
    ("null state", {"status_state": None}, [STATE_MISSING]),
    ("sql injection in state", {"status_state": SQL_INJECTION}, [STATE_UNKNOWN]),
    ("path injection in state", {"status_state": PATH_INJECTIONS[0]}, [STATE_UNKNOWN]),
    ("unsubscribed", {"status_state": "UNSUBSCRIBED"}, []),
    ("not specified", {"status_state": "NOT_SPECIFIED"}, []),
    # channel.
    ("sms channel", {"channel": "SMS"}, [CHANNEL_UNKNOWN]),
    ("lowercase channel", {"channel": "email"}, [CHANNEL_UNKNOWN]),
    ("null channel", {"channel": None}, [CHANNEL_MISSING]),
    ("sql injection in channel", {"channel": SQL_INJECTION}, [CHANNEL_UNKNOWN]),
    ("encoded path in channel", {"channel": PATH_INJECTIONS[1]}, [CHANNEL_UNKNOWN]),
    # subscription_id.
    ("null subscription", {"subscription_id": None}, [SUBSCRIPTION_MISSING]),
    ("zero subscription", {"subscription_id": 0}, [SUBSCRIPTION_NOT_POSITIVE]),
    ("negative subscription", {"subscription_id": -7}, [SUBSCRIPTION_NOT_POSITIVE]),
    ("huge subscription", {"subscription_id": 2**62 + 1}, []),
    # legal_basis and its explanation.
    *[
        (f"basis {basis}", {"legal_basis": basis, "legal_basis_explanation": "Signed up"}, [])
        for basis in LEGAL_BASES
    ],
    ("empty basis", {"legal_basis": ""}, []),
    ("unknown basis", {"legal_basis": "GDPR", "legal_basis_explanation": "x"}, [BASIS_UNKNOWN]),
    (
        "lowercase basis",
        {"legal_basis": BASIS.lower(), "legal_basis_explanation": "x"},
        [BASIS_UNKNOWN],
    ),
    (
        "sql injection in basis",
        {"legal_basis": SQL_INJECTION, "legal_basis_explanation": "x"},
        [BASIS_UNKNOWN],
    ),
    (
        "path injection in basis",
        {"legal_basis": PATH_INJECTIONS[0], "legal_basis_explanation": "x"},
        [BASIS_UNKNOWN],
    ),
    ("basis without explanation", {"legal_basis": BASIS}, [EXPLANATION_MISSING]),
    (
        "basis with empty explanation",
        {"legal_basis": BASIS, "legal_basis_explanation": ""},
        [EXPLANATION_MISSING],
    ),
    (
        "basis with blank explanation",
        {"legal_basis": BASIS, "legal_basis_explanation": " \t "},
        [EXPLANATION_MISSING],
    ),
    (
        "unknown basis without explanation",
        {"legal_basis": "GDPR"},
        [BASIS_UNKNOWN, EXPLANATION_MISSING],
    ),
    ("explanation without basis", {"legal_basis_explanation": "kept as text"}, []),
    ("explanation of 1000", {"legal_basis": BASIS, "legal_basis_explanation": "e" * 1000}, []),
    (
        "explanation of 1001",
        {"legal_basis": BASIS, "legal_basis_explanation": "e" * 1001},
        [EXPLANATION_LONG],
    ),
    (
        "sql injection in explanation",
        {"legal_basis": BASIS, "legal_basis_explanation": SQL_INJECTION},
        [],
    ),
    (
        "path injections in explanation",
        {"legal_basis": BASIS, "legal_basis_explanation": " ".join(PATH_INJECTIONS)},
        [],
    ),
    # change_id.
    ("null change id", {"change_id": None}, [CHANGE_ID_MISSING]),
    ("empty change id", {"change_id": ""}, [CHANGE_ID_MISSING]),
    ("change id of 255", {"change_id": "c" * 255}, []),
    ("change id of 256", {"change_id": "d" * 256}, [CHANGE_ID_LONG]),
    ("duplicate change id, first", {"change_id": "dup-1"}, [CHANGE_ID_DUPLICATE]),
    (
        "duplicate change id, second",
        {"change_id": "dup-1", "status_state": "UNSUBSCRIBED"},
        [CHANGE_ID_DUPLICATE],
    ),
    ("triplicate change id, 1", {"change_id": "dup-3"}, [CHANGE_ID_DUPLICATE]),
    ("triplicate change id, 2", {"change_id": "dup-3"}, [CHANGE_ID_DUPLICATE]),
    (
        "triplicate change id, 3",
        {"change_id": "dup-3", "email": "bad"},
        [CHANGE_ID_DUPLICATE, EMAIL_MALFORMED],
    ),
    ("sql injection in change id", {"change_id": SQL_INJECTION}, []),
    ("path injection in change id", {"change_id": PATH_INJECTIONS[0]}, []),
    ("encoded path in change id", {"change_id": PATH_INJECTIONS[1]}, []),
    # changed_at.
    ("null changed_at", {"changed_at": None}, [CHANGED_AT_MISSING]),
    ("changed in the future", {"changed_at": NOW + timedelta(days=1)}, [CHANGED_AT_FUTURE]),
    (
        "a microsecond after now",
        {"changed_at": NOW + timedelta(microseconds=1)},
        [CHANGED_AT_FUTURE],
    ),
    ("exactly now", {"changed_at": NOW}, []),
    ("long ago", {"changed_at": datetime(1999, 1, 1, tzinfo=UTC)}, []),
    # Several failures on one row: every one is listed, in suite order.
    (
        "everything wrong",
        {
            "change_id": None,
            "email": "not an email",
            "subscription_id": -1,
            "channel": None,
            "status_state": "subscribed",
            "legal_basis": "MAYBE",
            "legal_basis_explanation": None,
            "changed_at": NOW + timedelta(hours=1),
        },
        [
            CHANGE_ID_MISSING,
            EMAIL_MALFORMED,
            SUBSCRIPTION_NOT_POSITIVE,
            CHANNEL_MISSING,
            STATE_UNKNOWN,
            BASIS_UNKNOWN,
            EXPLANATION_MISSING,
            CHANGED_AT_FUTURE,
        ],
    ),
    (
        "all nulls",
        dict.fromkeys(NAMES),
        [
            CHANGE_ID_MISSING,
            EMAIL_MISSING,
            SUBSCRIPTION_MISSING,
            CHANNEL_MISSING,
            STATE_MISSING,
            CHANGED_AT_MISSING,
        ],
    ),
]


def corpus_rows() -> list[dict]:
    return [{**base_row(number), **overrides} for number, (_, overrides, _) in enumerate(CORPUS)]


def identity(row: dict) -> tuple:
    """A row's values, email normalised, to find a corpus row in either output table."""
    email = row["email"]
    return tuple(
        (email.strip(" ").lower() if isinstance(email, str) else email)
        if name == "email"
        else row[name]
        for name in NAMES
    )


@pytest.fixture(scope="module")
def corpus_result() -> ValidationResult:
    return validate_changes(table_of(corpus_rows()), now=NOW)


@pytest.fixture(scope="module")
def outcomes(corpus_result) -> dict[tuple, str | None]:
    """Identity of each corpus row -> None (valid) or its error_message."""
    found: dict[tuple, str | None] = {}
    for row in corpus_result.valid.to_pylist():
        found[identity(row)] = None
    for row in corpus_result.invalid.to_pylist():
        found[identity(row)] = row["error_message"]
    return found


def test_corpus_is_large_and_rows_are_distinct():
    assert len(CORPUS) >= 40
    assert len({identity(row) for row in corpus_rows()}) == len(CORPUS)


@pytest.mark.parametrize(
    ("number", "overrides", "reasons"),
    [(number, overrides, reasons) for number, (_, overrides, reasons) in enumerate(CORPUS)],
    ids=[case for case, _, _ in CORPUS],
)
def test_corpus_row(outcomes, number, overrides, reasons):
    key = identity({**base_row(number), **overrides})
    assert key in outcomes, "the row vanished: in neither the valid nor the invalid table"
    expected = "; ".join(reasons) if reasons else None
    assert outcomes[key] == expected


def test_no_row_vanishes_and_schemas_hold(corpus_result):
    assert corpus_result.valid.num_rows + corpus_result.invalid.num_rows == len(CORPUS)
    assert corpus_result.valid.schema.equals(source_schema())
    assert corpus_result.invalid.schema.equals(invalid_schema())
    assert corpus_result.invalid["error_message"].null_count == 0


def test_valid_emails_are_normalised(corpus_result):
    emails = set(corpus_result.valid["email"].to_pylist())
    assert "jane.doe@example.com" in emails
    assert "jane.spaces@example.com" in emails
    assert all(email == email.strip().lower() for email in emails)


def test_invalid_rows_keep_original_values():
    rows = [
        {**base_row(1), "email": "  Jane@Example.COM ", "status_state": "subscribed"},
        {**base_row(2), "subscription_id": 2**62 + 3, "channel": "SMS"},
    ]
    result = validate_changes(table_of(rows), now=NOW)
    invalid = result.invalid.to_pylist()
    assert [row["email"] for row in invalid] == ["  Jane@Example.COM ", "user2@example.com"]
    assert invalid[1]["subscription_id"] == 2**62 + 3  # no float round trip
    assert result.valid.num_rows == 0


def test_valid_rows_keep_order_and_values():
    rows = [{**base_row(number), "subscription_id": 2**62 + number} for number in range(5)]
    result = validate_changes(table_of(rows), now=NOW)
    assert result.valid.to_pylist() == rows
    assert result.invalid.num_rows == 0


def test_report_counts_samples_and_masking(corpus_result):
    report = corpus_result.report
    text = json.dumps(report)  # JSON-serialisable as is
    assert report["total_rows"] == len(CORPUS)
    invalid_cases = sum(1 for _, _, reasons in CORPUS if reasons)
    assert report["invalid_rows"] == invalid_cases
    assert report["valid_rows"] == len(CORPUS) - invalid_cases
    by_reason = {item["reason"]: item for item in report["expectations"]}
    assert len(by_reason) == 17
    for reason, item in by_reason.items():
        expected = sum(1 for _, _, reasons in CORPUS if reason in reasons)
        assert item["unexpected_count"] == expected, reason
        assert len(item["sample"]) == min(expected, 5)
    ranked = report["reasons_ranked"]
    assert [item["count"] for item in ranked] == sorted(
        (item["count"] for item in ranked), reverse=True
    )
    assert ranked[0] == {
        "reason": EMAIL_MALFORMED,
        "count": by_reason[EMAIL_MALFORMED]["unexpected_count"],
    }
    # No full email address anywhere in the report: samples are masked.
    for row in corpus_rows():
        email = row["email"]
        if isinstance(email, str) and "@" in email and len(email.split("@")[0]) > 1:
            assert email.strip().lower() not in text.lower()
    assert all(value is None or "***" in value for value in by_reason[EMAIL_MALFORMED]["sample"])


def test_report_truncates_long_values_and_escapes_control_characters():
    rows = [
        {**base_row(1), "legal_basis": BASIS, "legal_basis_explanation": "e" * 1500},
        {**base_row(2), "status_state": "SUBSCRIBED\x1b[31m"},
    ]
    report = validate_changes(table_of(rows), now=NOW).report
    by_reason = {item["reason"]: item for item in report["expectations"]}
    (long_value,) = by_reason[EXPLANATION_LONG]["sample"]
    assert len(long_value) < 80 and long_value.endswith("(1500 chars)")
    (state,) = by_reason[STATE_UNKNOWN]["sample"]
    assert "\x1b" not in state and "\\x1b" in state


def test_summarise_is_short_and_has_no_email(corpus_result):
    text = summarise(corpus_result.report)
    assert f"{len(CORPUS)} rows validated" in text
    assert EMAIL_MALFORMED in text
    assert len(text.splitlines()) <= 7
    assert "@example.com" not in text


def test_empty_table():
    result = validate_changes(table_of([]), now=NOW)
    assert result.valid.num_rows == result.invalid.num_rows == 0
    assert result.report["total_rows"] == 0
    assert "0 rows validated" in summarise(result.report)
    check_invalid_share(result.report, 0.0)


def test_extra_columns_are_dropped_and_missing_ones_refused():
    table = table_of([base_row(1)]).append_column("note", pa.array(["x"]))
    assert validate_changes(table, now=NOW).valid.schema.equals(source_schema())
    with pytest.raises(SchemaContractError, match="channel"):
        validate_changes(table_of([base_row(1)]).drop_columns(["channel"]), now=NOW)


def test_compatible_types_are_cast():
    table = table_of([base_row(1)])
    table = table.set_column(7, "changed_at", table["changed_at"].cast(pa.timestamp("ns", "UTC")))
    assert validate_changes(table, now=NOW).valid.schema.equals(source_schema())


def test_now_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_changes(table_of([base_row(1)]), now=NOW.replace(tzinfo=None))


def test_gx_stays_quiet(capfd):
    validate_changes(table_of([base_row(1), {**base_row(2), "email": "bad"}]), now=NOW)
    out, err = capfd.readouterr()
    assert "Calculating Metrics" not in out + err
    assert err == ""


# --------------------------------------------------------------------------------------------
# Schema gate
# --------------------------------------------------------------------------------------------

DUCKDB_TYPES = {
    "change_id": "VARCHAR",
    "email": "VARCHAR",
    "subscription_id": "BIGINT",
    "channel": "VARCHAR",
    "status_state": "VARCHAR",
    "legal_basis": "VARCHAR",
    "legal_basis_explanation": "VARCHAR",
    "changed_at": "TIMESTAMP WITH TIME ZONE",
}
POSTGRES_TYPES = {
    "change_id": "text",
    "email": "character varying",
    "subscription_id": "bigint",
    "channel": "text",
    "status_state": "character varying(32)",
    "legal_basis": "text",
    "legal_basis_explanation": "text",
    "changed_at": "timestamp with time zone",
}


@pytest.mark.parametrize("columns", [DUCKDB_TYPES, POSTGRES_TYPES], ids=["duckdb", "postgres"])
def test_schema_gate_accepts_the_contract(columns):
    check_source_schema(columns)
    check_source_schema({**columns, "extra": "JSON", "loaded_at": "DATE"})


@pytest.mark.parametrize(
    ("column", "sql_type"),
    [
        ("subscription_id", "INTEGER"),
        ("subscription_id", "HUGEINT"),
        ("subscription_id", "integer"),
        ("subscription_id", "smallint"),
        ("subscription_id", "DECIMAL(18,0)"),
        ("changed_at", "TIMESTAMP"),
        ("changed_at", "TIMESTAMPTZ"),
        ("changed_at", "timestamp without time zone"),
        ("changed_at", "TIMESTAMP_NS"),
        ("email", "TEXT"),
        ("email", "VARCHAR(320)"),
        ("email", "character(254)"),
    ],
)
def test_schema_gate_accepts_compatible_types(column, sql_type):
    check_source_schema({**DUCKDB_TYPES, column: sql_type})


@pytest.mark.parametrize(
    ("column", "sql_type", "expected"),
    [
        ("subscription_id", "VARCHAR", "an integer type (BIGINT/INTEGER)"),
        ("subscription_id", "numeric", "an integer type (BIGINT/INTEGER)"),
        ("subscription_id", "NUMERIC(10,2)", "an integer type (BIGINT/INTEGER)"),
        ("subscription_id", "DECIMAL(38,0)", "an integer type (BIGINT/INTEGER)"),
        ("subscription_id", "DOUBLE", "an integer type (BIGINT/INTEGER)"),
        ("subscription_id", "real", "an integer type (BIGINT/INTEGER)"),
        ("changed_at", "date", "a timestamp type (TIMESTAMP WITH TIME ZONE/TIMESTAMP)"),
        ("changed_at", "DATE", "a timestamp type (TIMESTAMP WITH TIME ZONE/TIMESTAMP)"),
        ("changed_at", "time with time zone", "a timestamp type"),
        ("changed_at", "VARCHAR", "a timestamp type"),
        ("email", "INTEGER", "a text type (VARCHAR/TEXT)"),
        ("change_id", "UUID", "a text type (VARCHAR/TEXT)"),
        ("status_state", "USER-DEFINED", "a text type (VARCHAR/TEXT)"),
    ],
)
def test_schema_gate_refuses_a_wrong_type(column, sql_type, expected):
    with pytest.raises(SchemaContractError) as raised:
        check_source_schema({**DUCKDB_TYPES, column: sql_type})
    assert f"consent_changes.{column} has type {sql_type}, expected {expected}" in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_schema_gate_message_for_subscription_id_as_varchar():
    with pytest.raises(SchemaContractError) as raised:
        check_source_schema({**DUCKDB_TYPES, "subscription_id": "VARCHAR"})
    assert (
        "consent_changes.subscription_id has type VARCHAR, expected an integer type "
        "(BIGINT/INTEGER)"
    ) in str(raised.value)


def test_schema_gate_refuses_a_missing_column():
    columns = {name: sql_type for name, sql_type in POSTGRES_TYPES.items() if name != "email"}
    with pytest.raises(SchemaContractError, match=r"consent_changes\.email is missing"):
        check_source_schema(columns)


def test_schema_gate_hints_at_case():
    columns = {**DUCKDB_TYPES}
    columns["Email"] = columns.pop("email")
    with pytest.raises(SchemaContractError, match="found Email"):
        check_source_schema(columns)


def test_schema_gate_names_every_problem():
    columns = {
        "change_id": "text",
        "subscription_id": "character varying",
        "channel": "text",
        "status_state": "text",
        "legal_basis": "integer",
        "changed_at": "date",
    }
    with pytest.raises(SchemaContractError) as raised:
        check_source_schema(columns)
    message = str(raised.value)
    assert "(5 problems)" in message
    for fragment in (
        "consent_changes.email is missing",
        "consent_changes.legal_basis_explanation is missing",
        "consent_changes.subscription_id has type character varying, expected an integer type",
        "consent_changes.legal_basis has type integer, expected a text type",
        "consent_changes.changed_at has type date, expected a timestamp type",
    ):
        assert fragment in message


def test_schema_gate_on_an_empty_table_description():
    with pytest.raises(SchemaContractError) as raised:
        check_source_schema({})
    assert f"({len(SOURCE_COLUMNS)} problems)" in str(raised.value)


# --------------------------------------------------------------------------------------------
# Invalid-share gate
# --------------------------------------------------------------------------------------------


def share_report(total: int, invalid: int) -> dict:
    return {
        "total_rows": total,
        "valid_rows": total - invalid,
        "invalid_rows": invalid,
        "reasons_ranked": [
            {"reason": EMAIL_MALFORMED, "count": invalid},
            {"reason": STATE_UNKNOWN, "count": 3},
            {"reason": CHANGED_AT_FUTURE, "count": 2},
            {"reason": CHANNEL_UNKNOWN, "count": 1},
        ],
    }


@pytest.mark.parametrize(
    ("total", "invalid", "threshold"),
    [
        (100, 0, 0.0),
        (100, 4, 0.05),
        (100, 5, 0.05),
        (100, 1, 0.01),
        (100, 29, 0.29),
        (1000, 70, 0.07),
        (0, 0, 0.0),
        (3, 3, 1.0),
    ],
)
def test_invalid_share_within_threshold_passes(total, invalid, threshold):
    check_invalid_share(share_report(total, invalid), threshold)


@pytest.mark.parametrize(
    ("total", "invalid", "threshold"),
    [(100, 6, 0.05), (100, 1, 0.0), (1000, 71, 0.07), (100_000, 2_001, 0.02)],
)
def test_invalid_share_above_threshold_stops(total, invalid, threshold):
    with pytest.raises(InvalidShareExceeded) as raised:
        check_invalid_share(share_report(total, invalid), threshold)
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert f"{invalid:,} of {total:,} rows" in message
    assert f"{invalid / total:.2%}" in message
    assert f"{threshold:.2%}" in message
    assert f"{EMAIL_MALFORMED} ({invalid:,})" in message
    assert f"{STATE_UNKNOWN} (3)" in message and f"{CHANGED_AT_FUTURE} (2)" in message
    assert CHANNEL_UNKNOWN not in message  # only the three most common reasons
    assert "DAG param max_invalid_share" in message


def test_invalid_share_gate_on_a_real_report(corpus_result):
    share = corpus_result.report["invalid_rows"] / corpus_result.report["total_rows"]
    check_invalid_share(corpus_result.report, share)
    with pytest.raises(InvalidShareExceeded):
        check_invalid_share(corpus_result.report, share - 0.01)


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_invalid_share_threshold_must_be_a_share(threshold):
    with pytest.raises(ValueError, match="between 0 and 1"):
        check_invalid_share(share_report(10, 1), threshold)


def test_now_in_another_zone_is_the_same_instant():
    from zoneinfo import ZoneInfo

    berlin = NOW.astimezone(ZoneInfo("Europe/Berlin"))
    rows = [
        {**base_row(1), "changed_at": NOW},
        {**base_row(2), "changed_at": NOW + timedelta(seconds=1)},
    ]
    result = validate_changes(table_of(rows), now=berlin)
    assert result.valid["change_id"].to_pylist() == ["case-1"]
    assert result.invalid["error_message"].to_pylist() == [CHANGED_AT_FUTURE]


def test_an_expectation_gx_cannot_evaluate_stops_the_run():
    import pandas as pd

    from include.consent_sync.validation_suite import SuiteError, checks, run_suite

    with pytest.raises(SuiteError, match="could not evaluate"):
        run_suite(pd.DataFrame({"unrelated": [1, 2]}), checks(NOW))
