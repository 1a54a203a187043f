-- The reservations' minute-by-minute allocation over the same 90 days, for
-- `costline profile --reservations-timeline`: run in the reservations' administration project.
-- Replace BUCKET, and `region-us` with the reservations' region.
EXPORT DATA OPTIONS (
  uri = 'gs://BUCKET/costline/reservations-timeline-*.parquet',
  format = 'PARQUET',
  overwrite = true
) AS
SELECT
  period_start, project_id, reservation_id, reservation_name, edition, slots_assigned,
  autoscale, per_second_details
FROM `region-us`.INFORMATION_SCHEMA.RESERVATIONS_TIMELINE
WHERE period_start >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 90 DAY);
