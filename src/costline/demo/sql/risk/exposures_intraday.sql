SELECT counterparty_id,
  SUM(ead_amount) AS ead,
  MAX(limit_utilisation) AS max_utilisation
FROM `acme-dwh-prod.risk.exposures`
WHERE as_of_date = '{d1}'
  AND counterparty_id IN ({in})
GROUP BY counterparty_id
