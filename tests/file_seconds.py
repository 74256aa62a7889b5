"""Seconds per test file, from a run's JUnit XML, for the heaviest-first order of ``conftest.py``.

Why: the suite runs on two pytest-xdist workers that take whole files in collection order (``--dist loadfile``,
``--no-loadscope-reorder``). In alphabetical order a few of the heaviest files (real MiniLM training, servers) came
last, and the final minutes of a run had one worker busy and the other idle. Starting the heaviest files first lets
the short ones fill in at the end. The committed ``file_seconds.json`` is from a full run; refresh it when files are
added or grow (a file it does not list is placed as a median one). Several runs' files are averaged (one run's
seconds vary by a tenth with what ran beside it):

    .venv/bin/pytest --junitxml=/tmp/junit.xml && .venv/bin/python tests/file_seconds.py /tmp/junit.xml [more.xml]
"""

from __future__ import annotations

import json
import statistics
import sys
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

OUTPUT = Path(__file__).with_name("file_seconds.json")


def seconds_per_file(junit_xml: Path) -> dict[str, float]:
    """Each test's time (setup, call and teardown) summed by file: ``{"test_x.py": seconds}``, heaviest first."""
    totals: dict[str, float] = defaultdict(float)
    for case in ElementTree.parse(junit_xml).iter("testcase"):
        module = case.get("classname", "").split(".")
        # "tests.test_x" or "tests.test_x.TestClass": the file is the first part named test_*
        name = next((part for part in module if part.startswith("test_")), None)
        if name:
            totals[f"{name}.py"] += float(case.get("time") or 0.0)
    return {name: round(seconds, 1) for name, seconds in sorted(totals.items(), key=lambda item: -item[1])}


def mean_seconds_per_file(junit_xmls: list[Path]) -> dict[str, float]:
    """The mean over the runs that ran each file, heaviest first."""
    runs = [seconds_per_file(path) for path in junit_xmls]
    names = {name for run in runs for name in run}
    means = {name: round(sum(r[name] for r in runs if name in r) / sum(name in r for r in runs), 1) for name in names}
    return dict(sorted(means.items(), key=lambda item: -item[1]))


def heaviest_first(items: list, seconds: dict[str, float]) -> list:
    """``items`` (anything with a ``.path``) grouped by file, the files by their ``seconds`` (most first), each
    file's items in their own order; a file ``seconds`` does not list counts as a median one."""
    unknown = statistics.median(seconds.values()) if seconds else 0.0
    first_seen: dict[str, int] = {}
    for position, item in enumerate(items):
        first_seen.setdefault(item.path.name, position)
    return sorted(items, key=lambda item: (-seconds.get(item.path.name, unknown), first_seen[item.path.name]))


def known_seconds() -> dict[str, float]:
    return json.loads(OUTPUT.read_text()) if OUTPUT.is_file() else {}


def main(argv: list[str]) -> int:
    if not argv or not all(Path(arg).is_file() for arg in argv):
        print("usage: python tests/file_seconds.py JUNIT.xml [MORE.xml ...] (from pytest --junitxml=JUNIT.xml)",
              file=sys.stderr)
        return 2
    totals = mean_seconds_per_file([Path(arg) for arg in argv])
    OUTPUT.write_text(json.dumps(totals, indent=1) + "\n")
    print(f"{len(totals)} files, {sum(totals.values()):.0f} s in all, written to {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
