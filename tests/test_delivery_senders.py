"""Sender threads through the Client: they follow the backlog and back off together."""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Iterator

import pytest

import gainsight_segment as gs
from gainsight_segment.delivery import _senders

from .conftest import ACCESS_KEY
from .servers import ScriptedServer, Step, answer


def senders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(_senders.THREAD_NAME)]


@pytest.fixture
def quick_retirement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_senders, "IDLE_SECONDS", 0.2)


def client_for(server: ScriptedServer, **options: object) -> gs.Client:
    return gs.Client(ACCESS_KEY, endpoint=server.endpoint, exit_timeout=0, **options)  # type: ignore[arg-type]


@pytest.fixture
def slow_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(lambda request: [0.05, answer(200)]) as server:
        yield server


def test_an_idle_client_starts_no_sender(slow_server: ScriptedServer) -> None:
    before = set(senders())
    client_for(slow_server).shutdown()
    assert set(senders()) == before


def test_senders_grow_with_the_backlog_up_to_max_workers(slow_server: ScriptedServer) -> None:
    before = set(senders())
    client = client_for(slow_server, max_workers=6)
    peak = 0
    for _ in range(120):
        client.track("u", "Clicked")
    deadline = time.monotonic() + 10
    while client.stats().pending and time.monotonic() < deadline:
        peak = max(peak, len(set(senders()) - before))
        time.sleep(0.01)
    assert client.flush(timeout=10)
    assert 4 <= peak <= 6
    client.shutdown()


def test_idle_senders_end(slow_server: ScriptedServer, quick_retirement: None) -> None:
    before = set(senders())
    client = client_for(slow_server)
    for _ in range(20):
        client.track("u", "Clicked")
    assert client.flush(timeout=10)
    deadline = time.monotonic() + 10
    while set(senders()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(senders()) - before == set()
    client.track("u", "Clicked again")  # and a new one starts when needed
    assert client.flush(timeout=10)
    assert client.stats().delivered == 21
    client.shutdown()


def test_a_fixed_pool_keeps_its_senders(
    slow_server: ScriptedServer, quick_retirement: None
) -> None:
    before = set(senders())
    client = client_for(slow_server, workers=3)
    client.track("u", "Clicked")
    assert client.flush(timeout=10)
    time.sleep(0.5)  # longer than an adaptive sender would stay idle
    assert len(set(senders()) - before) == 3
    client.shutdown()


class PushBack:
    """Answers 429 with Retry-After to the first request, 200 to the rest; notes when each
    request arrived."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, request: bytes) -> list[Step]:
        with self._lock:
            self.arrivals.append(time.monotonic())
            first = len(self.arrivals) == 1
        if first:
            return [answer(429, b"slow down", {"Retry-After": str(self.retry_after)})]
        return [0.02, answer(200)]


def test_a_retry_after_pauses_every_sender() -> None:
    script = PushBack(retry_after=0.5)
    with ScriptedServer(script) as server:
        client = client_for(server, workers=4)
        for _ in range(8):
            client.track("u", "Clicked")
        assert client.flush(timeout=10)
        client.shutdown()
    refused_at = script.arrivals[0]
    # Requests already on their way (the other 3 senders') may land, however late a busy
    # machine makes them; none is sent during the pause: without it, all 7 others would.
    during = [t for t in script.arrivals[1:] if refused_at < t < refused_at + 0.5]
    assert len(during) <= 3
    assert len(script.arrivals) == 9


def test_shutdown_while_a_sender_is_still_starting_returns(
    monkeypatch: pytest.MonkeyPatch, slow_server: ScriptedServer
) -> None:
    # A sender is counted before its thread starts; a shutdown in between must not fail
    # to wait for it.
    starting, release = threading.Event(), threading.Event()

    class SlowStart(threading.Thread):
        def start(self) -> None:
            starting.set()
            release.wait(10)
            super().start()

    patched = types.SimpleNamespace(**vars(threading))
    patched.Thread = SlowStart
    monkeypatch.setattr(_senders, "threading", patched)
    client = client_for(slow_server)
    calling = threading.Thread(target=client.track, args=("u", "Clicked"))
    calling.start()
    assert starting.wait(10)
    answered: list[bool] = []
    closing = threading.Thread(target=lambda: answered.append(client.shutdown(timeout=0)))
    closing.start()
    closing.join(5)
    release.set()
    calling.join(10)
    assert answered == [False]
