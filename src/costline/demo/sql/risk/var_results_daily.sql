CREATE OR REPLACE TABLE `acme-dwh-prod.risk.var_results` AS
SELECT portfolio_id, desk, SUM(var_contribution) AS var_99,
  SUM(delta) AS delta, SUM(vega) AS vega
FROM `acme-dwh-prod.risk.positions`
WHERE as_of_date BETWEEN '{d0}' AND '{d1}'
GROUP BY portfolio_id, desk
