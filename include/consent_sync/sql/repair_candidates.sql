-- A repair run (triggered by hubspot_consent_reconcile with repair): the latest change of exactly
-- the keys one reconcile run found DRIFT or MISSING, sent again although already SYNCED (HubSpot
-- lost or overwrote it), whatever its age. HUBSPOT_NEWER keys are never among them, and the
-- resubscribe guard still applies. A re-run of the repair run reconsiders only what it left
-- unfinished. The columns are candidates.sql's; only the repaired keys' changes are read.
WITH repair_keys AS (
    SELECT DISTINCT email AS key_email, subscription_id, channel
    FROM hubspot_consent_reconciliation
    WHERE reconcile_run_id = :repair_run_id AND classification IN ('DRIFT', 'MISSING')
),
key_changes AS (
    SELECT c.change_id, c.email, c.subscription_id, c.channel, c.status_state, c.legal_basis,
           c.legal_basis_explanation, c.changed_at, k.key_email,
           ROW_NUMBER() OVER (
               PARTITION BY k.key_email, k.subscription_id, k.channel
               ORDER BY c.changed_at DESC NULLS LAST, c.change_id DESC
           ) AS position
    FROM repair_keys k
    JOIN consent_changes c
      ON LOWER(TRIM(BOTH ' ' FROM c.email)) = k.key_email
     AND c.subscription_id = k.subscription_id
     AND c.channel = k.channel
),
ledger_rows AS (
    SELECT r.change_id, r.dag_run_id, r.outcome, r.sent_at
    FROM hubspot_consent_sync_results r
    WHERE r.change_id IN (SELECT change_id FROM key_changes)
),
synced AS (
    SELECT kc.key_email, kc.subscription_id, kc.channel,
           MAX(kc.changed_at) AS key_synced_changed_at,
           CASE
               WHEN MAX(CASE WHEN kc.status_state = 'UNSUBSCRIBED' THEN r.sent_at END) = MAX(r.sent_at)
               THEN MAX(r.sent_at)
           END AS key_sent_unsubscribed_at
    FROM key_changes kc
    JOIN ledger_rows r ON r.change_id = kc.change_id
    WHERE r.outcome = 'SYNCED'
    GROUP BY kc.key_email, kc.subscription_id, kc.channel
)
SELECT l.change_id, l.email, l.subscription_id, l.channel, l.status_state, l.legal_basis,
       l.legal_basis_explanation, l.changed_at,
       l.change_id AS key_latest_change_id,
       (SELECT COUNT(DISTINCT f.dag_run_id)
          FROM ledger_rows f
         WHERE f.change_id = l.change_id AND f.outcome = 'FAILED' AND f.dag_run_id <> :dag_run_id
       ) AS failed_runs,
       y.key_synced_changed_at, y.key_sent_unsubscribed_at
FROM key_changes l
LEFT JOIN synced y
       ON y.key_email = l.key_email AND y.subscription_id = l.subscription_id
      AND y.channel = l.channel
WHERE l.position = 1
  AND NOT EXISTS (
        SELECT 1 FROM ledger_rows x
        WHERE x.change_id = l.change_id AND x.dag_run_id = :dag_run_id
          AND x.outcome IN ('SYNCED', 'REJECTED', 'INVALID', 'SKIPPED_SUPERSEDED', 'SKIPPED_HUBSPOT_NEWER')
      )
ORDER BY l.changed_at, l.change_id;
