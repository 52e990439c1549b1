"""Benchmarks: each module is runnable as ``python -m bench.<name>``; ``make bench`` runs all."""
