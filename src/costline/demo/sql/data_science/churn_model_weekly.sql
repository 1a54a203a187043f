CREATE OR REPLACE TABLE `acme-ds-sandbox.churn.training` AS
SELECT c.customer_id, c.segment, c.risk_profile, COUNT(t.txn_id) AS txns,
  SUM(t.amount) AS net_flow
FROM `acme-dwh-prod.core_banking.customers` AS c
LEFT JOIN `acme-dwh-prod.finance.transactions` AS t
  ON t.customer_id = c.customer_id
  AND t.booking_date BETWEEN '{d0}' AND '{d1}'
GROUP BY c.customer_id, c.segment, c.risk_profile
