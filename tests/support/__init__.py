"""Builders shared by test modules (no tests here). Fixtures live in ``conftest.py``."""
