-- The source table's columns and their types, for the schema contract gate.
-- PostgreSQL reports a NUMERIC column's precision and scale apart (DuckDB spells DECIMAL(p,s)):
-- put them back, so that NUMERIC(18,0) passes as an integer on both engines.
SELECT column_name,
       CASE
           WHEN LOWER(data_type) = 'numeric' AND numeric_precision IS NOT NULL
               THEN data_type || '(' || CAST(numeric_precision AS TEXT) || ','
                    || CAST(COALESCE(numeric_scale, 0) AS TEXT) || ')'
           ELSE data_type
       END AS data_type
FROM information_schema.columns
WHERE table_name = :table_name AND table_schema = CURRENT_SCHEMA()
ORDER BY ordinal_position;
