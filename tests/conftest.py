"""Fixtures shared by the suite: a real loopback collector and clients aimed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest

import gainsight_segment as gs
from gainsight_segment.testing import DEMO_ACCESS_KEY, LocalCollector

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
