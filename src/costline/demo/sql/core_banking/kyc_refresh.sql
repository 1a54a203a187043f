CREATE OR REPLACE TABLE `acme-dwh-prod.core_banking.kyc_summary` AS
SELECT c.tenant_id, c.kyc_status, a.account_type, COUNT(*) AS accounts,
  SUM(a.balance) AS balance
FROM `acme-dwh-prod.core_banking.customers` AS c
JOIN `acme-dwh-prod.core_banking.accounts` AS a USING (customer_id)
GROUP BY c.tenant_id, c.kyc_status, a.account_type
