"""The embedded default: a simulated Zaptec cloud with a real site behind it."""
