select account_id, customer_id, balance, overdraft_limit
from `acme-dwh-prod.core_banking.accounts`
where balance < -overdraft_limit - {amt}
