"""DuckDB storage: migrations, the Parquet outbox, merges and safe reads."""

from storage.db import StorageBusy, StorageError
from storage.outbox import MergeResult
from storage.read import QueryRefused
from storage.store import Storage
from storage.tables import TABLES

__all__ = ["TABLES", "MergeResult", "QueryRefused", "Storage", "StorageBusy", "StorageError"]
