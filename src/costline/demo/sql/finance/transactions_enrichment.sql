MERGE `acme-dwh-prod.finance.transactions` AS t
USING `acme-dwh-prod.finance_staging.merchant_enrichment` AS s
ON t.booking_date = '{d1}'
  AND t.txn_id = s.txn_id
WHEN MATCHED THEN UPDATE SET category = s.category, mcc = s.mcc
