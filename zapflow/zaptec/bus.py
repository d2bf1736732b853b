"""Zaptec's Service Bus messages: body bytes -> `ChargerEvent`, or a `MessageDecodeError` saying why.

A body is NBFX-wrapped or plain JSON (`nbfx.decode_message`) holding one observation:
`{DeviceId, DeviceType, ChargerId, StateId, Timestamp, ValueAsString}` (some publishers send
`Value` instead of `ValueAsString`). Everything else is a poison message: the caller quarantines
it with its raw bytes and the error, and the stream goes on.
"""

from __future__ import annotations

import pydantic

from zapflow.domain.events import NULL_CHARGER_ID, ChargerEvent
from zapflow.zaptec.errors import MessageDecodeError
from zapflow.zaptec.nbfx import decode_message
from zapflow.zaptec.wire import BusObservation

__all__ = ["event_from_body"]

_MAX_ERRORS = 3


def event_from_body(body: bytes) -> ChargerEvent:
    """The observation one Service Bus body carries (raises `MessageDecodeError`)."""
    payload = decode_message(body)
    try:
        item = BusObservation.model_validate(payload)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:_MAX_ERRORS]
        )
        msg = f"not a charger observation: {problems}"
        raise MessageDecodeError(msg, raw=body) from None
    charger_id = item.ChargerId.strip().lower()
    if not charger_id or charger_id == NULL_CHARGER_ID:
        msg = f"observation without a charger (ChargerId {item.ChargerId!r})"
        raise MessageDecodeError(msg, raw=body)
    return ChargerEvent(
        charger_id=charger_id,
        state_id=item.StateId,
        observed_at=item.Timestamp,
        value=item.ValueAsString if item.ValueAsString is not None else item.Value,
        device_id=item.DeviceId,
        device_type=item.DeviceType,
    )
