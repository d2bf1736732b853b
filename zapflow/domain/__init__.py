"""The pure core: units, models, forecasting and policy. No I/O, no clock reads, no adapters."""
