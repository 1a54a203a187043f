MERGE `acme-dwh-prod.risk.counterparties` AS t
USING `acme-dwh-prod.risk_staging.counterparties_cdc` AS s
ON t.counterparty_id = s.counterparty_id
WHEN MATCHED THEN UPDATE SET rating = s.rating, sector = s.sector, updated_ts = s.updated_ts
WHEN NOT MATCHED THEN INSERT ROW
