-- regulatory_extract_daily: quarter-to-date lines for one report
SELECT report_code, entity_id, report_line, counterparty_id, exposure_class,
  country, currency, amount, amount_reporting_ccy, risk_weight, rwa, row_text
FROM `acme-dwh-prod.regulatory.regulatory_reports`
WHERE report_date BETWEEN '{d0}' AND '{d1}'
  AND report_code = '{s0}'
ORDER BY entity_id, report_line, counterparty_id
