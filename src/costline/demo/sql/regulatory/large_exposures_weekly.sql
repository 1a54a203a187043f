SELECT counterparty_id, SUM(ead_amount) AS ead
FROM `acme-dwh-prod.risk.exposures`
WHERE as_of_date = '{d1}'
GROUP BY counterparty_id
HAVING SUM(ead_amount) > {amt}
ORDER BY ead DESC
LIMIT 500
