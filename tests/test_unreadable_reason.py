"""The rejection reason of a batch the reader refuses: what is wrong, that only this batch is rejected, and the
reader's data.* advice kept apart for the case where every later batch will look the same."""

from __future__ import annotations

from datetime import datetime, timezone

from tuneline.ledger import Batch
from tuneline.tasks.intake import unreadable_reason


def batch(name: str) -> Batch:
    now = datetime.now(timezone.utc)
    return Batch(id=1, model="m", content_hash="0" * 64, path=f"/landing/{name}", kind="file", format="csv",
                 size_bytes=1, files=1, state="claimed", duplicate_of=None, landed_at=now, claimed_by="run",
                 claimed_at=now, lease_expires_at=None, rows_accepted=None, rows_rejected=None, quarantine_path=None,
                 reasons=(), used_by_run=None, model_version=None, used_at=None, updated_at=now)


def test_advice_inside_parentheses_stays_whole_and_the_reader_advice_comes_last():
    message = ("/landing/x.txt: format 'conll' cannot hold classification rows (.txt files are read as conll unless "
               "data.format says otherwise; set data.format to one of csv, tsv); a spreadsheet export is "
               "tab-separated: data.format: tsv")
    reason = unreadable_reason(batch("x.txt"), message)
    what = reason.split("; only this batch is rejected")[0]
    assert what.count("(") == what.count(")") == 1 and what.endswith("set data.format to one of csv, tsv)")
    assert reason.endswith("(or, if every batch will look like this one from now on: a spreadsheet export is "
                           "tab-separated: data.format: tsv)")


def test_a_gzip_batch_is_told_to_land_the_uncompressed_file_not_to_point_data_at_it():
    message = ("input file /landing/n.csv.gz is gzip-compressed; decompress it (gunzip -k /landing/n.csv.gz) and "
               "point data at the uncompressed file")
    reason = unreadable_reason(batch("n.csv.gz"), message)
    assert "point data at" not in reason
    assert reason == ("batch n.csv.gz cannot be read: input file /landing/n.csv.gz is gzip-compressed; decompress it "
                      "(gunzip -k /landing/n.csv.gz); only this batch is rejected: fix the file to suit the model's "
                      "data.* settings and land it as a new batch")
