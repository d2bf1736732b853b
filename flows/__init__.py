"""Prefect flows: orchestration only (balance, meter, ingest, backtest), one module each."""
