"""A demo warehouse: a DuckDB file with realistic consent changes, some invalid, some repeated.

``python -m dev.demo_data PATH [--rows N] [--interval-end ISO]`` (re)creates the
``consent_changes`` table. The same seed gives the same rows, so runs and tests are repeatable.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta

from include.consent_sync.contract import LEGAL_BASES, SOURCE_TABLE

# `make run` and the tests: a fixed night, so their runs are repeatable.
DEMO_INTERVAL_END = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
NIGHTLY_AT = 2  # the DAG's schedule: 02:00 UTC


def latest_night(now: datetime | None = None) -> datetime:
    """The end of the latest nightly interval at ``now``: the run that unpausing the DAG creates
    first. `make airflow` and `make deploy-local` date their demo to it, so a newcomer's first
    runs find the demo's changes whatever the date."""
    now = now or datetime.now(UTC)
    night = now.replace(hour=NIGHTLY_AT, minute=0, second=0, microsecond=0)
    return night if night <= now else night - timedelta(days=1)


SUBSCRIPTIONS = (1001, 1002, 1003)
DOMAINS = ("example.com", "example.org", "mail.example.net", "exemple.fr", "beispiel.de")
FIRST = (
    "anna",
    "ben",
    "chloe",
    "dmitri",
    "emma",
    "farid",
    "grace",
    "hiro",
    "ines",
    "jack",
    "kofi",
    "lena",
)
LAST = ("smith", "o'brien", "garcia", "nguyen", "müller", "kowalski", "tanaka", "dubois", "silva")
# Real addresses use these; they must survive encoding and validation.
UNUSUAL_LOCAL_PARTS = (
    "ops+newsletter",
    "a/b",
    "hash#tag",
    "what?now",
    "percent%sign",
    "tom&jerry",
    "x=y",
)
INVALID_EMAILS = ("not-an-email", "two@@example.com", "space in@example.com", "nodot@localhost", "")

CREATE_TABLE = f"""
CREATE TABLE {SOURCE_TABLE} (
    change_id TEXT,
    email TEXT,
    subscription_id BIGINT,
    channel TEXT,
    status_state TEXT,
    legal_basis TEXT,
    legal_basis_explanation TEXT,
    changed_at TIMESTAMP WITH TIME ZONE
)
"""


def demo_rows(
    rows: int = 3000, interval_end: datetime = DEMO_INTERVAL_END, seed: int = 7
) -> list[tuple]:
    """``rows`` changes, mostly inside the day before ``interval_end``.

    About 2% are invalid (bad email, unknown state, missing subscription); a third of contacts
    change the same subscription more than once; a few changes are older (still unsynced, within
    the lookback) or newer than the interval (for the next run).
    """
    rng = random.Random(seed)
    contacts = []
    for i in range(max(1, rows // 3)):
        local = f"{rng.choice(FIRST)}.{rng.choice(LAST).replace('ü', 'u')}{i}"
        if i % 40 == 0:
            local = f"{UNUSUAL_LOCAL_PARTS[i // 40 % len(UNUSUAL_LOCAL_PARTS)]}{i}"
        email = f"{local}@{rng.choice(DOMAINS)}"
        if i % 25 == 0:
            email = f"  {email.upper()} "  # normalised, not rejected
        contacts.append(email)
    out = []
    for n in range(rows):
        email = rng.choice(contacts)
        subscription_id: int | None = rng.choice(SUBSCRIPTIONS)
        state = rng.choices(("SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED"), (6, 3, 1))[0]
        basis = rng.choice(LEGAL_BASES) if rng.random() < 0.7 else None
        explanation = f"Captured by web form v{rng.randint(1, 4)}" if basis else None
        spot = rng.random()
        if spot < 0.9:
            changed_at = interval_end - timedelta(seconds=rng.randint(1, 86_400))
        elif spot < 0.95:
            changed_at = interval_end - timedelta(
                days=rng.randint(2, 20), seconds=rng.randint(0, 86_399)
            )
        else:
            changed_at = interval_end + timedelta(seconds=rng.randint(0, 86_399))
        if n % 50 == 7:  # ~2% invalid, of several kinds
            kind = (n // 50) % 3
            if kind == 0:
                email = INVALID_EMAILS[(n // 150) % len(INVALID_EMAILS)]
            elif kind == 1:
                state = "OPTED_OUT"
            else:
                subscription_id = None
        out.append(
            (
                f"chg-{n:07d}",
                email,
                subscription_id,
                "EMAIL",
                state,
                basis,
                explanation,
                changed_at.replace(microsecond=0),
            )
        )
    return out


def create_source_table(warehouse) -> None:
    """(Re)create an empty ``consent_changes`` table (any :class:`Warehouse`)."""
    warehouse.execute(f"DROP TABLE IF EXISTS {SOURCE_TABLE}")
    warehouse.execute(CREATE_TABLE)


def insert_changes(warehouse, rows: list[tuple]) -> None:
    """Append rows (tuples in table order) to ``consent_changes`` in one bulk insert."""
    import pyarrow as pa

    from include.consent_sync.contract import source_schema

    names = source_schema().names
    table = pa.Table.from_pylist(
        [dict(zip(names, r, strict=True)) for r in rows], schema=source_schema()
    )
    warehouse.insert_arrow(SOURCE_TABLE, table)


def create_demo_warehouse(
    warehouse, rows: int = 3000, interval_end: datetime = DEMO_INTERVAL_END
) -> int:
    """(Re)create ``consent_changes`` with demo rows; return the row count."""
    data = demo_rows(rows, interval_end)
    create_source_table(warehouse)
    insert_changes(warehouse, data)
    return len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="DuckDB database file")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--interval-end", default=DEMO_INTERVAL_END.isoformat())
    args = parser.parse_args()
    from include.consent_sync.warehouse import DuckDBWarehouse

    with DuckDBWarehouse(args.path) as warehouse:
        count = create_demo_warehouse(
            warehouse, args.rows, datetime.fromisoformat(args.interval_end)
        )
    print(f"{count} consent changes written to {args.path} (table {SOURCE_TABLE})")


if __name__ == "__main__":
    main()
