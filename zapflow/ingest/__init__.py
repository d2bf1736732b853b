"""The ingest use case: Service Bus observations into DuckDB, and the subscription kept alive."""

from zapflow.ingest.run import IngestReport, ingest_for, renewal_due
from zapflow.ingest.sink import OutboxSink

__all__ = ["IngestReport", "OutboxSink", "ingest_for", "renewal_due"]
