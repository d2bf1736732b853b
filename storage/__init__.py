"""DuckDB storage: migrations, the Parquet outbox, merges and safe reads."""
