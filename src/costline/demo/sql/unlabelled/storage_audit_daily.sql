SELECT table_schema, table_name, total_logical_bytes, active_logical_bytes,
  long_term_logical_bytes
FROM `region-us`.INFORMATION_SCHEMA.TABLE_STORAGE
WHERE total_logical_bytes > {amt}
ORDER BY total_logical_bytes DESC
