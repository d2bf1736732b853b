"""The balance use case, as plain functions over injected adapters.

The tick (snapshot -> forecast -> decide -> apply -> record), the meter sampler and the simulated
day. Flows and tasks wrap these; tests call them directly.
"""
