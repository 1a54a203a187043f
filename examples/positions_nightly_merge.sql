-- positions_nightly_merge: apply the day's position changes
MERGE `acme-dwh-prod.risk.positions` AS t
USING (
  SELECT *
  FROM `acme-dwh-prod.risk_staging.positions_delta`
  WHERE load_date = '2026-08-03'
) AS s
ON t.portfolio_id = s.portfolio_id
  AND t.instrument_id = s.instrument_id
  AND t.as_of_date = s.as_of_date
WHEN MATCHED THEN UPDATE SET
    quantity = s.quantity,
    price = s.price,
    market_value = s.market_value,
    market_value_base = s.market_value_base,
    unrealised_pnl = s.unrealised_pnl,
    pnl_daily = s.pnl_daily,
    settlement_status = s.settlement_status,
    last_updated_ts = s.last_updated_ts,
    row_hash = s.row_hash
WHEN NOT MATCHED THEN
  INSERT (as_of_date, portfolio_id, instrument_id, quantity, price, market_value, market_value_base, last_updated_ts, row_hash)
  VALUES (s.as_of_date, s.portfolio_id, s.instrument_id, s.quantity, s.price, s.market_value, s.market_value_base, s.last_updated_ts, s.row_hash);

