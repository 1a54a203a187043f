CREATE OR REPLACE TABLE `acme-ds-sandbox.fraud.features` AS
SELECT customer_id, account_id,
  COUNT(*) AS txns_30d,
  AVG(ABS(amount)) AS avg_amount_30d,
  MAX(ABS(amount)) AS max_amount_30d,
  COUNTIF(is_new_payee) AS new_payees_30d,
  COUNT(DISTINCT country) AS countries_30d
FROM `acme-dwh-prod.finance.transactions`
WHERE booking_date BETWEEN '{d0}' AND '{d1}'
GROUP BY customer_id, account_id
