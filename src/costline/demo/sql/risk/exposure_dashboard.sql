SELECT *
FROM `acme-dwh-prod.risk.exposures`
WHERE as_of_date >= '{d0}'
