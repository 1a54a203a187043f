SELECT channel, category, COUNT(*) AS txns, SUM(amount) AS amount
FROM `acme-dwh-prod.finance.transactions`
WHERE CAST(booking_date AS STRING) = '{d1}'
GROUP BY channel, category
