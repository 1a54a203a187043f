SELECT portfolio_id,
  SUM(notional) AS notional,
  SUM(market_value_base) AS market_value
FROM `acme-dwh-prod.risk.positions`
WHERE as_of_date = '{d1}'
GROUP BY portfolio_id
HAVING SUM(notional) > {amt}
