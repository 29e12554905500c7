-- One run's ledger rows.
SELECT *
FROM hubspot_consent_sync_results
WHERE dag_run_id = :dag_run_id;
