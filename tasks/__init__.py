"""Prefect tasks: thin wrappers, one call into `zapflow` or `storage` each."""
