-- One run's ledger rows: their change ids and outcomes.
SELECT change_id, outcome
FROM hubspot_consent_sync_results
WHERE dag_run_id = :dag_run_id;
