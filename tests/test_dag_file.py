"""The DAG file imports cleanly, cheaply, and keeps the contract."""

import json
import subprocess
import sys

from dev.local_airflow import PROJECT

HEAVY = ["pandas", "great_expectations", "pyarrow", "duckdb", "psycopg"]


# Confs a trigger form, the CLI or a REST caller may send: the earlier null/true/false of
# resubscribe_guard keep working; anything else is refused before the run starts.
CONFS = [
    {"resubscribe_guard": "on"},
    {"resubscribe_guard": "connection default"},
    {"resubscribe_guard": None},
    {"resubscribe_guard": True},
    {"resubscribe_guard": False},
    {"resubscribe_guard": "maybe"},
    {"emails": None},
    {"emails": ["jane@example.com"]},
    {"emails": "jane@example.com"},
]


def _load_dag(airflow_home) -> dict:
    code = f"""
import contextlib, copy, io, json, sys
from airflow.dag_processing.dagbag import DagBag

def _valid(dag, conf):
    params = copy.deepcopy(dag.params)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # jsonschema's message, not our JSON
            params.update(conf)
            params.validate()
    except Exception:
        return False
    return True

bag = DagBag(dag_folder={str(PROJECT / "dags")!r})
dag = bag.dags.get("hubspot_consent_sync")
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "heavy": [m for m in {HEAVY!r} if m in sys.modules],
    "tasks": sorted(t.task_id for t in dag.tasks) if dag else [],
    "timetable": type(dag.timetable).__name__ if dag else None,
    "max_active_runs": dag.max_active_runs if dag else None,
    "params": sorted(dag.params) if dag else [],
    "optional": sorted(
        k for k in dag.params if "null" in (dag.params.get_param(k).schema.get("type") or [])
    ) if dag else [],
    "conf_ok": {{json.dumps(c): _valid(dag, c) for c in {CONFS!r}}} if dag else {{}},
    "push_pool": dag.get_task("push").pool if dag else None,
    "undocumented": sorted(t.task_id for t in dag.tasks if not t.doc_md) if dag else None,
    "retries": dag.get_task("extract").retries if dag else None,
    "downstream": {{t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}} if dag else {{}},
    "gate": {{
        "mode": dag.get_task("wait_for_turn").mode,
        "max_active_tis_per_dag": dag.get_task("wait_for_turn").max_active_tis_per_dag,
        "downstream": sorted(dag.get_task("wait_for_turn").downstream_task_ids),
        "upstream": sorted(dag.get_task("wait_for_turn").upstream_task_ids),
    }} if dag else None,
}}))
"""
    return _run_in_airflow(code, airflow_home)


def _run_in_airflow(code: str, airflow_home, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter with its own Airflow home; the JSON it prints last."""
    env = {
        "PYTHONPATH": f"{PROJECT}:{PROJECT / 'plugins'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_HOME": str(airflow_home),
        "PATH": "/usr/bin:/bin",
        **env,
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
        "announce_ledger",
        "extract",
        "load_results",
        "plan",
        "prepare_ledger",
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
    # One gate decision at a time across all runs, and it comes before anything touches the
    # ledger; the ledger is ready before extract looks it up.
    assert facts["gate"] == {
        "mode": "reschedule",
        "max_active_tis_per_dag": 1,
        "downstream": ["prepare_ledger"],
        "upstream": [],
    }
    assert facts["downstream"]["prepare_ledger"] == ["extract"]
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


def test_optional_params_are_not_required_and_earlier_confs_still_validate(tmp_path):
    facts = _load_dag(tmp_path)
    # The trigger form marks a param required unless its type allows null.
    assert set(facts["optional"]) >= {"emails", "resubscribe_guard"}
    refused = {conf for conf, ok in facts["conf_ok"].items() if not ok}
    assert refused == {'{"resubscribe_guard": "maybe"}', '{"emails": "jane@example.com"}'}


def test_the_prepare_ledger_task_prepares_the_connections_warehouse(tmp_path):
    from include.consent_sync.contract import LEDGER_TABLE, RUNS_VIEW
    from include.consent_sync.warehouse import DuckDBWarehouse

    path = tmp_path / "warehouse.duckdb"
    code = f"""
import json
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder={str(PROJECT / "dags")!r}).dags["hubspot_consent_sync"]
print(json.dumps({{"returned": dag.get_task("prepare_ledger").python_callable()}}))
"""
    connection = json.dumps({"conn_type": "duckdb", "host": str(path)})
    facts = _run_in_airflow(code, tmp_path, AIRFLOW_CONN_CONSENT_WAREHOUSE=connection)
    assert facts == {"returned": None}  # no XCom: extract follows it by order, not by data
    with DuckDBWarehouse(str(path)) as warehouse:
        found = warehouse.query_arrow(
            "SELECT table_name FROM information_schema.tables ORDER BY table_name"
        )["table_name"].to_pylist()
    assert {LEDGER_TABLE, RUNS_VIEW} <= set(found)


def test_no_airflow_2_idioms():
    ruff = [sys.executable, "-m", "ruff", "check", "--select", "AIR3", "dags", "plugins", "include"]
    result = subprocess.run(ruff, cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_reconcile_dag_runs_on_the_ledger_asset_or_weekly_and_reads_in_the_shared_pool(tmp_path):
    code = f"""
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(PROJECT / "dags")!r})
dag = bag.dags["hubspot_consent_reconcile"]
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "timetable": type(dag.timetable).__name__,
    "assets": [a.uri for a in dag.timetable.asset_condition.objects],
    "cron": dag.timetable.timetable.expression,
    "read_pool": dag.get_task("read").pool,
    "params": sorted(dag.params),
    "downstream": {{t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}},
}}))
"""
    facts = _run_in_airflow(code, tmp_path)
    assert facts["errors"] == {}
    assert facts["timetable"] == "AssetOrTimeSchedule"
    assert facts["assets"] == ["consent_warehouse://hubspot_consent_sync_results"]
    assert facts["cron"] == "0 4 * * 0"
    assert facts["read_pool"] == "hubspot_api"
    assert set(facts["params"]) >= {"full", "emails", "repair"}
    assert facts["downstream"]["select_keys"] == ["read"]
    assert facts["downstream"]["compare"] == ["repair_request", "report"]
    assert facts["downstream"]["trigger_repair"] == ["report"]


def test_the_local_pool_has_the_contracts_slots():
    import yaml

    from include.consent_sync.contract import HUBSPOT_POOL, HUBSPOT_POOL_SLOTS

    settings = yaml.safe_load((PROJECT / "airflow_settings.yaml").read_text())
    pools = {p["pool_name"]: p["pool_slot"] for p in settings["airflow"]["pools"]}
    assert pools == {HUBSPOT_POOL: HUBSPOT_POOL_SLOTS}
