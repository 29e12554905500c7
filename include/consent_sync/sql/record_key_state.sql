-- Fold a run's SYNCED rows (or, when :dag_run_id is NULL, every SYNCED row: the upgrade of a
-- ledger from before the table existed) into hubspot_consent_sync_key_state. Each touched key's
-- new state is computed from its current state and the new rows together, so recording the
-- same run again changes nothing. The latest SYNCED change is the one with the newest
-- changed_at, then change_id, then sent_at (NULLS LAST: the engines' defaults differ).
INSERT INTO hubspot_consent_sync_key_state (
    key_email, subscription_id, channel, email, status_state, legal_basis, changed_at, change_id,
    dag_run_id, sent_at, set_status_success_reason, last_sent_at, last_unsubscribed_sent_at
)
WITH synced AS (
    SELECT LOWER(TRIM(BOTH ' ' FROM r.email)) AS key_email, r.subscription_id, r.channel, r.email,
           r.status_state, r.legal_basis, r.changed_at, r.change_id, r.dag_run_id, r.sent_at,
           r.set_status_success_reason, r.sent_at AS last_sent_at,
           CASE WHEN r.status_state = 'UNSUBSCRIBED' THEN r.sent_at END
               AS last_unsubscribed_sent_at
    FROM hubspot_consent_sync_results r
    WHERE r.outcome = 'SYNCED'
      AND (CAST(:dag_run_id AS TEXT) IS NULL OR r.dag_run_id = :dag_run_id)
      AND r.email IS NOT NULL AND r.subscription_id IS NOT NULL AND r.channel IS NOT NULL
),
facts AS (
    SELECT * FROM synced
    UNION ALL
    SELECT k.key_email, k.subscription_id, k.channel, k.email, k.status_state, k.legal_basis,
           k.changed_at, k.change_id, k.dag_run_id, k.sent_at, k.set_status_success_reason,
           k.last_sent_at, k.last_unsubscribed_sent_at
    FROM hubspot_consent_sync_key_state k
    JOIN (SELECT DISTINCT key_email, subscription_id, channel FROM synced) touched
      ON touched.key_email = k.key_email AND touched.subscription_id = k.subscription_id
     AND touched.channel = k.channel
),
ranked AS (
    SELECT f.*,
           MAX(f.last_sent_at) OVER (PARTITION BY f.key_email, f.subscription_id, f.channel)
               AS key_last_sent_at,
           MAX(f.last_unsubscribed_sent_at) OVER (
               PARTITION BY f.key_email, f.subscription_id, f.channel
           ) AS key_last_unsubscribed_sent_at,
           ROW_NUMBER() OVER (
               PARTITION BY f.key_email, f.subscription_id, f.channel
               ORDER BY f.changed_at DESC NULLS LAST, f.change_id DESC NULLS LAST,
                        f.sent_at DESC NULLS LAST
           ) AS position
    FROM facts f
)
SELECT key_email, subscription_id, channel, email, status_state, legal_basis, changed_at,
       change_id, dag_run_id, sent_at, set_status_success_reason, key_last_sent_at,
       key_last_unsubscribed_sent_at
FROM ranked
WHERE position = 1
ON CONFLICT (key_email, subscription_id, channel) DO UPDATE SET
    email = EXCLUDED.email,
    status_state = EXCLUDED.status_state,
    legal_basis = EXCLUDED.legal_basis,
    changed_at = EXCLUDED.changed_at,
    change_id = EXCLUDED.change_id,
    dag_run_id = EXCLUDED.dag_run_id,
    sent_at = EXCLUDED.sent_at,
    set_status_success_reason = EXCLUDED.set_status_success_reason,
    last_sent_at = EXCLUDED.last_sent_at,
    last_unsubscribed_sent_at = EXCLUDED.last_unsubscribed_sent_at;
