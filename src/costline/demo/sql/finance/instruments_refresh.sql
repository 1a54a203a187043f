MERGE `acme-dwh-prod.finance.instruments` AS t
USING `acme-dwh-prod.finance_staging.instruments_feed` AS s
ON t.instrument_id = s.instrument_id
WHEN MATCHED THEN UPDATE SET rating = s.rating, is_active = s.is_active
WHEN NOT MATCHED THEN INSERT ROW
