"""pytest fixtures for testing code that uses ``gainsight_segment``.

The plugin is opt-in. Enable it in your top-level ``conftest.py``::

    pytest_plugins = ["gainsight_segment.pytest_plugin"]

Then ask for the fixtures by name::

    def test_signup_tells_gainsight(gainsight_recorder):
        signup(client=gainsight_recorder, email="miles@example.com")
        [event] = gainsight_recorder.tracks("Account Created")
        assert event["properties"]["accountId"] == "o283h08fh2390f923uofu23"

pytest is not a dependency of ``gainsight_segment``: only this module imports it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import LocalCollector, RecordingClient

__all__ = ["gainsight_collector", "gainsight_recorder"]


@pytest.fixture
def gainsight_recorder() -> Iterator[RecordingClient]:
    """A :class:`~gainsight_segment.testing.RecordingClient`, shut down after the test.

    It uses the demo access key and no track whitelist, and records every message instead
    of sending it. Build your own ``RecordingClient`` when the test needs a whitelist or a
    fixed clock.

    Yields:
        The recording client.
    """
    client = RecordingClient()
    try:
        yield client
    finally:
        client.shutdown()


@pytest.fixture
def gainsight_collector() -> Iterator[LocalCollector]:
    """A started :class:`~gainsight_segment.testing.LocalCollector`, stopped after the test.

    It listens on a free loopback port and accepts
    :data:`~gainsight_segment.testing.DEMO_ACCESS_KEY`. Point a client at it with
    ``Client(DEMO_ACCESS_KEY, endpoint=gainsight_collector.endpoint)``, and assign
    ``gainsight_collector.faults`` to make it misbehave.

    Yields:
        The running collector.
    """
    with LocalCollector() as collector:
        yield collector
