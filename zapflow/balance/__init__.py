"""The balance use case: the tick (snapshot -> forecast -> decide -> apply -> record), the meter
sampler and the simulated day, as plain functions over injected adapters. Flows and tasks wrap
these; tests call them directly."""
