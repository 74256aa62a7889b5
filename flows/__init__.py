"""Prefect flows. A flow only wires tasks: its docstring lists the steps, its body calls them in order."""
