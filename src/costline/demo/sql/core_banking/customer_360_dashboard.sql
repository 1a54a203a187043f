SELECT c.customer_id, c.risk_profile, a.account_type, a.balance
FROM `acme-dwh-prod.core_banking.customers` AS c
JOIN `acme-dwh-prod.core_banking.accounts` AS a ON a.customer_id = c.customer_id
WHERE c.customer_id = {id0}
