MERGE `acme-dwh-prod.core_banking.accounts` AS t
USING `acme-dwh-prod.core_banking_staging.accounts_cdc` AS s
ON t.account_id = s.account_id
WHEN MATCHED AND s.op = 'D' THEN DELETE
WHEN MATCHED THEN UPDATE SET t.updated = s.updated
WHEN NOT MATCHED THEN INSERT ROW
