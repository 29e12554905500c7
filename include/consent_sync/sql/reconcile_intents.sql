-- Per key of the session's reconcile_key_filter: the warehouse's latest change (the intent), the
-- outcome of its latest ledger row, and the latest change this pipeline SYNCED for the key (what
-- we wrote, with the sent_at of its latest write). Only the keys' own changes are read: the
-- source by key, the ledger by change_id (its index), never an aggregate over the history.
-- NULLS LAST is explicit because the engines' default null order for DESC differs.
WITH key_changes AS (
    SELECT k.email AS key_email, k.subscription_id, k.channel, c.change_id, c.status_state,
           c.changed_at
    FROM reconcile_key_filter k
    JOIN consent_changes c
      ON LOWER(TRIM(BOTH ' ' FROM c.email)) = k.email
     AND c.subscription_id = k.subscription_id
     AND c.channel = k.channel
),
latest AS (
    SELECT key_email, subscription_id, channel, change_id, status_state
    FROM (
        SELECT kc.*,
               ROW_NUMBER() OVER (
                   PARTITION BY kc.key_email, kc.subscription_id, kc.channel
                   ORDER BY kc.changed_at DESC NULLS LAST, kc.change_id DESC
               ) AS position
        FROM key_changes kc
    ) ranked
    WHERE position = 1
),
latest_outcome AS (
    SELECT change_id, outcome
    FROM (
        SELECT r.change_id, r.outcome,
               ROW_NUMBER() OVER (
                   PARTITION BY r.change_id ORDER BY r.recorded_at DESC, r.dag_run_id DESC
               ) AS position
        FROM hubspot_consent_sync_results r
        WHERE r.change_id IN (SELECT change_id FROM latest)
    ) ranked
    WHERE position = 1
),
written AS (
    SELECT key_email, subscription_id, channel, change_id, status_state, sent_at
    FROM (
        SELECT kc.key_email, kc.subscription_id, kc.channel, kc.change_id, kc.status_state,
               r.sent_at,
               ROW_NUMBER() OVER (
                   PARTITION BY kc.key_email, kc.subscription_id, kc.channel
                   ORDER BY kc.changed_at DESC NULLS LAST, kc.change_id DESC,
                            r.sent_at DESC NULLS LAST
               ) AS position
        FROM key_changes kc
        JOIN hubspot_consent_sync_results r ON r.change_id = kc.change_id
        WHERE r.outcome = 'SYNCED'
    ) ranked
    WHERE position = 1
)
SELECT k.email, k.subscription_id, k.channel,
       l.status_state AS intended_state, l.change_id AS intended_change_id,
       o.outcome AS intended_outcome,
       w.change_id AS synced_change_id, w.status_state AS synced_state, w.sent_at AS synced_at
FROM reconcile_key_filter k
LEFT JOIN latest l
       ON l.key_email = k.email AND l.subscription_id = k.subscription_id AND l.channel = k.channel
LEFT JOIN latest_outcome o ON o.change_id = l.change_id
LEFT JOIN written w
       ON w.key_email = k.email AND w.subscription_id = k.subscription_id AND w.channel = k.channel
ORDER BY k.email, k.subscription_id, k.channel;
