"""Fixtures shared by the suite: a real loopback collector and clients aimed at it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any, Callable

import pytest

import gainsight_segment as gs
from gainsight_segment.testing import DEMO_ACCESS_KEY, LocalCollector


def pytest_configure(config: pytest.Config) -> None:
    """Give the programs the tests interrupt the Ctrl-C a terminal would send them.

    A shell starts a background job with SIGINT ignored, and every process it starts
    inherits that: the command-line tests that stop a program with SIGINT would see it
    run on. A handler of this process's own is reset to the default in its children.
    """
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


ACCESS_KEY = DEMO_ACCESS_KEY
# Short waits between retries keep fault tests fast; behaviour is otherwise the default.
FAST_RETRIES: dict[str, Any] = {"backoff_factor": 0.001, "backoff_max": 0.05}


@pytest.fixture
def collector() -> Iterator[LocalCollector]:
    """A started local Gainsight collector expecting ``ACCESS_KEY``."""
    with LocalCollector(ACCESS_KEY) as server:
        yield server


ClientFactory = Callable[..., gs.Client]


@pytest.fixture
def make_client(collector: LocalCollector) -> Iterator[ClientFactory]:
    """Build clients aimed at the collector; each is shut down after the test."""
    clients: list[gs.Client] = []

    def make(**options: Any) -> gs.Client:
        settings = {"endpoint": collector.endpoint, "exit_timeout": 0, **FAST_RETRIES}
        settings.update(options)
        client = gs.Client(ACCESS_KEY, **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.shutdown(timeout=5)
