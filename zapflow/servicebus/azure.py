"""The azure-servicebus SDK behind the `EventSource` seam (the only module that imports it).

Connection details become a connection string: `UseSSL` true is AMQPS to the namespace as in
production; false is plain AMQP to `host:port` (how the local broker is reached; the SDK calls
that the development emulator). SDK exceptions are translated here into `SourceUnavailable`
(reconnect) or `SourceRejected` (stop), with the key redacted from every message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError
from azure.servicebus import ServiceBusClient, ServiceBusMessageState, ServiceBusReceiveMode, TransportType
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import (
    MessagingEntityDisabledError,
    MessagingEntityNotFoundError,
    ServiceBusAuthorizationError,
)

from zapflow.domain.models import ConnectionDetails
from zapflow.servicebus.source import ReceivedMessage, SourceRejected, SourceUnavailable, subscription_key

__all__ = ["AzureEventSource", "AzureOptions", "connection_string", "message_body"]

log = logging.getLogger("zapflow.servicebus")
_SAS_KEY = re.compile(r"(?i)(SharedAccessKey=)[^;\s]+")
_AMQPS_PORT = 5671


@dataclass(frozen=True)
class AzureOptions:
    """How the SDK client is built."""

    prefetch: int = 100
    websocket: bool = False
    """AMQP over WebSocket (port 443) for firewalls that block 5671."""
    sdk_retries: int = 2
    """The SDK's own retries per operation; the consumer's reconnect loop does the rest."""


def connection_string(details: ConnectionDetails) -> str:
    """The SDK connection string for `details` (contains the key: never log it)."""
    key = details.password.get_secret_value()
    auth = f"SharedAccessKeyName={details.username};SharedAccessKey={key}"
    if details.use_ssl:
        if details.port not in (0, _AMQPS_PORT):
            log.info("service bus: port %d ignored, AMQPS uses %d", details.port, _AMQPS_PORT)
        return f"Endpoint=sb://{details.host}/;{auth}"
    return f"Endpoint=sb://{details.host}:{details.port};{auth};UseDevelopmentEmulator=true"


class AzureEventSource:
    """A peek-lock subscription receiver of the real SDK."""

    def __init__(self, details: ConnectionDetails, options: AzureOptions | None = None) -> None:
        self.options = options or AzureOptions()
        self.key = subscription_key(details)
        self._secret = details.password.get_secret_value()
        transport = TransportType.AmqpOverWebsocket if self.options.websocket else TransportType.Amqp
        with self._translated("connect"):
            self._client = ServiceBusClient.from_connection_string(
                connection_string(details),
                retry_total=self.options.sdk_retries,
                retry_backoff_factor=0.5,
                retry_backoff_max=5,
                transport_type=transport,
                # Our receive loop services the connection every `max_wait_s`; the SDK's keep-alive
                # thread would only add a 1 s join to every close.
                keep_alive=0,
            )
            self._receiver = self._client.get_subscription_receiver(
                details.topic,
                details.subscription,
                receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
                prefetch_count=self.options.prefetch,
                keep_alive=0,
            )
            # Open the link now, under the SDK's own timeouts: a short receive wait must not have to
            # cover the link's set-up, and a missing subscription shows up at connect time.
            self._receiver.__enter__()

    def __repr__(self) -> str:
        return f"AzureEventSource({self.key!r})"

    def receive(self, max_messages: int, max_wait_s: float) -> list[ReceivedMessage]:
        """Up to `max_messages` peek-locked messages."""
        with self._translated("receive"):
            messages = self._receiver.receive_messages(
                max_message_count=max_messages, max_wait_time=max_wait_s
            )
        return [
            ReceivedMessage(
                body=message_body(m),
                sequence_number=m.sequence_number,
                message_id=m.message_id,
                enqueued_at=m.enqueued_time_utc,
                delivery_count=m.delivery_count or 0,
                handle=m,
            )
            for m in messages
        ]

    def complete(self, messages: Sequence[ReceivedMessage]) -> None:
        """Complete each message (one disposition round trip each, as the SDK does)."""
        with self._translated("complete"):
            for m in messages:
                self._receiver.complete_message(m.handle)  # type: ignore[arg-type]

    def abandon(self, messages: Sequence[ReceivedMessage]) -> None:
        """Abandon each still-locked message (redelivered with delivery count + 1)."""
        with self._translated("abandon"):
            for m in messages:
                if getattr(m.handle, "state", None) == ServiceBusMessageState.ACTIVE:
                    self._receiver.abandon_message(m.handle)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close receiver and client; errors on close are logged only (the link is gone anyway)."""
        for closer in (self._receiver.close, self._client.close):
            try:
                closer()
            except (AzureError, OSError) as exc:
                log.debug("service bus: close: %s", self._redact(str(exc)))

    def _redact(self, text: str) -> str:
        text = _SAS_KEY.sub(r"\1<redacted>", text)
        return text.replace(self._secret, "<redacted>") if self._secret else text

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """SDK failures as `SourceRejected` (permanent) or `SourceUnavailable` (reconnect)."""
        try:
            yield
        except (MessagingEntityNotFoundError, MessagingEntityDisabledError) as exc:
            msg = (
                f"subscription {self.key} does not exist or is disabled ({type(exc).__name__}): "
                "Zaptec deletes a subscription after 14 days without use; re-activate it "
                "(portal or Zaptec support)"
            )
            raise SourceRejected(msg) from None
        except ServiceBusAuthorizationError as exc:
            msg = f"{what} on {self.key}: not authorised to listen: {self._redact(str(exc))}"
            raise SourceRejected(msg) from None
        except (AzureError, OSError, ValueError) as exc:
            msg = f"{what} on {self.key}: {type(exc).__name__}: {self._redact(str(exc))}"
            raise SourceUnavailable(msg) from None


def message_body(message: Any) -> bytes:  # noqa: ANN401 - the SDK's message type
    """The body bytes: data sections joined; a value body (some publishers) as its text or JSON."""
    body_type = message.body_type
    if body_type == AmqpMessageBodyType.DATA:
        return b"".join(message.body)
    value = message.body
    if body_type == AmqpMessageBodyType.SEQUENCE:
        value = list(value)  # a generator of lists; materialised so it reaches the quarantine as JSON
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, default=str).encode()
