"""Benchmark libraries, figures and latency helpers (only `sagd bench` and tests import them)."""
