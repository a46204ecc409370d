"""Users' HTTP mocks see every request the client makes, as they see requests' own.

Tests of apps that use the client mock HTTP with ``responses`` or ``requests-mock``; the
client must not slip past them, in either mode, and must never reach the network for a URL
the mock does not know.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import requests
import requests.adapters
import requests_mock
import responses

import gainsight_segment as gs
from gainsight_segment.testing import LocalCollector

from .conftest import ACCESS_KEY

ENDPOINT = "https://event.gainsight.com"
URL = ENDPOINT + "/clickstream/segmentio/event"
MODES = [pytest.param({"sync_mode": True}, id="sync"), pytest.param({}, id="async")]


@pytest.fixture
def outcomes() -> dict[str, list[Any]]:
    return {"errors": [], "delivered": []}


def make_client(outcomes: dict[str, list[Any]], **options: Any) -> gs.Client:
    return gs.Client(
        ACCESS_KEY,
        exit_timeout=0,
        max_retries=0,
        on_error=lambda error, message: outcomes["errors"].append(error),
        on_success=outcomes["delivered"].append,
        **options,
    )


def send_three(client: gs.Client) -> list[str]:
    ids = [
        client.identify("123", {"accountId": "o283"}).message_id,
        client.track("123", "Account Created", {"accountId": "o283"}).message_id,
        client.group("123", "555", {"name": "Twitter"}).message_id,
    ]
    assert client.flush(timeout=10)
    return ids


@pytest.mark.parametrize("mode", MODES)
@responses.activate
def test_responses_sees_every_request(mode: dict[str, Any], outcomes: Any) -> None:
    responses.add(responses.POST, URL, json={"status": "ok"})
    client = make_client(outcomes, **mode)
    ids = send_three(client)
    client.shutdown()
    bodies = [json.loads(call.request.body) for call in responses.calls]
    assert sorted(body["messageId"] for body in bodies) == sorted(ids)
    assert {call.request.headers["accessKey"] for call in responses.calls} == {ACCESS_KEY}
    assert client.stats().delivered == 3


@pytest.mark.parametrize("mode", MODES)
def test_requests_mock_sees_every_request(
    mode: dict[str, Any], outcomes: Any, requests_mock: requests_mock.Mocker
) -> None:
    requests_mock.post(URL, json={"status": "ok"})
    client = make_client(outcomes, **mode)
    ids = send_three(client)
    client.shutdown()
    bodies = [json.loads(call.body) for call in requests_mock.request_history]
    assert sorted(body["messageId"] for body in bodies) == sorted(ids)
    assert client.stats().delivered == 3


@pytest.mark.parametrize("mode", MODES)
def test_a_mocked_error_status_is_reported(mode: dict[str, Any], outcomes: Any) -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, URL, status=400, body="bad accessKey")
        client = make_client(outcomes, **mode)
        client.track("123", "Account Created")
        assert client.flush(timeout=10)
        client.shutdown()
    [error] = outcomes["errors"]
    assert (error.status, error.body, error.kind) == (400, "bad accessKey", "http_status")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("mocker", ["responses", "requests-mock"])
def test_an_unregistered_url_fails_and_never_reaches_the_network(
    mode: dict[str, Any], mocker: str, outcomes: Any, collector: LocalCollector
) -> None:
    # The endpoint is a live server: a request that escaped the mock would arrive there.
    active: Any = (
        responses.RequestsMock(assert_all_requests_are_fired=False)
        if mocker == "responses"
        else requests_mock.Mocker()
    )
    with active:
        client = make_client(outcomes, endpoint=collector.endpoint, **mode)
        client.track("123", "Account Created")
        assert client.flush(timeout=10)
        client.shutdown()
    [error] = outcomes["errors"]
    assert (error.kind, error.status) == ("network", None)
    assert collector.messages == []


class CountingAdapter(requests.adapters.HTTPAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(request)
        return super().send(request, *args, **kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_a_session_of_yours_sends_through_its_adapters(
    mode: dict[str, Any], outcomes: Any, collector: LocalCollector
) -> None:
    session = requests.Session()
    adapter = CountingAdapter()
    session.mount("http://", adapter)
    client = make_client(outcomes, endpoint=collector.endpoint, session=session, **mode)
    ids = send_three(client)
    client.shutdown()
    assert len(adapter.sent) == 3
    assert sorted(m["messageId"] for m in collector.messages) == sorted(ids)
    assert adapter.sent[0].headers["accessKey"] == ACCESS_KEY


def test_a_session_of_yours_is_not_closed_at_shutdown(outcomes: Any) -> None:
    session = requests.Session()
    adapter = CountingAdapter()
    session.mount("https://", adapter)
    client = make_client(outcomes, session=session)
    client.shutdown()
    assert session.adapters["https://"] is adapter


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"verify": False}, "set them on your session", id="verify"),
        pytest.param({"proxies": {"https": "http://p:1"}}, "set them on your session", id="proxy"),
        pytest.param({"transport": gs.testing.MockTransport()}, "not both", id="transport"),
    ],
)
def test_a_session_of_yours_refuses_settings_it_owns(options: dict[str, Any], message: str) -> None:
    with pytest.raises(gs.ConfigurationError, match=message):
        gs.Client(ACCESS_KEY, session=requests.Session(), **options)


def test_a_session_must_be_a_requests_session() -> None:
    with pytest.raises(gs.ConfigurationError, match=r"requests\.Session"):
        gs.Client(ACCESS_KEY, session=object())  # type: ignore[arg-type]


def test_a_mock_started_before_the_library_is_imported_still_sees_every_request() -> None:
    script = textwrap.dedent(
        """
        import sys
        import responses

        with responses.RequestsMock() as mock:
            mock.add(responses.POST, sys.argv[2], json={"status": "ok"})
            import gainsight_segment as gs

            client = gs.Client(sys.argv[1], max_retries=0, sync_mode=True)
            print(client.track("123", "Account Created").outcome.value, len(mock.calls))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, ACCESS_KEY, URL],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout == "sent 1\n", done.stderr
