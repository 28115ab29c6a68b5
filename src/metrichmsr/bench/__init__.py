"""Benchmarks: scripts that print a table and a summary line (see BENCHMARKS.md)."""
