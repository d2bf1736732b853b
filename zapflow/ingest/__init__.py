"""The ingest use case: Service Bus observations into DuckDB, and the subscription kept alive."""

from zapflow.ingest.run import IngestReport, RenewReport, ingest_for, renew_subscription, renewal_due
from zapflow.ingest.sink import OutboxSink

__all__ = ["IngestReport", "OutboxSink", "RenewReport", "ingest_for", "renew_subscription", "renewal_due"]
