-- The ledger, the state kept beside it, and the audit views. Run on first use by every extract
-- and load; safe to run again. (Warehouse.ensure_ledger fills a new state table from the ledger
-- rows already there, so a ledger left by an earlier version is upgraded in place.)
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

-- One row per DAG run, whatever happened (0 changes, dry run, stopped by a gate, failed): the
-- counts written by load_results (record_run.sql) from the run's own ledger rows, the rest by the
-- run's last task (upsert_run_record.sql). The runs view reads it instead of the whole ledger.
CREATE TABLE IF NOT EXISTS hubspot_consent_sync_run_records (
    dag_run_id             TEXT PRIMARY KEY,
    interval_start         TIMESTAMP WITH TIME ZONE,
    interval_end           TIMESTAMP WITH TIME ZONE,
    changes                BIGINT,
    synced                 BIGINT,
    failed                 BIGINT,
    rejected               BIGINT,
    invalid                BIGINT,
    skipped_superseded     BIGINT,
    skipped_hubspot_newer  BIGINT,
    deferred               BIGINT,
    dry_run                BIGINT,
    started_at             TIMESTAMP WITH TIME ZONE,
    finished_at            TIMESTAMP WITH TIME ZONE
);

-- Facts the run's last task records (columns added later go at the end, here).
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS run_type TEXT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS state TEXT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS dry_run_param BOOLEAN;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS resync BOOLEAN;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS emails_count BIGINT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS failed_task TEXT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS failure_reason TEXT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS ui_url TEXT;
ALTER TABLE hubspot_consent_sync_run_records ADD COLUMN IF NOT EXISTS daily_limit_reached BOOLEAN;

-- Per key (normalised email, subscription, channel), what this pipeline got HubSpot to accept:
-- the latest SYNCED change and when it last sent the key anything / an UNSUBSCRIBED. Written by
-- load_results (record_key_state.sql) from the run's SYNCED rows, so a night looks up its own
-- keys instead of aggregating the whole ledger.
CREATE TABLE IF NOT EXISTS hubspot_consent_sync_key_state (
    key_email                  TEXT NOT NULL,
    subscription_id            BIGINT NOT NULL,
    channel                    TEXT NOT NULL,
    email                      TEXT,
    status_state               TEXT,
    legal_basis                TEXT,
    changed_at                 TIMESTAMP WITH TIME ZONE,
    change_id                  TEXT,
    dag_run_id                 TEXT,
    sent_at                    TIMESTAMP WITH TIME ZONE,
    set_status_success_reason  TEXT,
    last_sent_at               TIMESTAMP WITH TIME ZONE,
    last_unsubscribed_sent_at  TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (key_email, subscription_id, channel)
);

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
FROM hubspot_consent_sync_key_state;
