"""Prefect deployment definitions for tuneline's flows (scheduled retraining, on-demand runs)."""
