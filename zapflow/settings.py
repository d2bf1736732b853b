"""Typed settings, built once at start-up and passed down (pydantic-settings).

Every variable is prefixed `ZAPFLOW_`; nested areas use their own prefix (`ZAPFLOW_ZAPTEC_...`).
Values come from the environment or a `.env` file in the working directory (`.env.example` lists
the names). Credentials are `SecretStr`: they never print.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zapflow import __version__

__all__ = ["AppSettings", "StorageSettings", "ZaptecSettings"]

ZAPTEC_CLOUD_URL = "https://api.zaptec.com"


class ZaptecSettings(BaseSettings):
    """How to reach the Zaptec cloud (or the embedded simulator) and how politely."""

    model_config = SettingsConfigDict(
        env_prefix="ZAPFLOW_ZAPTEC_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    base_url: str = Field(
        ZAPTEC_CLOUD_URL, description="API root; the real cloud, or the embedded simulator's URL."
    )
    username: str | None = Field(None, description="Zaptec portal e-mail (Owner or Service role).")
    password: SecretStr | None = Field(None, description="Zaptec portal password.")
    password_block: str | None = Field(
        None, description="Name of a Prefect Secret block holding the password (instead of `password`)."
    )
    user_group_id: str | None = Field(
        None, description="User group whose Service Bus subscription the ingest flow reads."
    )
    timeout_s: float = Field(10.0, gt=0, description="Read/write timeout per request.")
    connect_timeout_s: float = Field(5.0, gt=0, description="TCP/TLS connect timeout per request.")
    rate_limit_per_s: float = Field(10.0, gt=0, description="Client-side requests/s per account.")
    rate_limit_burst: int = Field(15, ge=1, description="Client-side burst per account.")
    retry_attempts: int = Field(6, ge=1, description="Attempts per request, the first included.")
    retry_max_total_s: float = Field(60.0, ge=0, description="Time budget for one request's retries.")
    token_refresh_margin_s: float = Field(
        300.0, ge=0, description="Log in again this long before the token expires."
    )
    login_min_interval_s: float = Field(
        1.1, ge=0, description="Minimum spacing of logins (the token endpoint allows ~1/s)."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            msg = f"base_url must start with http:// or https:// (got {value!r})"
            raise ValueError(msg)
        return value.rstrip("/")

    @property
    def user_agent(self) -> str:
        """The descriptive User-Agent Zaptec's fair-use policy asks for."""
        return f"zapflow/{__version__} (+https://pypi.org/project/zapflow/)"

    @property
    def account_key(self) -> str:
        """Identifies one account: the unit of Zaptec's rate limit and of token sharing."""
        return f"{self.base_url}|{(self.username or '').lower()}"


class StorageSettings(BaseSettings):
    """Where the DuckDB database and its Parquet outbox live, and how long to wait for the lock."""

    model_config = SettingsConfigDict(
        env_prefix="ZAPFLOW_STORAGE_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    data_dir: Path = Field(Path("data"), description="Holds zapflow.duckdb and outbox/ (created if missing).")
    merge_lock_timeout_s: float = Field(10.0, ge=0, description="How long a merge waits for the file lock.")
    read_lock_timeout_s: float = Field(10.0, ge=0, description="How long a read waits for the file lock.")

    @property
    def db_path(self) -> Path:
        """The DuckDB file."""
        return self.data_dir / "zapflow.duckdb"

    @property
    def outbox_dir(self) -> Path:
        """Pending Parquet batches, one folder per table."""
        return self.data_dir / "outbox"


class AppSettings(BaseSettings):
    """All settings of one zapflow process."""

    model_config = SettingsConfigDict(
        env_prefix="ZAPFLOW_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    zaptec: ZaptecSettings = Field(default_factory=ZaptecSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    sites_file: Path = Field(Path("sites.toml"), description="The sites file (see sites.example.toml).")
    meter_interval_s: float = Field(10.0, gt=0, description="How often the meter flow samples each site.")
    meter_flush_s: float = Field(60.0, gt=0, description="How often the meter flow queues its samples.")
    alert_webhook_url: SecretStr | None = Field(
        None, description="Receives zapflow's alerts (Prefect automations) as a JSON POST; may embed a token."
    )
