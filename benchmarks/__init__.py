"""Benchmarks of skprune: the paper's fairness figures and speed measurements."""
