DELETE FROM `acme-dwh-prod.regulatory.regulatory_reports`
WHERE report_date = '{d1}'
