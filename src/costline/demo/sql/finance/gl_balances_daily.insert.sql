INSERT INTO `acme-dwh-prod.finance.gl_balances` (balance_date, entity_id, gl_account, cost_centre, currency, debits, credits)
SELECT entry_date, legal_entity, gl_account, cost_centre, currency,
  SUM(IF(debit_credit = 'D', amount, 0)),
  SUM(IF(debit_credit = 'C', amount, 0))
FROM `acme-dwh-prod.finance.ledger_entries`
WHERE entry_date = '{d1}'
GROUP BY entry_date, legal_entity, gl_account, cost_centre, currency
