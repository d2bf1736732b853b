"""Adapter for the site meter: the documented JSON contract over HTTP, or a replayed file."""

from zapflow.meter.sources import (
    HttpMeter,
    MeterDataInvalid,
    MeterError,
    MeterSource,
    MeterUnavailable,
    ReplayMeter,
)

__all__ = ["HttpMeter", "MeterDataInvalid", "MeterError", "MeterSource", "MeterUnavailable", "ReplayMeter"]
