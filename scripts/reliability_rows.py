"""The rows of docs/reliability.md's tables: each scenario's figures, in words.

A row covers one scenario, or a family of them by a name ending in ``-``, and says what
was done to the client and what was measured; ``scripts/reliability_figures.py`` renders
the tables from them. A scenario without a row is shown by its name and raw figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Figures = dict[str, Any]


# --- formatting -------------------------------------------------------------------------------


def n(value: float) -> str:
    """A count with thousands separators."""
    return f"{value:,}"


def s(value: float) -> str:
    """Seconds, as measured."""
    return f"{value:g} s"


def code(text: object) -> str:
    return f"`{text}`"


# --- the rows of the tables -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of a table: the scenarios it covers, what was done, and what was measured.

    Attributes:
        match: A scenario name, or a prefix ending in ``-`` for a family of them.
        title: The row's name.
        done: What the scenario does to the client (may use the figures).
        measured: The figures, in words.
    """

    match: str
    title: str
    done: Callable[[list[Figures]], str]
    measured: Callable[[list[Figures]], str]

    def covers(self, name: str) -> bool:
        if self.match.endswith("-"):
            return name.startswith(self.match)
        return name == self.match


def one(records: list[Figures]) -> Figures:
    return records[0]


def _faults_done(r: list[Figures]) -> str:
    f = one(r)
    planned = f.get("planned", {})
    return (
        f"{n(f['sent'])} tracks through {f['workers']} senders, `timeout={f['timeout']}`; "
        f"the collector answers {planned.get('5xx', 0):.0%} 5xx and "
        f"{planned.get('429', 0):.0%} 429 with `Retry-After` of 0 to 1 s, drops "
        f"{planned.get('dropped', 0):.0%} of connections and holds "
        f"{planned.get('slow', 0):.0%} of answers past the timeout"
    )


def _faults_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['delivered'])} delivered in {s(f['seconds'])} over {n(f['requests'])} requests; "
        f"{n(f['duplicated'])} duplicates, none beyond the client's own timeouts of that "
        f"message; {n(f['reported'])} reported"
    )


def _permanent_done(r: list[Figures]) -> str:
    statuses = ", ".join(sorted(x["scenario"].split("-", 1)[1] for x in r))
    return f"{r[0]['sent']} tracks per status, every request answered {statuses}"


def _permanent_measured(r: list[Figures]) -> str:
    requests = sum(x["requests"] for x in r)
    reported = sum(x["reported"] for x in r)
    return (
        f"{n(reported)} reported once each with their status, in {n(requests)} requests: "
        "none retried"
    )


def _outage_done(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['sent'])} tracks as a steady stream, {f['workers']} senders, "
        f"`max_retries={f['max_retries']}`; the collector's port closes mid-stream and opens "
        "again once 100 messages have run out of retries"
    )


def _outage_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"outage of {s(f['outage_seconds'])}; {n(f['delivered'])} delivered "
        f"({n(f['delivered_after_restart'])} after it), {n(f['reported'])} reported, "
        f"{n(f['duplicated'])} twice"
    )


def _deadline_done(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{f['sent']} tracks, {f['workers']} senders, then "
        f"`shutdown(timeout={f['shutdown_timeout']:g})`, against a collector that never "
        "answers and a socket that never reads"
    )


def _deadline_measured(r: list[Figures]) -> str:
    times = " and ".join(s(x["shutdown_seconds"]) for x in r)
    return f"`shutdown()` returned after {times}; all {r[0]['sent']} reported each time"


def _fork_done(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"a parent queues 500 tracks and forks {f['children']} children while its senders "
        "are busy; each child sends 1,000, the parent 500 more"
    )


def _fork_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['delivered'])} delivered, {n(f['duplicated'])} twice, in {s(f['seconds'])}; "
        "each child's counters start at zero"
    )


def _concurrency_done(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{f['producers']} threads send {n(f['sent'] // f['producers'])} tracks each through a "
        f'{n(f["max_queue_size"])}-message queue, `on_queue_full="block"`, {f["workers"]} '
        "senders"
    )


def _concurrency_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['delivered'])} delivered once each in {s(f['seconds'])}; "
        f"{n(f['stats_snapshots_checked'])} `stats()` snapshots taken meanwhile, all reconciled"
    )


def _race_done(r: list[Figures]) -> str:
    return f"{one(r)['producers']} threads are sending when `shutdown(timeout=0)` is called"


def _race_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['sent'])} calls made: {n(f['delivered'])} delivered, {n(f['reported'])} reported, "
        "later calls refused"
    )


def _hostile_done(r: list[Figures]) -> str:
    return (
        f"{n(one(r)['examples'])} generated calls with hostile values in every argument: "
        "NaN, huge and deep data, lone surrogates, cycles, odd ids and types"
    )


def _hostile_measured(r: list[Figures]) -> str:
    f = one(r)
    refused = sum(f["refused"].values())
    return (
        f"{n(f['built_and_delivered'])} built and delivered as strict JSON, {n(refused)} refused "
        f"with `InvalidMessageError`, nothing else raised; largest body {n(f['largest_body'])} "
        "bytes"
    )


def _secrecy_done(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['sent'])} tracks from {f['clients']} clients, every failure kind, a server "
        "echoing the key, logs at DEBUG"
    )


def _secrecy_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['texts_checked'])} texts and {n(f['log_records'])} log records checked: "
        f"{f['key_leaks']} held the key"
    )


def _tls_done(r: list[Figures]) -> str:
    return (
        "an HTTPS server whose certificate a test CA signed, with default verification, the "
        "CA bundle, another CA, a wrong host name"
    )


def _tls_measured(r: list[Figures]) -> str:
    by_name = {x["scenario"]: x for x in r}
    refused = [x for name, x in by_name.items() if name != "tls"]
    received = sum(x.get("requests_received", 0) for x in refused)
    delivered = by_name.get("tls", {}).get("delivered", 0)
    return (
        f"{delivered} delivered with the CA bundle; the {len(refused)} others reported as "
        f"`tls`, with {received} requests reaching the server"
    )


RELIABILITY_ROWS = [
    Row("faults", "Faults", _faults_done, _faults_measured),
    Row("permanent-", "Permanent failures", _permanent_done, _permanent_measured),
    Row("outage", "Outage", _outage_done, _outage_measured),
    Row("deadline-", "Deadlines", _deadline_done, _deadline_measured),
    Row("fork", "Fork", _fork_done, _fork_measured),
    Row("concurrency", "Concurrency", _concurrency_done, _concurrency_measured),
    Row("shutdown-race", "Shutdown race", _race_done, _race_measured),
    Row("hostile-input", "Hostile input", _hostile_done, _hostile_measured),
    Row("key-secrecy", "Key secrecy", _secrecy_done, _secrecy_measured),
    Row("tls", "TLS", _tls_done, _tls_measured),
    Row("tls-", "TLS", _tls_done, _tls_measured),
]


def _row(match: str, title: str, done: str, measured: str) -> Row:
    """A row of one scenario: fixed words, filled with its figures by ``str.format``."""
    return Row(
        match,
        title,
        lambda r: done.format(**one(r)),
        lambda r: measured.format(**one(r)),
    )


HARDENING_ROWS = [
    _row(
        "two-flushes",
        "Two flushes",
        "two threads flush at once while answers take 1 s; one gives up after "
        "{timed_flush_timeout:g} s",
        "the timed one returned `False` after {timed_flush_seconds:g} s, the other `True` "
        "after {untimed_flush_seconds:g} s with all {delivered} delivered",
    ),
    _row(
        "with-block-exit",
        "Leaving a `with` block",
        "the block ends while another thread's `flush(timeout={timed_flush_timeout:g})` runs",
        "that flush gave up alone; the block ended after {block_exit_seconds:g} s, the "
        "message delivered",
    ),
    _row(
        "flush-from-on-error",
        "`flush()` in `on_error`",
        "a full queue calls `on_error` on the caller's thread, and it calls `flush()`",
        "the call returned in {call_seconds:g} s",
    ),
    _row(
        "shutdown-from-on-error",
        "`shutdown()` in `on_error`",
        "`on_error` calls `shutdown()` while `shutdown(timeout={shutdown_timeout:g})` runs, "
        "the server silent",
        "{shutdown_seconds:g} s; all {reported} messages reported",
    ),
    _row(
        "shutdown-from-sender-callback",
        "`shutdown()` in `on_success`",
        "a sender's `on_success` calls `shutdown()` while another thread shuts down",
        "{shutdown_seconds:g} s; all {delivered} delivered",
    ),
    _row(
        "exit-with-flushing-on-error",
        "Exit, `on_error` flushing",
        "the interpreter exits with {sent} tracks queued to a silent server, "
        "`exit_timeout={exit_timeout:g}`, and `on_error` calls `flush()`",
        "the process ended after {process_seconds:g} s, start-up included, status {exit_status}",
    ),
    _row(
        "shutdown-wakes-blocked-caller",
        "A caller blocked on a full queue",
        "a call waits for room (`block_timeout={block_timeout:g}`) when `shutdown()` begins",
        "it returned {woken_after_shutdown_began_seconds:g} s later, `DROPPED` with kind "
        "`shutdown`",
    ),
    _row(
        "fork-during-shutdown",
        "Fork during `shutdown()`",
        "a process forks while another thread is inside `shutdown()`; the child shuts down "
        "with `timeout={child_shutdown_timeout:g}`",
        "the child was done after {child_seconds:g} s, status {child_exit_status}",
    ),
    _row(
        "sync-mode-after-fork",
        "`sync_mode` after a fork",
        "parent and child send {calls_per_process} calls each at once through the same "
        "`sync_mode` client",
        "{crossed_answers} answers reached the wrong process",
    ),
    _row(
        "gzip-bomb",
        "Gzip bomb",
        "a 400 answer of {compressed_kb:,} KB of gzip that inflates to {inflated_mb} MB",
        "reported in {call_seconds:g} s; peak memory grew {rss_growth_mb:g} MB; "
        "{body_excerpt_chars} characters kept",
    ),
    _row(
        "huge-body",
        "Huge answer",
        "a 400 answer with a body of {body_mb} MB",
        "reported in {call_seconds:g} s; peak memory grew {rss_growth_mb:g} MB; "
        "{body_excerpt_chars} characters kept",
    ),
    _row(
        "trickling-server",
        "Trickling server",
        "the answer comes one byte every {byte_every_seconds:g} s; `timeout={timeout:g}`",
        "the attempt ended after {attempt_seconds:g} s as a `{error_kind}`",
    ),
    _row(
        "proxy-refusal",
        "Proxy refusal",
        "an `http://` endpoint with a proxy on another host",
        "refused by `Client(...)` with `ConfigurationError`; the key not in its text",
    ),
]


_ENDED = (
    "{calls_returned:,} calls returned, {waiting_at_kill:,} still in the file and "
    "{claimed_at_kill} claimed at the signal; a new client delivered them all ({delivered:,} "
    "with calls cut off after their write) in {drain_seconds:g} s, {duplicated} twice"
)
_UNUSABLE = (
    "{written_to_the_file:,} written to the file, {kept_in_memory:,} kept in memory; "
    "{raised} exceptions; {delivered:,} delivered, {reported} reported"
)
_OUTAGE = (
    "{waiting_at_recovery:,} messages in the file at recovery, warm-up included; all "
    "{delivered:,} delivered "
    "{recovery_seconds:g} s later, {duplicated} twice; memory grew {rss_growth_mb:g} MB"
)

# The outbox scenarios (tests/test_reliability_outbox.py): a scenario without a row here is
# shown by its name and raw figures.
OUTBOX_ROWS = [
    _row(
        "outbox-kill-9",
        "`kill -9`",
        "a process is killed in the middle of a burst of calls",
        _ENDED,
    ),
    _row(
        "outbox-sigterm",
        "SIGTERM",
        "a process is stopped with SIGTERM (no handler) in the middle of a burst of calls",
        _ENDED,
    ),
    _row(
        "outbox-four-writers-one-relay",
        "Four writers, one relay",
        "{writers} processes write {calls:,} calls to one file with `workers=0`; "
        "`gainsight-segment relay` drains it",
        "{caller_microseconds_per_call:g} µs per call in each writer; all {delivered:,} "
        "delivered in {seconds_to_deliver_all:g} s, {duplicated} twice",
    ),
    _row(
        "outbox-outage-refusing",
        "Outage, refused",
        "{events:,} calls at {rate} while the collector answers 503",
        _OUTAGE,
    ),
    _row(
        "outbox-outage-stalled",
        "Outage, stalled",
        "{events:,} calls at {rate} while the collector holds every answer",
        _OUTAGE,
    ),
    _row(
        "outbox-disk-full",
        "Disk full",
        "{calls:,} calls once the file may grow only 64 KB more (`RLIMIT_FSIZE`)",
        _UNUSABLE,
    ),
    _row(
        "outbox-read-only",
        "Read-only directory",
        "{calls:,} calls with the outbox in a directory the process cannot write",
        _UNUSABLE,
    ),
    _row(
        "outbox-corrupt",
        "Corrupt file",
        "{calls:,} calls with a file of garbage where the outbox should be",
        _UNUSABLE,
    ),
]


def lost(records: list[Figures]) -> str:
    values = [x["lost"] for x in records if "lost" in x]
    return n(sum(values)) if values else "—"


def _generic(name: str) -> Row:
    def measured(r: list[Figures]) -> str:
        shown = {k: v for k, v in one(r).items() if k not in ("scenario", "file", "lost")}
        return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in shown.items())

    return Row(name, name.replace("-", " ").capitalize(), lambda r: "", measured)


def table_rows(records: list[Figures], rows: list[Row]) -> list[tuple[Row, list[Figures]]]:
    """Group the records by row, in the rows' order; a record without a row gets its own."""
    grouped: dict[str, tuple[Row, list[Figures]]] = {}
    for record in records:
        name = record["scenario"]
        row = next((row for row in rows if row.covers(name)), None) or _generic(name)
        key = row.title or name
        grouped.setdefault(key, (row, []))[1].append(record)
    order = {row.title: index for index, row in enumerate(rows)}
    return sorted(grouped.values(), key=lambda item: order.get(item[0].title, len(order)))


def table(records: list[Figures], rows: list[Row]) -> str:
    lines = [
        "| Scenario | What is done to the client | Measured | Lost |",
        "| --- | --- | --- | ---: |",
    ]
    for row, covered in table_rows(records, rows):
        cells = [row.title, row.done(covered), row.measured(covered), lost(covered)]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)
