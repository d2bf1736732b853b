"""Helpers shared by test modules (row factories, worker processes)."""
