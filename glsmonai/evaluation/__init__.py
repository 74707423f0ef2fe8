"""Metrics, CSV reports, error maps and model comparisons."""
