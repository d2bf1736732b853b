"""ChargerEvent: one state observation of one charger, from polling or from Service Bus."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

__all__ = ["NULL_CHARGER_ID", "ChargerEvent"]

NULL_CHARGER_ID = "00000000-0000-0000-0000-000000000000"
"""Zaptec sends this id on messages that belong to no charger; they are ignored."""


class ChargerEvent(BaseModel):
    """StateId/value observed by a charger at its own timestamp (UTC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    charger_id: str
    state_id: int
    observed_at: datetime
    value: str | None
    device_id: str | None = None
    device_type: int | None = None
