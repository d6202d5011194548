"""Reproducible ARIMA training: conda spec → hashed lock → pinned image → local and Azure ML runs."""

__version__ = "0.1.0"
