-- The ledger's indexes that a load at least as large as the ledger drops and builds again
-- (PostgresWarehouse): every valid index not behind a constraint (the primary key stays), the
-- user's own included, each with its schema-qualified name and its definition.
SELECT QUOTE_IDENT(n.nspname) || '.' || QUOTE_IDENT(i.relname) AS index_name,
       PG_GET_INDEXDEF(i.oid) AS definition
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE x.indrelid = CAST(:table_name AS REGCLASS) AND x.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
ORDER BY i.relname;
