-- The ledger and its audit views. Run on first use by every load; safe to run again.
-- Views are replaced, never dropped: users build their own views on them, and PostgreSQL refuses
-- to drop a view others depend on. So a new column goes at the end of a view, never in between.
CREATE TABLE IF NOT EXISTS hubspot_consent_sync_results (
    change_id                  TEXT NOT NULL,
    dag_run_id                 TEXT NOT NULL,
    interval_start             TIMESTAMP WITH TIME ZONE,
    interval_end               TIMESTAMP WITH TIME ZONE,
    email                      TEXT,
    subscription_id            BIGINT,
    channel                    TEXT,
    status_state               TEXT,
    legal_basis                TEXT,
    changed_at                 TIMESTAMP WITH TIME ZONE,
    outcome                    TEXT NOT NULL,
    http_status                INTEGER,
    error_category             TEXT,
    error_message              TEXT,
    correlation_id             TEXT,
    set_status_success_reason  TEXT,
    attempts                   INTEGER,
    sent_at                    TIMESTAMP WITH TIME ZONE,
    recorded_at                TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (dag_run_id, change_id)
);

CREATE INDEX IF NOT EXISTS hubspot_consent_sync_results_change_id
    ON hubspot_consent_sync_results (change_id);

-- One row per DAG run, whatever happened (0 changes, dry run, stopped by a gate, failed), written
-- by the run's last task. Counts come from the run's own ledger rows, never from the whole ledger.
CREATE TABLE IF NOT EXISTS hubspot_consent_sync_run_records (
    dag_run_id TEXT PRIMARY KEY, interval_start TIMESTAMP WITH TIME ZONE,
    interval_end TIMESTAMP WITH TIME ZONE, changes BIGINT, synced BIGINT, failed BIGINT,
    rejected BIGINT, invalid BIGINT, skipped_superseded BIGINT, skipped_hubspot_newer BIGINT,
    deferred BIGINT, dry_run BIGINT, started_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE);

ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS run_type TEXT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS state TEXT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS dry_run_param BOOLEAN;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS resync BOOLEAN;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS emails_count BIGINT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS failed_task TEXT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS failure_reason TEXT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS ui_url TEXT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS daily_limit_reached BOOLEAN;

CREATE OR REPLACE VIEW hubspot_consent_sync_runs AS
SELECT
    dag_run_id, interval_start, interval_end, changes, synced, failed, rejected, invalid,
    skipped_superseded, skipped_hubspot_newer, deferred, dry_run, started_at, finished_at,
    run_type, state, dry_run_param, resync, emails_count, failed_task, failure_reason, ui_url,
    daily_limit_reached
FROM hubspot_consent_sync_run_records;

CREATE OR REPLACE VIEW hubspot_consent_sync_latest AS
SELECT email, subscription_id, channel, status_state, legal_basis, changed_at, change_id,
       dag_run_id, sent_at, set_status_success_reason
FROM (
    SELECT r.*,
           ROW_NUMBER() OVER (
               PARTITION BY LOWER(TRIM(BOTH ' ' FROM r.email)), r.subscription_id, r.channel
               ORDER BY r.changed_at DESC, r.change_id DESC, r.sent_at DESC
           ) AS position
    FROM hubspot_consent_sync_results r
    WHERE r.outcome = 'SYNCED'
) accepted
WHERE position = 1;
