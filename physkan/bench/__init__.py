"""Benchmarks: the AI Feynman regression suite (``physkan bench feynman``)."""

from physkan.bench.feynman import BenchRow, BenchSummary, run_feynman_bench

__all__ = ["BenchRow", "BenchSummary", "run_feynman_bench"]
