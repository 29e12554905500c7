-- The keys a reconcile checks: every key the pipeline ever sent (a full pass) or the keys one
-- sync run sent. "Sent" is any ledger row with a sent_at: a write was attempted, or the
-- resubscribe guard read HubSpot for it. One sync run's rows come through the ledger's primary
-- key (dag_run_id first); a full pass reads the ledger once, which is what it must read.
SELECT DISTINCT LOWER(TRIM(BOTH ' ' FROM r.email)) AS email, r.subscription_id, r.channel
FROM hubspot_consent_sync_results r
WHERE r.sent_at IS NOT NULL
  AND r.email IS NOT NULL AND r.subscription_id IS NOT NULL AND r.channel IS NOT NULL
  AND (:every_run OR r.dag_run_id = :sync_run_id)
ORDER BY 1, 2, 3;
