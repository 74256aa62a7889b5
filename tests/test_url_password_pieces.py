"""A database password with a raw ``@`` or ``:`` (not percent-encoded) leaked in part through the error about it.

The URL itself was shown as ``postgresql+psycopg://***@host``, but the parser's or the driver's error after it
quoted the rest of the password: ``invalid literal for int() with base 10: 'TopSecretTail99@127.0.0.1:55432'``,
``failed to resolve host 'def@127.0.0.1'`` (operator QA, printed by `data batches`, `history`, `doctor` and
`watch --once`). Both the batch ledger and the gate lock are opened here for real (the URLs fail before any
server is needed)."""

from __future__ import annotations

import pytest

from tuneline.ledger import Ledger, LedgerError
from tuneline.locking import LockDatabaseError, model_lock
from tuneline.runtime import password_pieces, redact_for

URLS = {"colon": ("postgresql+psycopg://tl2:Sp3c@l:TopSecretTail99@127.0.0.1:55432/tuneline",
                  ["Sp3c", "TopSecretTail99"]),
        "at": ("postgresql+psycopg://tl2:abc@def@127.0.0.1:55432/tuneline", ["abc", "def"])}


def test_the_pieces_of_a_password_are_hidden_in_an_error_about_its_url():
    assert password_pieces("postgresql://u:p%40ss@db/x") == ["p%40ss"]
    assert password_pieces("postgresql://user@db/x") == [] and password_pieces(None) == []
    assert redact_for("host 'def@127.0.0.1' unknown", URLS["at"][0]) == "host '***@127.0.0.1' unknown"


@pytest.mark.parametrize("case", sorted(URLS))
def test_the_ledger_and_the_gate_lock_never_print_a_piece_of_the_password(case, tmp_path):
    url, secrets = URLS[case]
    with pytest.raises(LedgerError) as ledger_error:
        Ledger(url, "m")
    with pytest.raises(LockDatabaseError) as lock_error:
        with model_lock("m", url, timeout_s=1, use_prefect=False):
            pass
    for error in (ledger_error.value, lock_error.value):
        said = str(error)
        assert "postgresql+psycopg://***@127.0.0.1:55432/tuneline" in said, said
        assert not any(secret in said for secret in secrets), said
        assert said.endswith("a password holding '@', ':' or '/' must be percent-encoded in the URL (%40, %3A, "
                             "%2F)"), said
        assert error.__cause__ is None  # nothing chained that a traceback or a log could print


def test_the_command_lines_last_word_hides_the_pieces_of_every_store_urls_password(monkeypatch):
    """An error that reaches the command line's catch-all (an MLflow store on PostgreSQL whose password holds a raw
    `@`) quoted the rest of the password, "failed to resolve host 'secretword@127.0.0.1'"."""
    import argparse

    from tuneline.cli import _scrubbed

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg://u:pa@secretword@127.0.0.1:1/x")
    said = _scrubbed("failed to resolve host 'secretword@127.0.0.1'", argparse.Namespace(ledger_url=URLS["colon"][0]))
    assert said == "failed to resolve host '***@127.0.0.1'"
    assert _scrubbed("TopSecretTail99@127.0.0.1", argparse.Namespace(ledger_url=URLS["colon"][0])) == "***@127.0.0.1"
