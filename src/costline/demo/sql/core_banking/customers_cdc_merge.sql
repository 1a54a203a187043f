MERGE `acme-dwh-prod.core_banking.customers` AS t
USING `acme-dwh-prod.core_banking_staging.customers_cdc` AS s
ON t.customer_id = s.customer_id
WHEN MATCHED AND s.op = 'D' THEN DELETE
WHEN MATCHED THEN UPDATE SET t.updated = s.updated
WHEN NOT MATCHED THEN INSERT ROW
