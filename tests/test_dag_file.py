"""The DAG file imports cleanly, cheaply, and keeps the contract."""

import json
import subprocess
import sys

from dev.local_airflow import PROJECT

HEAVY = ["pandas", "great_expectations", "pyarrow", "duckdb", "psycopg"]


def _load_dag(airflow_home) -> dict:
    code = f"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(PROJECT / "dags")!r})
dag = bag.dags.get("hubspot_consent_sync")
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "heavy": [m for m in {HEAVY!r} if m in sys.modules],
    "tasks": sorted(t.task_id for t in dag.tasks) if dag else [],
    "timetable": type(dag.timetable).__name__ if dag else None,
    "max_active_runs": dag.max_active_runs if dag else None,
    "params": sorted(dag.params) if dag else [],
    "push_pool": dag.get_task("push").pool if dag else None,
    "undocumented": sorted(t.task_id for t in dag.tasks if not t.doc_md) if dag else None,
    "retries": dag.get_task("extract").retries if dag else None,
    "gate": {{
        "mode": dag.get_task("wait_for_turn").mode,
        "max_active_tis_per_dag": dag.get_task("wait_for_turn").max_active_tis_per_dag,
        "downstream": sorted(dag.get_task("wait_for_turn").downstream_task_ids),
        "upstream": sorted(dag.get_task("wait_for_turn").upstream_task_ids),
    }} if dag else None,
}}))
"""
    env = {
        "PYTHONPATH": f"{PROJECT}:{PROJECT / 'plugins'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_HOME": str(airflow_home),
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dag_imports_without_errors_or_heavy_modules(tmp_path):
    facts = _load_dag(tmp_path)
    assert facts["errors"] == {}
    assert facts["heavy"] == [], "DAG files must not import these at top level"
    assert facts["tasks"] == [
        "extract",
        "load_results",
        "plan",
        "push",
        "report",
        "validate",
        "wait_for_turn",
    ]
    assert facts["timetable"] == "CronDataIntervalTimetable"
    assert facts["max_active_runs"] == 1
    assert facts["push_pool"] == "hubspot_api"
    assert facts["undocumented"] == [], "each task's docstring is its doc in the UI"
    assert facts["retries"] == 2
    # One gate decision at a time across all runs, and it comes before anything reads the ledger.
    assert facts["gate"] == {
        "mode": "reschedule",
        "max_active_tis_per_dag": 1,
        "downstream": ["extract"],
        "upstream": [],
    }
    assert set(facts["params"]) >= {
        "dry_run",
        "emails",
        "resync",
        "lookback_days",
        "max_attempts",
        "max_rows",
        "max_invalid_share",
        "resubscribe_guard",
    }


def test_no_airflow_2_idioms():
    ruff = [sys.executable, "-m", "ruff", "check", "--select", "AIR3", "dags", "plugins", "include"]
    result = subprocess.run(ruff, cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_local_pool_has_the_contracts_slots():
    import yaml

    from include.consent_sync.contract import HUBSPOT_POOL, HUBSPOT_POOL_SLOTS

    settings = yaml.safe_load((PROJECT / "airflow_settings.yaml").read_text())
    pools = {p["pool_name"]: p["pool_slot"] for p in settings["airflow"]["pools"]}
    assert pools == {HUBSPOT_POOL: HUBSPOT_POOL_SLOTS}
