SELECT t.txn_id, t.amount, t.country, t.channel, t.is_new_payee,
  f.avg_amount_30d, f.max_amount_30d
FROM `acme-dwh-prod.finance.transactions` AS t
JOIN `acme-ds-sandbox.fraud.features` AS f USING (customer_id, account_id)
WHERE t.booking_date = '{d1}'
  AND t.txn_ts >= TIMESTAMP('{ts0}')
