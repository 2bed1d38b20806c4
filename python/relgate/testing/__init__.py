"""Test helpers shipped with relgate: TEST BACKENDS and a bounded load generator.

Nothing here is product code: these modules exist so tests, benchmarks and the demo can run the
whole pipeline on one machine over loopback.
"""
