"""Reusable Prefect tasks. Each is a plain typed function (``task.fn`` calls it without Prefect)."""
