INSERT INTO `acme-dwh-prod.regulatory.regulatory_reports` (report_date, report_code, entity_id, report_line, counterparty_id, exposure_class, country, currency, amount, rwa)
SELECT as_of_date, 'COREP_C07', legal_entity, product_type, counterparty_id,
  sector, country, currency, ead_amount, rwa_amount
FROM `acme-dwh-prod.risk.exposures`
WHERE as_of_date = '{d1}'
