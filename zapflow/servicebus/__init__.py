"""The Service Bus adapter: a receive loop over an `EventSource`, handing batches to an `EventSink`.

Only `zapflow.servicebus.azure` imports the azure-servicebus SDK; everything else sees the
`EventSource` protocol, so the loop is tested with an in-memory source and, end to end, with the
real client against the local broker.
"""

from zapflow.servicebus.consumer import Consumer, ConsumerOptions, ConsumerStats
from zapflow.servicebus.source import (
    EventSink,
    EventSource,
    ReceivedMessage,
    SourceError,
    SourceRejected,
    SourceUnavailable,
    subscription_key,
)

__all__ = [
    "Consumer",
    "ConsumerOptions",
    "ConsumerStats",
    "EventSink",
    "EventSource",
    "ReceivedMessage",
    "SourceError",
    "SourceRejected",
    "SourceUnavailable",
    "subscription_key",
]
