CREATE OR REPLACE TABLE `acme-dwh-prod.finance.fx_close` AS
SELECT currency_pair,
  ARRAY_AGG(mid ORDER BY rate_ts DESC LIMIT 1)[OFFSET(0)] AS close_mid
FROM `acme-dwh-prod.finance.fx_rates`
WHERE _PARTITIONTIME = TIMESTAMP('{d1}')
GROUP BY currency_pair
