-- The ledger schema as the version before the run records and key state created it (a copy,
-- for the upgrade test).
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

CREATE OR REPLACE VIEW hubspot_consent_sync_runs AS
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
GROUP BY dag_run_id;

CREATE OR REPLACE VIEW hubspot_consent_sync_latest AS
SELECT email, subscription_id, channel, status_state, legal_basis, changed_at, change_id,
       dag_run_id, sent_at, set_status_success_reason
FROM (
    SELECT r.*,
           ROW_NUMBER() OVER (
               PARTITION BY LOWER(TRIM(r.email)), r.subscription_id, r.channel
               ORDER BY r.changed_at DESC, r.change_id DESC, r.sent_at DESC
           ) AS position
    FROM hubspot_consent_sync_results r
    WHERE r.outcome = 'SYNCED'
) accepted
WHERE position = 1;
