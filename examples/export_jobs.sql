-- The last 90 days of a project's job history, as the files costline reads: newline-delimited
-- JSON in Cloud Storage (INT64 written as strings, nested fields kept). Replace BUCKET, and
-- `region-us` with your jobs' region; format = 'PARQUET' with a .parquet URI works the same.
-- Run it with: bq query --nouse_legacy_sql "$(cat export_jobs.sql)"
EXPORT DATA OPTIONS (
  uri = 'gs://BUCKET/costline/jobs-*.json',
  format = 'JSON',
  overwrite = true
) AS
SELECT
  job_id, creation_time, start_time, end_time, project_id, user_email, job_type,
  statement_type, priority, query, state, cache_hit, total_bytes_processed,
  total_bytes_billed, total_slot_ms, reservation_id, edition, parent_job_id, labels,
  referenced_tables, destination_table, error_result, query_info
FROM `region-us`.INFORMATION_SCHEMA.JOBS_BY_PROJECT
WHERE creation_time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 90 DAY);
