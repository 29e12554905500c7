"""hubspot_consent_sync: warehouse consent changes → validated → HubSpot → ledger.

The DAG only wires the steps: each task reads its run's values through
``include/consent_sync/runtime.py`` and runs one step of ``include/consent_sync/pipeline.py``
(the design: docs/ARCHITECTURE.md). Heavy imports happen inside the tasks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, TriggerRule, dag, task

from include.consent_sync import runtime, turns
from include.consent_sync.contract import (
    DAG_ID,
    HUBSPOT_CONN_ID,
    HUBSPOT_POOL,
    HUBSPOT_POOL_SLOTS,
    LEDGER_TABLE,
)
from include.consent_sync.push_operator import PushBatchOperator

LEDGER = Asset(f"consent_warehouse://{LEDGER_TABLE}", group="hubspot_consent_sync")

DOC = """
### HubSpot consent sync

Every night at 02:00 UTC this DAG takes the consent changes of the last day (and any earlier ones
not yet final) from the warehouse table `consent_changes`, validates them, sends the latest change
per contact and subscription to HubSpot's Communication Preferences API, and writes one row per
change to `hubspot_consent_sync_results`.

**Tasks**: wait_for_turn → prepare_ledger → extract → validate → plan → push (one mapped task
per batch, pool `hubspot_api`) → load_results → announce_ledger → report. `wait_for_turn` holds
a run until no other run is between its prepare_ledger and its load_results and no earlier run
is still running, so runs (backfills included) take turns in date order. `prepare_ledger`
creates or upgrades the ledger, its views and indexes, so extract only reads it. `load_results`
and `report` run even when an earlier task failed, so every extracted change gets its ledger row. `announce_ledger` emits the ledger Asset's event only
when the run wrote rows and nothing stopped it. `report` records the run in
`hubspot_consent_sync_runs`, sends alerts, and fails the run if anything stopped early.

**Live switch**: the Airflow Variable `consent_sync_live`. Until it is `true` the sync is
DISARMED: runs only plan and write DRY_RUN rows, and the plan log and the report say
"DISARMED: nothing was sent; set Variable consent_sync_live=true to go live". First time: trigger
with the defaults (a dry run), then with one email in "Only these contacts" and "Dry run" off (a
disarmed sync sends a run that names contacts, to those only), then set the Variable to `true`
(Admin → Variables).

**Params** (Trigger → trigger form): `dry_run` plans without sending; `emails` restricts the run
to some contacts; `resync` sends the latest state again for keys changed in the interval;
`repair_run_id` (set by `hubspot_consent_reconcile`'s repair) sends again exactly the keys that
reconcile run found DRIFT or MISSING; `max_rows` and `max_invalid_share` are guards checked before anything is sent;
`resubscribe_guard` is `connection default`, `on` or `off`.

**Backfill**: Trigger → Backfill, pick the date range, "Run backwards" off. To give the runs
params, set them and tick "Override parameters on existing runs": Airflow 3.3's Backfill form
sends them only then (else `dag_run_conf: null`). Whatever the backfill's max active runs, its
runs and the nightly one push one at a time, in date order among the runs that are running. A
backfill never writes an older consent over a newer one (only the latest change per key is ever
sent), and re-running an interval adds no duplicate ledger rows. CLI: `airflow backfill create
--dag-id hubspot_consent_sync --from-date 2026-11-01 --to-date 2026-11-07 --dag-run-conf
'{"emails": ["jane@example.com"]}'`.

**Audit**: views `hubspot_consent_sync_runs` and `hubspot_consent_sync_latest`; see the README.
"""


@dag(
    dag_id=DAG_ID,
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    # A nightly run still going CONSENT_SYNC_DEADLINE_MINUTES after it was queued alerts.
    deadline=runtime.nightly_deadline(),
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        # Why a task failed, kept for the run record that `report` writes.
        "on_failure_callback": runtime.note_failure,
    },
    tags=["hubspot", "consent", "warehouse"],
    doc_md=DOC,
    params={
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="On: plan and record DRY_RUN rows, send nothing. Off: send if the sync "
            "is live (Variable consent_sync_live=true); while it is disarmed, send only to the "
            "contacts in emails.",
        ),
        "emails": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            title="Only these contacts",
            description="Emails, one per line. Empty: every contact. While the sync is "
            "disarmed, a run with emails and dry run off sends to these contacts only.",
        ),
        "resync": Param(
            False,
            type="boolean",
            description="Send the latest state again for keys changed in the interval, even if already SYNCED.",
        ),
        "repair_run_id": Param(
            None,
            type=["null", "string"],
            description="Repair: send again the latest change of exactly the DRIFT and MISSING "
            "keys of this hubspot_consent_reconcile run (set by its repair param).",
        ),
        "lookback_days": Param(
            30,
            type="integer",
            minimum=1,
            description="How far back unfinished changes are retried.",
        ),
        "max_attempts": Param(
            5,
            type="integer",
            minimum=1,
            description="Runs a change may FAIL in before it becomes REJECTED.",
        ),
        "max_rows": Param(
            200_000, type="integer", minimum=1, description="Guard: most changes one run may send."
        ),
        "max_invalid_share": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            description="Guard: largest share of INVALID rows before the run stops.",
        ),
        "resubscribe_guard": Param(
            "connection default",
            type=["string", "boolean", "null"],
            # Offered as a list; the earlier null/true/false still validate (--conf, REST).
            examples=["connection default", "on", "off"],
            pattern="^(connection default|on|off)$",
            title="Resubscribe guard",
            description="connection default, on or off. On: read HubSpot before resubscribing "
            "a contact and skip the change if the contact opted out there since. Connection "
            "default: the hubspot_default connection's resubscribe_guard extra (on if unset).",
        ),
    },
)
def hubspot_consent_sync():
    # Backfills keep their own max_active_runs: this gate makes every run take its turn.
    @task.sensor(
        task_id=turns.GATE_TASK,
        mode="reschedule",
        poke_interval=15,
        timeout=timedelta(hours=24),
        max_active_tis_per_dag=1,
    )
    def wait_for_turn(**context) -> bool:
        """Hold this run until no other run is between its prepare_ledger and its load_results
        and no earlier run is still running, so runs (backfills included) take turns in date
        order."""
        return runtime.is_our_turn(context)

    @task
    def prepare_ledger() -> None:
        """Create the ledger (`hubspot_consent_sync_results`), its state tables, audit views and
        indexes, or upgrade an older ledger in place (minutes for a large one, once)."""
        from include.consent_sync import pipeline

        with runtime.open_warehouse() as warehouse:
            pipeline.prepare_ledger(warehouse)

    @task
    def extract(**context) -> dict:
        """Check `consent_changes` against the contract, select the run's candidate changes
        (the interval, plus unfinished ones within `lookback_days`) and stage them as Parquet."""
        from include.consent_sync import pipeline

        folder = runtime.run_folder(context)
        with runtime.open_warehouse() as warehouse, runtime.gates_fail_fast():
            facts = pipeline.extract(warehouse, folder, runtime.window(context))
        return {"folder": str(folder), **facts}

    @task
    def validate(extracted: dict, **context) -> dict:
        """Run the validation suite on the candidates: valid rows go on, INVALID rows are staged
        with their reasons; the run stops if the invalid share exceeds `max_invalid_share`."""
        from airflow.sdk import ObjectStoragePath

        from include.consent_sync import pipeline

        with runtime.gates_fail_fast():
            facts = pipeline.validate(
                ObjectStoragePath(extracted["folder"]),
                now=datetime.now(UTC),
                max_invalid_share=float(context["params"]["max_invalid_share"]),
            )
        return {"folder": extracted["folder"], **facts}

    @task
    def plan(validated: dict, **context) -> list[dict]:
        """Keep the latest change per key, decide the skips, check `max_rows` and cut the changes
        to send into batch files, one per mapped push task."""
        from airflow.sdk import ObjectStoragePath

        from include.consent_sync import pipeline

        capacity = runtime.push_capacity(HUBSPOT_POOL_SLOTS)
        with runtime.gates_fail_fast():
            decision = runtime.decide_sending(context)  # the live switch and dry_run
            batches = pipeline.plan(
                ObjectStoragePath(validated["folder"]),
                dry_run=not decision.send,
                disarmed=decision.disarmed,
                max_rows=int(context["params"]["max_rows"]),
                capacity=capacity,
            )
        return runtime.with_guard_choice(context, batches)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def load_results(**context) -> dict:
        """Write one ledger row per considered change, whatever stage the run reached (runs even
        when an earlier task failed), and the run's counts to its run record."""
        from include.consent_sync import pipeline

        facts = runtime.run_facts(context)
        with runtime.open_warehouse() as warehouse:
            return pipeline.load_results(warehouse, runtime.run_folder(context), facts)

    @task(outlets=[LEDGER])
    def announce_ledger(counts: dict, **context) -> None:
        """Emit the ledger Asset's event with the run's counts, only when the run wrote rows and
        no step stopped it (skipped otherwise: a skipped task emits no event)."""
        runtime.announce_ledger(context, counts, LEDGER)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def report(counts: dict | None, **context) -> None:
        """Record the run in `hubspot_consent_sync_runs` (every run), log its counts per outcome,
        alert if it needs a person; fail the run, naming the task and why, if a step stopped."""
        runtime.summarise_run(context, counts)

    extracted = wait_for_turn() >> prepare_ledger() >> extract()
    batches = plan(validate(extracted))
    push = PushBatchOperator.partial(
        task_id="push",
        hubspot_conn_id=HUBSPOT_CONN_ID,
        pool=HUBSPOT_POOL,
        parallel_tasks=HUBSPOT_POOL_SLOTS,
        max_active_tis_per_dagrun=HUBSPOT_POOL_SLOTS,
        map_index_template="batch {{ task.batch['index'] }} ({{ task.batch['rows'] }} rows)",
        doc_md="Send one batch's changes to HubSpot (pool `hubspot_api`, at its share of the "
        "rate limit), staging one result per row as it goes: a retry sends only what is not done.",
    ).expand(batch=batches)
    counts = load_results()
    push >> counts
    announce_ledger(counts) >> report(counts)


hubspot_consent_sync()
