-- The reconciliation table and its drift view. Run on first use by every reconcile; safe to run
-- again. The view is replaced, never dropped (users build on it): new columns go at its end.
CREATE TABLE IF NOT EXISTS hubspot_consent_reconciliation (
    reconcile_run_id    TEXT NOT NULL,
    email               TEXT NOT NULL,
    subscription_id     BIGINT NOT NULL,
    channel             TEXT NOT NULL,
    intended_state      TEXT,
    intended_change_id  TEXT,
    synced_state        TEXT,
    synced_at           TIMESTAMP WITH TIME ZONE,
    hubspot_state       TEXT,
    hubspot_timestamp   TIMESTAMP WITH TIME ZONE,
    hubspot_source      TEXT,
    classification      TEXT NOT NULL,
    checked_at          TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (reconcile_run_id, email, subscription_id, channel)
);

CREATE INDEX IF NOT EXISTS hubspot_consent_reconciliation_key
    ON hubspot_consent_reconciliation (email, subscription_id, channel, checked_at);

-- Per key, its latest check when that is not MATCH, and since when the key has differed: the
-- first check after its last MATCH (or its first check ever).
CREATE OR REPLACE VIEW hubspot_consent_drift AS
SELECT reconcile_run_id, email, subscription_id, channel, intended_state, intended_change_id,
       synced_state, synced_at, hubspot_state, hubspot_timestamp, hubspot_source,
       classification, checked_at, differs_since
FROM (
    SELECT m.*,
           ROW_NUMBER() OVER (
               PARTITION BY email, subscription_id, channel
               ORDER BY checked_at DESC, reconcile_run_id DESC
           ) AS position,
           MIN(CASE WHEN last_match_at IS NULL OR checked_at > last_match_at THEN checked_at END)
               OVER (PARTITION BY email, subscription_id, channel) AS differs_since
    FROM (
        SELECT r.*,
               MAX(CASE WHEN classification = 'MATCH' THEN checked_at END)
                   OVER (PARTITION BY email, subscription_id, channel) AS last_match_at
        FROM hubspot_consent_reconciliation r
    ) m
) latest
WHERE position = 1 AND classification <> 'MATCH';
