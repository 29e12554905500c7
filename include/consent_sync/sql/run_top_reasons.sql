-- A run's rows that did not sync, grouped by outcome and category, biggest first (its alert's
-- "top reasons"). Reads the run's own rows through the ledger's primary key.
SELECT outcome, error_category AS category, COUNT(*) AS row_count, MIN(email) AS example_email
FROM hubspot_consent_sync_results
WHERE dag_run_id = :dag_run_id AND outcome IN ('FAILED', 'REJECTED', 'DEFERRED', 'INVALID')
GROUP BY outcome, error_category
ORDER BY row_count DESC, outcome, category
LIMIT 5;
