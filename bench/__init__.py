"""Benchmarks (`make bench`): each reports ratios measured in one run on this machine."""
