-- positions_eod_snapshot
SELECT desk, legal_entity, currency,
  SUM(market_value_base) AS market_value_base,
  SUM(pnl_daily) AS pnl_daily
FROM `acme-dwh-prod.risk.positions`
WHERE FORMAT_DATE('%Y%m%d', as_of_date) = '{d1c}'
GROUP BY desk, legal_entity, currency
