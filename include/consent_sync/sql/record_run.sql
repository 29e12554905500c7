-- A run's row in hubspot_consent_sync_run_records, counted from its ledger rows (one run, or
-- every run when :dag_run_id is NULL: the upgrade of a ledger from before the table existed).
-- Recording a run again replaces its row. A new column: add it here and in ledger_schema.sql.
INSERT INTO hubspot_consent_sync_run_records (
    dag_run_id, interval_start, interval_end, changes, synced, failed, rejected, invalid,
    skipped_superseded, skipped_hubspot_newer, deferred, dry_run, started_at, finished_at
)
SELECT
    dag_run_id,
    MIN(interval_start) AS interval_start,
    MAX(interval_end) AS interval_end,
    COUNT(*) AS changes,
    COUNT(*) FILTER (WHERE outcome = 'SYNCED') AS synced,
    COUNT(*) FILTER (WHERE outcome = 'FAILED') AS failed,
    COUNT(*) FILTER (WHERE outcome = 'REJECTED') AS rejected,
    COUNT(*) FILTER (WHERE outcome = 'INVALID') AS invalid,
    COUNT(*) FILTER (WHERE outcome = 'SKIPPED_SUPERSEDED') AS skipped_superseded,
    COUNT(*) FILTER (WHERE outcome = 'SKIPPED_HUBSPOT_NEWER') AS skipped_hubspot_newer,
    COUNT(*) FILTER (WHERE outcome = 'DEFERRED') AS deferred,
    COUNT(*) FILTER (WHERE outcome = 'DRY_RUN') AS dry_run,
    MIN(COALESCE(sent_at, recorded_at)) AS started_at,
    MAX(recorded_at) AS finished_at
FROM hubspot_consent_sync_results
WHERE CAST(:dag_run_id AS TEXT) IS NULL OR dag_run_id = :dag_run_id
GROUP BY dag_run_id
ON CONFLICT (dag_run_id) DO UPDATE SET
    interval_start = EXCLUDED.interval_start,
    interval_end = EXCLUDED.interval_end,
    changes = EXCLUDED.changes,
    synced = EXCLUDED.synced,
    failed = EXCLUDED.failed,
    rejected = EXCLUDED.rejected,
    invalid = EXCLUDED.invalid,
    skipped_superseded = EXCLUDED.skipped_superseded,
    skipped_hubspot_newer = EXCLUDED.skipped_hubspot_newer,
    deferred = EXCLUDED.deferred,
    dry_run = EXCLUDED.dry_run,
    started_at = EXCLUDED.started_at,
    finished_at = EXCLUDED.finished_at;
