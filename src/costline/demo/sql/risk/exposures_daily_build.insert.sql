INSERT INTO `acme-dwh-prod.risk.exposures` (as_of_date, exposure_id, counterparty_id, legal_entity, currency, ead_amount, rwa_amount)
SELECT p.as_of_date, FARM_FINGERPRINT(CONCAT(p.portfolio_id, CAST(p.instrument_id AS STRING))), c.counterparty_id, p.legal_entity, p.currency,
  SUM(p.notional), SUM(p.notional) * 0.35
FROM `acme-dwh-prod.risk.positions` AS p
JOIN `acme-dwh-prod.risk.counterparties` AS c
  ON c.counterparty_id = MOD(p.instrument_id, 1200000)
WHERE p.as_of_date = '{d1}'
GROUP BY 1, 2, 3, 4, 5
