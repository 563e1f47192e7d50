"""Helpers shared by tests, the oracle and the benchmarks; never a test module itself.

Imported as `tests.support.<module>` (the repository root is on sys.path under pytest; scripts add it).
"""
