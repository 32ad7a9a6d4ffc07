"""Benchmark app `bench_agent` (same behaviour as the ADK bench's mock)."""
