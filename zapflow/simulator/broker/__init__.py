"""A local AMQP 1.0 broker with Azure Service Bus topic-subscription semantics.

The real `azure-servicebus` client connects to it with `connection_string(...)` over plain TCP.
"""

from __future__ import annotations

from zapflow.simulator.broker.core import Broker, BrokerConfig, EntityStats
from zapflow.simulator.broker.sas import connection_string
from zapflow.simulator.broker.serve import attach_broker
from zapflow.simulator.broker.sink import BrokerEventSink, PublishFaults, encode_nbfx

__all__ = [
    "Broker",
    "BrokerConfig",
    "BrokerEventSink",
    "EntityStats",
    "PublishFaults",
    "attach_broker",
    "connection_string",
    "encode_nbfx",
]
