"""tuneline: validated, tracked, registered and gated fine-tuning of transformer encoders.

The repository's ``flows/``, ``tasks/``, ``schemas/`` and ``deployments/`` folders install as ``tuneline.flows``,
``tuneline.tasks``, ``tuneline.schemas`` and ``tuneline.deployments``.
"""

from tuneline import runtime as _runtime  # noqa: F401  (offline defaults before any ML library is imported)

__version__ = "0.1.0"
