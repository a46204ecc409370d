"""Outbox: what a file holds, its dead letters, sending them again or exporting them."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gainsight_segment.outbox import DeadLetter, Outbox, OutboxError, OutboxSummary
from gainsight_segment.outbox._store import Store


def message(n: int) -> dict[str, object]:
    return {"type": "track", "userId": "u", "event": "Clicked", "messageId": f"m-{n}"}


def encoded(n: int) -> bytes:
    return json.dumps(message(n)).encode()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    """The file, as a client's store writes and claims it."""
    opened = Store(path)
    yield opened
    opened.close()


@pytest.fixture
def outbox(path: Path, store: Store) -> Iterator[Outbox]:
    with Outbox(path) as opened:
        yield opened


def refuse(store: Store, body: bytes, status: int) -> None:
    """Write a message and make it a dead letter, as a sender does after a refusal."""
    store.add(body, 100)
    row = store.claim(1)[0][0]
    store.dead(row, kind="http_status", status=status, reason=f"HTTP {status}: not retried")


def test_an_empty_file_holds_nothing(outbox: Outbox) -> None:
    assert outbox.summary() == OutboxSummary(waiting=0, claimed=0, oldest_age=None, dead_letters=0)


def test_the_summary_counts_waiting_claimed_and_dead_messages(outbox: Outbox, store: Store) -> None:
    refuse(store, encoded(9), 400)
    for n in range(4):
        store.add(encoded(n), 100)
    store.claim(1)
    summary = outbox.summary()
    assert (summary.waiting, summary.claimed, summary.dead_letters) == (4, 1, 1)
    assert summary.oldest_age is not None
    assert 0 <= summary.oldest_age < 60


def test_a_later_dead_letter_with_a_reused_id_keeps_the_earlier_one(
    outbox: Outbox, store: Store
) -> None:
    refuse(store, encoded(1), 400)
    refuse(store, encoded(2), 400)  # the emptied outbox hands out the same row id again
    assert [d.message for d in outbox.dead_letters()] == [message(1), message(2)]


def test_dead_letters_come_oldest_first_with_why(outbox: Outbox, store: Store) -> None:
    refuse(store, encoded(1), 400)
    refuse(store, encoded(2), 401)
    letters = list(outbox.dead_letters())
    assert [(d.message, d.kind, d.status) for d in letters] == [
        (message(1), "http_status", 400),
        (message(2), "http_status", 401),
    ]
    assert letters[0].id < letters[1].id
    assert letters[0].reason == "HTTP 400: not retried"
    assert letters[0].attempts == 1
    assert letters[0].failed == pytest.approx(time.time(), abs=60)
    assert isinstance(letters[0], DeadLetter)


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        pytest.param(b"\xffnot json", {"undecodable": "\ufffdnot json"}, id="not-json"),
        pytest.param(b"[1, 2]", {"value": [1, 2]}, id="not-an-object"),
    ],
)
def test_a_dead_letter_that_is_not_a_message_is_still_shown(
    outbox: Outbox, store: Store, body: bytes, shown: dict[str, object]
) -> None:
    refuse(store, body, 400)
    (letter,) = outbox.dead_letters()
    assert letter.message == shown


def test_retrying_moves_every_dead_letter_back_to_wait(outbox: Outbox, store: Store) -> None:
    for n in range(3):
        refuse(store, encoded(n), 400)
    assert outbox.retry_dead_letters() == 3
    summary = outbox.summary()
    assert (summary.waiting, summary.dead_letters) == (3, 0)
    assert sorted(body for _, body in store.claim(10)) == sorted(encoded(n) for n in range(3))


def test_retrying_nothing_moves_nothing(outbox: Outbox) -> None:
    assert outbox.retry_dead_letters() == 0


def test_export_writes_one_message_per_line(outbox: Outbox, store: Store) -> None:
    for n in range(3):
        refuse(store, encoded(n), 400)
    stream = io.StringIO()
    assert outbox.export_dead_letters(stream) == 3
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [
        message(n) for n in range(3)
    ]
    assert outbox.summary().dead_letters == 3  # exported, not removed


def test_export_keeps_text_that_is_not_ascii(outbox: Outbox, store: Store) -> None:
    refuse(store, json.dumps({"type": "identify", "userId": "Zoë"}).encode(), 400)
    stream = io.StringIO()
    outbox.export_dead_letters(stream)
    assert stream.getvalue() == '{"type": "identify", "userId": "Zoë"}\n'


def test_opening_a_missing_file_creates_a_private_empty_one(path: Path) -> None:
    with Outbox(path) as outbox:
        assert outbox.summary().waiting == 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_looking_does_not_make_the_outbox_an_owner(path: Path, outbox: Outbox) -> None:
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT count(*) FROM owners").fetchone() == (1,)  # the store's
    finally:
        db.close()


def test_a_file_that_cannot_be_opened_is_an_outbox_error(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match="missing"):
        Outbox(tmp_path / "missing" / "events.db")


def test_the_repr_names_the_file(path: Path) -> None:
    with Outbox(path) as outbox:
        assert repr(outbox) == f"Outbox({str(path)!r})"


def test_a_closed_outbox_cannot_be_read(path: Path) -> None:
    outbox = Outbox(path)
    outbox.close()
    with pytest.raises(OutboxError):
        outbox.summary()
