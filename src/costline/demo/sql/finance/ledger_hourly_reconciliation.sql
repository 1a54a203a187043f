-- ledger_hourly_reconciliation: unreconciled postings since the hour started
SELECT legal_entity, gl_account, cost_centre, currency, debit_credit, source_system,
  SUM(amount) AS amount,
  SUM(amount_base) AS amount_base,
  COUNT(*) AS entries
FROM `acme-dwh-prod.finance.ledger_entries`
WHERE posting_ts >= TIMESTAMP('{ts0}')
  AND reconciled = FALSE
GROUP BY legal_entity, gl_account, cost_centre, currency, debit_credit, source_system
