"""The installed package folder holds no module named like one its dependencies import.

A worker's flow run starts in the deployment's source folder, which for a regular (non-editable) install is the
installed ``tuneline/`` folder itself; the interpreter then imports from that folder first, so a
``tuneline/datasets.py`` hid Hugging Face's ``datasets`` and every triggered retraining crashed at import
("cannot import name 'Dataset' from 'datasets'")."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def installed_names() -> set[str]:
    """What ``pip install .`` puts into site-packages/tuneline: its modules and subpackages, by import name."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    names = set()
    for package, folder in setuptools["package-dir"].items():
        if package == "tuneline":
            names |= {path.stem for path in (ROOT / folder).glob("*.py")}
        else:
            names.add(package.split(".")[-1])
    names |= {p.split(".")[-1] for p in setuptools["packages"] if p.count(".") == 1}
    return names - {"__init__", "__main__"}


def test_no_installed_module_shadows_a_top_level_module_of_the_environment():
    taken = set(importlib.metadata.packages_distributions()) | set(sys.stdlib_module_names)
    names = installed_names()
    assert {"cli", "readers", "flows", "tasks"} <= names  # the listing itself works
    assert not names & taken, f"rename these modules of tuneline: {sorted(names & taken)}"


def test_tests_import_the_installed_package_not_the_source_folders():
    """CI runs the ``pytest`` script, which does not put the clone's root on ``sys.path`` (``python -m pytest`` does):
    a test that imports ``tasks.gate`` passes in a developer's checkout and fails to collect in CI."""
    import ast

    roots = {"tasks", "flows", "schemas", "deployments"}
    bare = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            bare += [f"{path.name}:{node.lineno} {m}" for m in modules if m.split(".")[0] in roots]
    assert not bare, f"import these from tuneline.<folder> instead: {bare}"
