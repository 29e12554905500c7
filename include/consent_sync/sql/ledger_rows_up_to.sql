-- How many rows the ledger holds, counting no further than :limit (a bounded scan: the answer
-- only has to say whether a load is at least as large as the ledger).
SELECT COUNT(*) AS row_count
FROM (SELECT 1 FROM hubspot_consent_sync_results LIMIT :limit) AS counted;
