"""State stores: diffs against the confirmed state, confirmation, and the SQLite file."""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import gainsight_segment as gs
from gainsight_segment.sync import (
    MemoryStore,
    SQLiteStore,
    StateChange,
    StateDiff,
    StateStore,
)

KEY = "vip"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    opened: StateStore = (
        SQLiteStore(tmp_path / "state.sqlite3") if request.param == "sqlite" else MemoryStore()
    )
    yield opened
    opened.close()


def changes(diff: StateDiff, size: int = 100) -> list[StateChange]:
    return [change for batch in diff.batches(size) for change in batch]


def confirm_all(store: StateStore, key: str, rows: list[tuple[str, str]]) -> None:
    store.confirm(key, changes(store.diff(key, rows, complete=True)))


def test_diff_against_empty_state_lists_every_user(store: StateStore) -> None:
    diff = store.diff(KEY, [("u1", "true"), ("u2", "true")], complete=True)
    assert changes(diff) == [StateChange("u1", "true", None), StateChange("u2", "true", None)]
    assert (diff.staged, diff.unchanged, diff.pending) == (2, 0, 2)


def test_diff_lists_joins_changes_and_leaves(store: StateStore) -> None:
    confirm_all(store, KEY, [("u1", "1"), ("u2", "2"), ("u3", "3")])
    diff = store.diff(KEY, [("u2", "2"), ("u3", "30"), ("u4", "4")], complete=True)
    assert sorted(changes(diff), key=lambda c: c.user_id) == [
        StateChange("u1", None, "1"),
        StateChange("u3", "30", "3"),
        StateChange("u4", "4", None),
    ]
    assert (diff.staged, diff.unchanged, diff.pending) == (3, 1, 3)


def test_incomplete_diff_leaves_missing_users_alone(store: StateStore) -> None:
    confirm_all(store, KEY, [("u1", "1"), ("u2", "2")])
    diff = store.diff(KEY, [("u2", "20")], complete=False)
    assert changes(diff) == [StateChange("u2", "20", "2")]


def test_diff_does_not_change_the_state(store: StateStore) -> None:
    store.diff(KEY, [("u1", "true")], complete=True)
    assert changes(store.diff(KEY, [("u1", "true")], complete=True)) == [
        StateChange("u1", "true", None)
    ]


def test_repeated_user_in_a_snapshot_keeps_its_last_value(store: StateStore) -> None:
    diff = store.diff(KEY, [("u1", "1"), ("u1", "2")], complete=True)
    assert changes(diff) == [StateChange("u1", "2", None)]


def test_confirm_with_no_value_forgets_the_user(store: StateStore) -> None:
    confirm_all(store, KEY, [("u1", "true"), ("u2", "true")])
    store.confirm(KEY, [StateChange("u1", None, "true")])
    diff = store.diff(KEY, [("u2", "true")], complete=True)
    assert (diff.unchanged, diff.pending) == (1, 0)


def test_keys_have_separate_state(store: StateStore) -> None:
    confirm_all(store, "a", [("u1", "true")])
    assert changes(store.diff("b", [("u1", "true")], complete=True)) == [
        StateChange("u1", "true", None)
    ]


def test_batches_are_unaffected_by_confirming_while_iterating(store: StateStore) -> None:
    diff = store.diff(KEY, [(f"u{i}", "true") for i in range(10)], complete=True)
    seen: list[StateChange] = []
    for batch in diff.batches(3):
        store.confirm(KEY, batch)
        seen.extend(batch)
    assert [c.user_id for c in seen] == sorted(f"u{i}" for i in range(10))


def test_sqlite_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with SQLiteStore(path) as store:
        confirm_all(store, KEY, [("u1", "true")])
    with SQLiteStore(path) as store:
        assert list(store.items(KEY)) == [("u1", "true")]


def test_sqlite_store_uses_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sqlite_store_lists_its_keys(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "state.sqlite3") as store:
        confirm_all(store, "b", [("u1", "true")])
        confirm_all(store, "a", [("u1", "true")])
        assert store.keys() == ["a", "b"]


def test_snapshot_that_raises_leaves_the_state_untouched(tmp_path: Path) -> None:
    def broken() -> Iterator[tuple[str, str]]:
        yield ("u2", "true")
        raise RuntimeError("database went away")

    with SQLiteStore(tmp_path / "state.sqlite3") as store:
        confirm_all(store, KEY, [("u1", "true")])
        with pytest.raises(RuntimeError):
            store.diff(KEY, broken(), complete=True)
        diff = store.diff(KEY, [("u1", "true")], complete=True)
        assert (diff.unchanged, diff.pending) == (1, 0)


def test_file_that_is_not_a_database_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "members.txt"
    path.write_text("u1\nu2\n" * 1000)
    with pytest.raises(gs.ConfigurationError, match=r"members\.txt"):
        SQLiteStore(path)


def test_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(gs.ConfigurationError, match="newer"):
        SQLiteStore(path)


def test_closing_the_store_before_its_diff_is_harmless(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.sqlite3")
    diff = store.diff(KEY, [("u1", "true")], complete=True)
    store.close()
    diff.close()
    assert list(diff.batches(10)) == []


def test_state_in_a_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "state.sqlite3"
    with pytest.raises(gs.ConfigurationError, match=r"state '.*state\.sqlite3': cannot open"):
        SQLiteStore(path)


def test_a_confirm_the_database_refuses_records_none_of_its_changes(tmp_path: Path) -> None:
    refused = StateChange(None, "true", None)  # type: ignore[arg-type]
    with SQLiteStore(tmp_path / "state.sqlite3") as store:
        with pytest.raises(sqlite3.IntegrityError):
            store.confirm(KEY, [StateChange("u1", "true", None), refused])
        assert list(store.items(KEY)) == []


def test_items_lists_the_confirmed_values_by_user_id(store: StateStore) -> None:
    confirm_all(store, KEY, [("u2", "2"), ("u1", "1")])
    confirm_all(store, "other", [("u0", "0")])
    assert list(store.items(KEY)) == [("u1", "1"), ("u2", "2")]  # type: ignore[attr-defined]


def test_sqlite_store_repr_shows_its_path(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with SQLiteStore(path) as store:
        assert repr(store) == f"<SQLiteStore {str(path)!r}>"


@pytest.fixture
def lenient_umask() -> Iterator[None]:
    """The common umask, under which files are created readable by everyone by default."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
@pytest.mark.usefixtures("lenient_umask")
def test_a_new_state_file_and_its_side_files_are_readable_by_their_owner_only(
    tmp_path: Path,
) -> None:
    with SQLiteStore(tmp_path / "state.sqlite3") as store:
        store.confirm(KEY, [StateChange("u1", "true", None)])
        modes = {path.name: mode(path) for path in tmp_path.iterdir()}
    assert modes == {
        "state.sqlite3": 0o600,
        "state.sqlite3-wal": 0o600,
        "state.sqlite3-shm": 0o600,
    }


@posix_only
@pytest.mark.usefixtures("lenient_umask")
def test_an_existing_state_file_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    sqlite3.connect(path).close()
    path.chmod(0o640)
    SQLiteStore(path).close()
    assert mode(path) == 0o640
