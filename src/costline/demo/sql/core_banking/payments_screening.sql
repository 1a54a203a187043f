SELECT txn_id, account_id, customer_id, amount, country, merchant_id, payee_id
FROM `acme-dwh-prod.finance.transactions`
WHERE booking_date = '{d1}'
  AND txn_ts >= TIMESTAMP('{ts0}')
  AND ABS(amount) > {amt}
