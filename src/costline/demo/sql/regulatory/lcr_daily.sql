CREATE OR REPLACE TABLE `acme-dwh-prod.regulatory.lcr_daily` AS
SELECT entity_id, currency, SUM(closing_balance) AS hqla
FROM `acme-dwh-prod.finance.gl_balances`
WHERE balance_date = '{d1}'
  AND gl_account LIKE '1%'
GROUP BY entity_id, currency
