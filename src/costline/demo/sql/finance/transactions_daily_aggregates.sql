INSERT INTO `acme-dwh-prod.finance.daily_spend` (booking_date, tenant_id, category, channel, txns, amount)
SELECT booking_date, tenant_id, category, channel, COUNT(*), SUM(amount)
FROM `acme-dwh-prod.finance.transactions`
WHERE booking_date = '{d1}'
GROUP BY booking_date, tenant_id, category, channel
