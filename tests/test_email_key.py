"""The key's email is the same in SQL, Python and Arrow, on both engines."""

import re
from pathlib import Path

import pyarrow as pa

from include.consent_sync.email_key import key_email, key_emails

KEY_SQL = "LOWER(TRIM(BOTH ' ' FROM email))"
SQL_DIR = Path(__file__).parents[1] / "include" / "consent_sync" / "sql"
SPELLINGS = [
    "Jane@Example.COM",
    "  jane@example.com  ",
    "\tjane@example.com",  # a tab is not a space: TRIM keeps it
    "jane@example.com\n",
    "\u00a0jane@example.com",  # no-break space: kept too
    " O'Brien+Tag@Example.ie ",
    "",
]


def test_python_and_arrow_give_what_sql_gives(warehouse):
    with warehouse.open() as connection:
        connection.execute("CREATE TABLE spellings (position INTEGER, email TEXT)")
        connection.insert_arrow(
            "spellings",
            pa.table(
                {
                    "position": pa.array(range(len(SPELLINGS)), pa.int32()),
                    "email": pa.array(SPELLINGS, pa.string()),
                }
            ),
        )
        sql = connection.query_arrow(f"SELECT {KEY_SQL} AS key FROM spellings ORDER BY position")[
            "key"
        ].to_pylist()
    assert [key_email(e) for e in SPELLINGS] == sql
    assert key_emails(pa.array(SPELLINGS)).to_pylist() == sql
    assert sql[:2] == ["jane@example.com", "jane@example.com"]
    assert sql[2] == "\tjane@example.com"


def test_nulls_stay_null_in_arrow():
    assert key_emails(pa.array([None, " A@X.com"])).to_pylist() == [None, "a@x.com"]


def test_the_sql_files_compute_the_key_one_way():
    """A bare TRIM trims Unicode spaces on DuckDB only: every key expression names ' '."""
    for path in SQL_DIR.glob("*.sql"):
        trims = re.findall(r"LOWER\(TRIM\(([^()]*)\)\)", path.read_text(), re.IGNORECASE)
        assert all(t.startswith("BOTH ' ' FROM ") for t in trims), (path.name, trims)
    assert "BOTH ' ' FROM" in (SQL_DIR / "candidates.sql").read_text()
