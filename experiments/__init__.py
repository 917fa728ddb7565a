"""Hydra entry points, benchmarks and plots."""
