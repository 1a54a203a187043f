SELECT entity_id, currency, SUM(closing_balance) AS balance
FROM `acme-dwh-prod.finance.gl_balances`
WHERE balance_date = '{d1}'
  AND entity_id IN ({in})
GROUP BY entity_id, currency
