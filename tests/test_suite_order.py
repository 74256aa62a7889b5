"""The suite's heaviest-first order (conftest.py, file_seconds.py): files by measured seconds, tests kept in order."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from file_seconds import heaviest_first, known_seconds, mean_seconds_per_file, seconds_per_file

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.test_light" name="test_a" time="1.5"/>
<testcase classname="tests.test_heavy" name="test_b" time="30.0"/>
<testcase classname="tests.test_heavy.TestGroup" name="test_c" time="12.25"/>
<testcase classname="tests.test_light" name="test_d" time=""/>
</testsuite></testsuites>
"""


def item(file: str, name: str) -> SimpleNamespace:
    return SimpleNamespace(path=Path("tests") / file, name=name)


def test_seconds_are_summed_per_file_class_tests_included(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    assert seconds_per_file(junit) == {"test_heavy.py": 42.2, "test_light.py": 1.5}
    other = tmp_path / "other.xml"
    other.write_text(JUNIT.replace('time="1.5"', 'time="4.5"').replace("test_heavy.TestGroup", "test_new"))
    # averaged over the runs that ran each file
    assert mean_seconds_per_file([junit, other]) == {"test_heavy.py": 36.1, "test_new.py": 12.2,
                                                     "test_light.py": 3.0}


def test_heaviest_files_go_first_and_each_files_tests_keep_their_order():
    items = [item("test_a.py", "1"), item("test_b.py", "1"), item("test_a.py", "2"), item("test_c.py", "1"),
             item("test_new.py", "1"), item("test_b.py", "2")]
    seconds = {"test_a.py": 5.0, "test_b.py": 100.0, "test_c.py": 1.0}
    ordered = [(i.path.name, i.name) for i in heaviest_first(items, seconds)]
    # an unlisted file counts as the median (5.0): after test_b, and after test_a, which came first
    assert ordered == [("test_b.py", "1"), ("test_b.py", "2"), ("test_a.py", "1"), ("test_a.py", "2"),
                       ("test_new.py", "1"), ("test_c.py", "1")]


def test_the_committed_seconds_name_existing_test_files():
    seconds = known_seconds()
    here = Path(__file__).parent
    assert len(seconds) >= 50 and all((here / name).is_file() for name in seconds)
    assert list(seconds.values()) == sorted(seconds.values(), reverse=True)
