"""Metrics, CSV reports and overlays."""
