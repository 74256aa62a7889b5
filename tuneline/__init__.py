"""tuneline: validated, tracked, registered and gated fine-tuning of transformer encoders.

The repository's ``flows/``, ``tasks/``, ``schemas/`` and ``deployments/`` folders install as ``tuneline.flows``,
``tuneline.tasks``, ``tuneline.schemas`` and ``tuneline.deployments``.
"""

import time as _time

IMPORTED_AT = _time.time()  # when this interpreter reached tuneline: tuneline.timings' fallback for the start of a command

from tuneline import runtime as _runtime  # noqa: F401  (offline defaults before any ML library is imported)

__version__ = "0.1.0"
