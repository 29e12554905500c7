"""The one table of outcomes (contract.Outcome) against every place that lists outcomes."""

import pickle
import re
from pathlib import Path

import pytest

from include.consent_sync.contract import FINAL_OUTCOMES, Outcome
from include.consent_sync.report import run_summary
from include.consent_sync.run_record import COLUMNS, count_columns
from include.consent_sync.warehouse import load_sql

ROOT = Path(__file__).parents[1]
SQL_FILES = sorted((ROOT / "include" / "consent_sync" / "sql").glob("*.sql"))
NOT_FINAL = tuple(outcome for outcome in Outcome if not outcome.final)


def readme() -> str:
    return (ROOT / "README.md").read_text()


def test_every_outcome_has_a_meaning_and_final_is_derived():
    assert all(outcome.meaning for outcome in Outcome)
    assert FINAL_OUTCOMES == tuple(o for o in Outcome if o.final)
    assert {Outcome.FAILED, Outcome.DEFERRED, Outcome.DRY_RUN} == set(NOT_FINAL)
    assert pickle.loads(pickle.dumps(Outcome.REJECTED)) is Outcome.REJECTED
    assert Outcome("SYNCED") is Outcome.SYNCED and str(Outcome.SYNCED) == "SYNCED"


@pytest.mark.parametrize("source", [*SQL_FILES, ROOT / "README.md"], ids=lambda p: p.name)
def test_outcome_lists_name_outcomes_and_the_final_list_is_whole(source):
    """Every `outcome IN (...)` names real outcomes; one naming SYNCED (the final list: done, not
    reconsidered) or DRY_RUN (the unfinished list: waiting) names that whole class, in order."""
    lists = re.findall(r"outcome (?:NOT )?IN \(([^)]*)\)", source.read_text())
    for listed in lists:
        names = tuple(re.findall(r"'(\w+)'", listed))
        assert set(names) <= set(Outcome), (source.name, names)
        if "SYNCED" in names:
            assert names == FINAL_OUTCOMES, (source.name, names)
        if "DRY_RUN" in names:
            assert names == NOT_FINAL, (source.name, names)


def test_the_run_records_count_every_outcome():
    # One count column per outcome: in the record's columns, the table, the view and the upsert.
    columns = [outcome.value.lower() for outcome in Outcome]
    assert [c for c in COLUMNS if c in columns] == columns
    assert list(count_columns({})) == ["changes", *columns]
    for name in ("ledger_schema", "upsert_run_record"):
        sql = load_sql(name)
        for column in columns:
            assert re.search(rf"\b{column}\b", sql), (name, column)


def test_the_runs_view_counts_every_outcome():
    # The view reads hubspot_consent_sync_run_records, which record_run.sql counts into.
    counted = dict(
        re.findall(
            r"COUNT\(\*\) FILTER \(WHERE outcome = '(\w+)'\) AS (\w+)", load_sql("record_run")
        )
    )
    assert counted == {outcome.value: outcome.value.lower() for outcome in Outcome}


def test_the_readme_table_is_the_contracts():
    rows = re.findall(r"^\| ([A-Z_]+) \| (.+) \| (yes|no) \|$", readme(), re.MULTILINE)
    expected = [(o.value, o.meaning, "no" if o.final else "yes") for o in Outcome]
    assert rows == expected


def test_the_run_summary_says_what_each_outcome_means():
    summary = run_summary("run-1", "2026-11-20", {str(o): 1 for o in Outcome}, [])
    for outcome in Outcome:
        assert outcome.meaning in summary
    assert summary.count("a later run retries it") == len(NOT_FINAL)
