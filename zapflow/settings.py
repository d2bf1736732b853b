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

__all__ = ["AppSettings", "IngestSettings", "StorageSettings", "ZaptecSettings"]

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


class IngestSettings(BaseSettings):
    """How the ingest flow reads the Service Bus subscription and keeps it alive."""

    model_config = SettingsConfigDict(
        env_prefix="ZAPFLOW_INGEST_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    batch_size: int = Field(100, ge=1, le=5000, description="Messages per receive (landed as one batch).")
    prefetch: int = Field(100, ge=0, description="Messages the SDK fetches ahead of a receive.")
    max_wait_s: float = Field(5.0, gt=0, description="How long one receive waits for a first message.")
    websocket: bool = Field(
        default=False, description="AMQP over WebSocket (port 443) instead of AMQPS on 5671."
    )
    backoff_initial_s: float = Field(1.0, gt=0, description="First reconnect wait; doubles per failure.")
    backoff_max_s: float = Field(300.0, gt=0, description="Longest reconnect wait.")
    healthy_after_s: float = Field(600.0, gt=0, description="A connection this old resets the backoff.")
    refresh_details_s: float = Field(
        86_400.0, gt=0, description="Reconnect with fresh connection details at least this often."
    )
    flush_every_s: float = Field(10.0, gt=0, description="How often received events are merged into DuckDB.")
    activity_every_s: float = Field(60.0, gt=0, description="How often subscription activity is recorded.")
    renew_after_s: float = Field(
        43_200.0, gt=0, description="The daily renewal receives when the subscription was unused this long."
    )
    renew_max_s: float = Field(120.0, gt=0, description="Longest renewal run (it drains what is waiting).")
    expiry_warning_s: float = Field(
        7 * 86_400.0,
        gt=0,
        description="Alert when a subscription was unused this long (Zaptec deletes at 14 days).",
    )
    silent_after_s: float = Field(
        3600.0, gt=0, description="Alert when no message arrived this long while chargers are online."
    )
    live_within_s: float = Field(
        180.0,
        gt=0,
        description="The balance flow trusts ingested state while ingest was active this recently.",
    )


class AppSettings(BaseSettings):
    """All settings of one zapflow process."""

    model_config = SettingsConfigDict(
        env_prefix="ZAPFLOW_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    zaptec: ZaptecSettings = Field(default_factory=ZaptecSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    sites_file: Path = Field(Path("sites.toml"), description="The sites file (see sites.example.toml).")
    meter_interval_s: float = Field(10.0, gt=0, description="How often the meter flow samples each site.")
    meter_flush_s: float = Field(60.0, gt=0, description="How often the meter flow queues its samples.")
    alert_webhook_url: SecretStr | None = Field(
        None, description="Receives zapflow's alerts (Prefect automations) as a JSON POST; may embed a token."
    )
