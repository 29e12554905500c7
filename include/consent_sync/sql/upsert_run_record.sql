-- One run's record, written by load_results (counts and timing; state NULL) and then by the
-- run's last task, `report` (every fact, state set). A write without a state keeps the facts
-- the last task recorded, so a re-run load_results cannot erase them.
INSERT INTO hubspot_consent_sync_run_records (
    dag_run_id, interval_start, interval_end, changes, synced, failed, rejected, invalid,
    skipped_superseded, skipped_hubspot_newer, deferred, dry_run, started_at, finished_at,
    run_type, state, dry_run_param, resync, emails_count, failed_task, failure_reason, ui_url,
    daily_limit_reached
) VALUES (
    :dag_run_id, :interval_start, :interval_end, :changes, :synced, :failed, :rejected, :invalid,
    :skipped_superseded, :skipped_hubspot_newer, :deferred, :dry_run, :started_at, :finished_at,
    :run_type, :state, :dry_run_param, :resync, :emails_count, :failed_task, :failure_reason,
    :ui_url, :daily_limit_reached
)
ON CONFLICT (dag_run_id) DO UPDATE SET
    changes = EXCLUDED.changes,
    synced = EXCLUDED.synced,
    failed = EXCLUDED.failed,
    rejected = EXCLUDED.rejected,
    invalid = EXCLUDED.invalid,
    skipped_superseded = EXCLUDED.skipped_superseded,
    skipped_hubspot_newer = EXCLUDED.skipped_hubspot_newer,
    deferred = EXCLUDED.deferred,
    dry_run = EXCLUDED.dry_run,
    interval_start = COALESCE(EXCLUDED.interval_start, hubspot_consent_sync_run_records.interval_start),
    interval_end = COALESCE(EXCLUDED.interval_end, hubspot_consent_sync_run_records.interval_end),
    started_at = COALESCE(EXCLUDED.started_at, hubspot_consent_sync_run_records.started_at),
    finished_at = COALESCE(EXCLUDED.finished_at, hubspot_consent_sync_run_records.finished_at),
    run_type = CASE WHEN EXCLUDED.state IS NULL THEN hubspot_consent_sync_run_records.run_type ELSE EXCLUDED.run_type END,
    state = CASE WHEN EXCLUDED.state IS NULL THEN hubspot_consent_sync_run_records.state ELSE EXCLUDED.state END,
    dry_run_param = CASE WHEN EXCLUDED.state IS NULL THEN hubspot_consent_sync_run_records.dry_run_param ELSE EXCLUDED.dry_run_param END,
    resync = CASE WHEN EXCLUDED.state IS NULL THEN hubspot_consent_sync_run_records.resync ELSE EXCLUDED.resync END,
    emails_count = CASE WHEN EXCLUDED.state IS NULL THEN hubspot_consent_sync_run_records.emails_count ELSE EXCLUDED.emails_count END,
    failed_task = CASE WHEN EXCLUDED.state IS NULL THEN hubspot_consent_sync_run_records.failed_task ELSE EXCLUDED.failed_task END,
    failure_reason = CASE WHEN EXCLUDED.state IS NULL THEN hubspot_consent_sync_run_records.failure_reason ELSE EXCLUDED.failure_reason END,
    ui_url = CASE WHEN EXCLUDED.state IS NULL THEN hubspot_consent_sync_run_records.ui_url ELSE EXCLUDED.ui_url END,
    daily_limit_reached = CASE WHEN EXCLUDED.state IS NULL THEN hubspot_consent_sync_run_records.daily_limit_reached ELSE EXCLUDED.daily_limit_reached END;
