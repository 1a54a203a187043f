DELETE FROM `acme-dwh-prod.finance.gl_balances`
WHERE balance_date = '{d1}'
