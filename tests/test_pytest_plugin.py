"""The pytest plugin: the gainsight_recorder and gainsight_collector fixtures."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import gainsight_segment as gs
from gainsight_segment import pytest_plugin
from gainsight_segment.testing import DEMO_ACCESS_KEY, LocalCollector, RecordingClient

# The plugin's fixtures, made available to this module the way a conftest would.
gainsight_recorder = pytest_plugin.gainsight_recorder
gainsight_collector = pytest_plugin.gainsight_collector

ACCOUNT = "o283h08fh2390f923uofu23"


def signup(client: gs.Client, user_id: str, email: str) -> None:
    """A sample of application code under test."""
    client.identify(user_id, {"accountId": ACCOUNT, "email": email})
    client.track(user_id, "Account Created", {"accountId": ACCOUNT, "source": "Invite"})


def test_an_app_test_asserts_on_what_the_app_sent(gainsight_recorder: RecordingClient) -> None:
    signup(gainsight_recorder, "123", "miles@example.com")
    [event] = gainsight_recorder.tracks("Account Created")
    assert event["properties"] == {"accountId": ACCOUNT, "source": "Invite"}
    assert gainsight_recorder.identifies()[0]["traits"]["email"] == "miles@example.com"


def test_recorder_fixture_is_a_fresh_recording_client(
    gainsight_recorder: RecordingClient,
) -> None:
    assert isinstance(gainsight_recorder, RecordingClient)
    assert gainsight_recorder.messages == []


def test_collector_fixture_is_started_and_accepts_the_demo_key(
    gainsight_collector: LocalCollector,
) -> None:
    with gs.Client(
        DEMO_ACCESS_KEY, endpoint=gainsight_collector.endpoint, sync_mode=True
    ) as client:
        receipt = client.track("123", "Account Created")
    assert receipt.outcome is gs.Outcome.SENT
    assert [m["messageId"] for m in gainsight_collector.messages] == [receipt.message_id]


PLUGIN_PROJECT_TESTS = """
import pytest

import gainsight_segment as gs

kept = []


def test_recorder(gainsight_recorder):
    gainsight_recorder.track("123", "Account Created", {"accountId": "o283"})
    assert gainsight_recorder.tracks()[0]["properties"] == {"accountId": "o283"}
    kept.append(gainsight_recorder)


def test_recorder_was_shut_down_after_its_test():
    with pytest.raises(gs.ClientClosedError):
        kept[0].identify("123")


def test_collector(gainsight_collector):
    with gs.Client(
        "00000000-0000-4000-8000-000000000000",
        endpoint=gainsight_collector.endpoint,
        sync_mode=True,
    ) as client:
        client.identify("123")
    assert gainsight_collector.messages[0]["type"] == "identify"
"""


def test_plugin_enabled_in_a_conftest_provides_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "conftest.py").write_text(
        'pytest_plugins = ["gainsight_segment.pytest_plugin"]\n', encoding="utf-8"
    )
    (tmp_path / "test_app.py").write_text(textwrap.dedent(PLUGIN_PROJECT_TESTS), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
